"""One build in PostgreSQL + pgvector behind :class:`~qa.index.protocol.PassageStore`.

Dense search is pgvector's inner product (``<#>``, negated: vectors are normalised, so it
is the cosine). A build whose vector index is flat is scored exactly, as the embedded
store's flat FAISS index is; a build with an HNSW index is searched through it with an
iterative scan (pgvector 0.8), so a filter that rejects most neighbours still yields ``k``
passages; a filter that allows few passages (up to :data:`EXACT_FILTERED`) scores them
exactly instead. Lexical search, of passages and of whole documents, scores the postings the
build copied in (each term's list in one row, derived from FTS5's index as the embedded build
derives its own: :mod:`qa.index.postings`) with the embedded store's scorer,
:mod:`qa.index.bm25`, so both stores give the same passages with the same scores; a filter's
passages become a mask over the lists, as in the embedded store. Every value is a bound
parameter; the build's schema is a quoted identifier.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from qa.embedding.base import Vectors
from qa.errors import IndexStoreError
from qa.index.bm25 import BuildBM25
from qa.index.filters import Filters, fold
from qa.index.manifest import Manifest
from qa.index.open_build import OpenBuild
from qa.index.postgres.connection import Pool
from qa.index.postings import DOCUMENTS, PASSAGES, SOURCES
from qa.index.protocol import ScoredPassage, SentenceVectors, Weights, best_first
from qa.index.records import DocumentRecord, PassageRecord
from qa.index.vector_index import HNSW_EF_SEARCH

#: A filter allowing at most this many passages is scored exactly (a sequential pass over
#: them) rather than through the HNSW graph: exact and, at this size, as fast.
EXACT_FILTERED = 20_000
#: pgvector's largest hnsw.ef_search; a k above it is served by the iterative scan.
MAX_EF_SEARCH = 1000
#: Filters whose allowed passages (a mask for the lexical side) are kept, as the embedded store
#: keeps them: finding them reads every allowed passage's position from the database.
#: A mask is one byte per passage, 1 MiB at 1M.
_MASKS_CACHED = 4

#: How a store runs a statement: :meth:`PostgresStore._rows`.
_Rows = Callable[[sql.Composed, Sequence[Any]], list[tuple[Any, ...]]]

_PASSAGE = 'p.position, p.passage_id, p.doc_id, p.ordinal, p.start, p."end", p.section, p.n_tokens, p.text'
_DOCUMENT = (
    "d.doc_id, d.source, d.title, d.author, d.url, d.published, d.outlet, d.sha256, d.encoding, d.format, d.pages, "
    "d.n_passages"
)


def vector_literal(vector: Vectors) -> str:
    """A vector as pgvector's text form: each float32 written so that it reads back exactly."""
    return "[" + ",".join(repr(float(x)) for x in np.asarray(vector, dtype=np.float32).ravel()) + "]"


def filter_condition(filters: Filters) -> tuple[sql.Composable, list[Any]]:
    """A condition on ``documents d`` for the documents ``filters`` allow, with its parameters."""
    clauses: list[sql.Composable] = []
    params: list[Any] = []
    if filters.doc_ids is not None:
        clauses.append(sql.SQL("d.doc_id = ANY(%s)"))
        params.append(list(filters.doc_ids))
    if filters.author is not None and fold(filters.author):
        clauses.append(sql.SQL("strpos(d.author_fold, %s) > 0"))
        params.append(fold(filters.author))
    if filters.outlet is not None:
        clauses.append(sql.SQL("d.outlet_fold = %s"))
        params.append(fold(filters.outlet))
    if filters.published_from is not None or filters.published_to is not None:
        clauses.append(sql.SQL("d.day <> ''"))
    if filters.published_from is not None:
        clauses.append(sql.SQL("d.day >= %s"))
        params.append(filters.published_from)
    if filters.published_to is not None:
        clauses.append(sql.SQL("d.day <= %s"))
        params.append(filters.published_to)
    return (sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("true")), params


class PostgresStore(OpenBuild):
    """One complete build in a PostgreSQL database, read by request threads through a pool."""

    def __init__(self, pool: Pool, schema: str, manifest: Manifest, owns_pool: bool = True) -> None:
        self._pool = pool
        self._owns_pool = owns_pool
        self._manifest = manifest
        self.schema = schema
        self._s = sql.Identifier(schema)
        self._hnsw = manifest.vectors.describe().get("type") == "hnsw"
        self._closed = False
        self._documents = {
            row[0]: DocumentRecord.from_row(row)
            for row in self._rows(f"SELECT {_DOCUMENT} FROM {{s}}.documents d ORDER BY d.source", [])
        }
        self._bm25 = BuildBM25(
            _Reader(self._rows, self._s, PASSAGES), _Reader(self._rows, self._s, DOCUMENTS), self._document_positions
        )
        self._masks: dict[Filters, np.ndarray] = {}
        self._masks_lock = threading.Lock()

    # -- build identity -----------------------------------------------------------------------

    @property
    def passage_count(self) -> int:
        return self._manifest.passages

    def close(self) -> None:
        if self._owns_pool:
            self._pool.close()
        self._closed = True

    # -- retrieval --------------------------------------------------------------------------

    def _allowed(self, active: Filters | None) -> tuple[sql.Composable, list[Any]]:
        """The condition on passages ``p`` that keeps the documents ``active`` allows, and its parameters."""
        if active is None:
            return sql.SQL("true"), []
        condition, params = filter_condition(active)
        where = sql.SQL("p.doc_id IN (SELECT d.doc_id FROM {s}.documents d WHERE {c})").format(s=self._s, c=condition)
        return where, params

    def dense(self, query: Vectors, k: int, filters: Filters | None = None) -> list[ScoredPassage]:
        q = vector_literal(query)
        active = filters if filters is not None and filters.active() else None
        where, params = self._allowed(active)
        few = self._few_allowed(active) if self._hnsw and active is not None else None
        if few is not None:
            # By document id, so the planner reads the allowed passages through the (doc_id, ordinal)
            # index: with the documents subquery it scanned all 1M passages (docs/scaling.md).
            where, params = sql.SQL("p.doc_id = ANY(%s)"), [few]
        if not self._hnsw or few is not None:
            exact = sql.SQL(
                "SELECT p.position, p.passage_id, p.doc_id, -(p.embedding <#> %s::vector) AS score "
                'FROM {s}.passages p WHERE {w} ORDER BY score DESC, p.passage_id COLLATE "C" LIMIT %s'
            ).format(s=self._s, w=where)
            rows = self._rows(exact, [q, *params, k])
        else:
            graph = sql.SQL(
                "SELECT p.position, p.passage_id, p.doc_id, -(p.embedding <#> %s::vector) AS score "
                "FROM {s}.passages p WHERE {w} ORDER BY p.embedding <#> %s::vector LIMIT %s"
            ).format(s=self._s, w=where)
            ef = str(min(MAX_EF_SEARCH, max(HNSW_EF_SEARCH, k)))

            def search(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
                with conn.transaction():
                    conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", [ef])
                    conn.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)")
                    return conn.execute(graph, [q, *params, q, k]).fetchall()

            rows = self._pool.run(search)
        # Ties by passage id, as the protocol orders them (the SQL above already does, byte-wise: "C").
        return best_first([ScoredPassage(str(p), str(d), int(pos), float(score)) for pos, p, d, score in rows], k)

    def lexical(
        self, terms: Sequence[str], k: int, weights: Weights, filters: Filters | None = None
    ) -> list[ScoredPassage]:
        active = filters if filters is not None and filters.active() else None
        found = self._bm25.top(terms, k, weights, lambda: None if active is None else self._mask(active))
        if not found:
            return []
        rows = self._rows(
            "SELECT p.position, p.passage_id, p.doc_id FROM {s}.passages p WHERE p.position = ANY(%s)",
            [[position for position, _ in found]],
        )
        ids = {int(pos): (str(p), str(d)) for pos, p, d in rows}
        return best_first([ScoredPassage(*ids[position], position, score) for position, score in found], k)

    # -- passages and documents -------------------------------------------------------------

    def passages(self, passage_ids: Sequence[str]) -> list[PassageRecord]:
        if not passage_ids:
            return []
        rows = self._rows(f"SELECT {_PASSAGE} FROM {{s}}.passages p WHERE p.passage_id = ANY(%s)", [list(passage_ids)])
        found = {record.passage_id: record for record in (PassageRecord(*row) for row in rows)}
        return [found[p] for p in passage_ids if p in found]

    def neighbours(self, passage: PassageRecord) -> tuple[str | None, str | None]:
        rows = self._rows(
            "SELECT p.ordinal, p.passage_id FROM {s}.passages p WHERE p.doc_id = %s AND p.ordinal = ANY(%s)",
            [passage.doc_id, [passage.ordinal - 1, passage.ordinal + 1]],
        )
        found = {int(o): str(p) for o, p in rows}
        return found.get(passage.ordinal - 1), found.get(passage.ordinal + 1)

    def sentences(self, passage_ids: Sequence[str]) -> dict[str, SentenceVectors]:
        if not passage_ids:
            return {}
        rows = self._rows(
            'SELECT p.passage_id, s.start, s."end", s.vector FROM {s}.passages p '
            "JOIN {s}.sentences s ON s.position = p.position WHERE p.passage_id = ANY(%s) "
            "ORDER BY s.position, s.start",
            [list(passage_ids)],
        )
        grouped: dict[str, list[tuple[int, int, bytes]]] = {}
        for passage_id, start, end, blob in rows:
            grouped.setdefault(str(passage_id), []).append((int(start), int(end), bytes(blob)))
        out = {}
        for passage_id, items in grouped.items():
            vectors = np.frombuffer(b"".join(blob for _, _, blob in items), dtype=np.float32)
            out[passage_id] = SentenceVectors([(s, e) for s, e, _ in items], vectors.reshape(len(items), -1))
        return out

    def documents(self) -> list[DocumentRecord]:
        return list(self._documents.values())

    def document(self, doc_id: str) -> DocumentRecord | None:
        return self._documents.get(doc_id)

    def document_text(self, doc_id: str) -> tuple[str, str] | None:
        rows = self._rows("SELECT d.text, d.cleaned FROM {s}.documents d WHERE d.doc_id = %s", [doc_id])
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def document_passages(self, doc_id: str) -> list[PassageRecord]:
        rows = self._rows(f"SELECT {_PASSAGE} FROM {{s}}.passages p WHERE p.doc_id = %s ORDER BY p.ordinal", [doc_id])
        return [PassageRecord(*row) for row in rows]

    # -- internals -----------------------------------------------------------------------

    def _located(self, passage_ids: Sequence[str], query: Vectors | None) -> tuple[dict[str, int], dict[str, float]]:
        if not passage_ids:
            return {}, {}
        rows = self._rows(
            "SELECT p.passage_id, p.position, "
            + ("-(p.embedding <#> %s::vector)" if query is not None else "NULL::float8")
            + " FROM {s}.passages p WHERE p.passage_id = ANY(%s)",
            ([vector_literal(query)] if query is not None else []) + [list(passage_ids)],
        )
        positions = {str(p): int(pos) for p, pos, _ in rows}
        return positions, {str(p): float(c) for p, _, c in rows if c is not None}

    def _rows(self, query: str | sql.Composed, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        if self._closed:
            raise IndexStoreError(f"build {self.build_id} in {self._pool.where} is closed")
        statement = sql.SQL(query).format(s=self._s) if isinstance(query, str) else query
        return self._pool.run(lambda conn: conn.execute(statement, params).fetchall())

    def _few_allowed(self, filters: Filters) -> list[str] | None:
        """The ids of the documents ``filters`` allows when they hold at most EXACT_FILTERED passages, else ``None``."""
        condition, params = filter_condition(filters)
        query = sql.SQL("SELECT d.doc_id, d.n_passages FROM {s}.documents d WHERE {c}").format(s=self._s, c=condition)
        rows = self._rows(query, params)
        return [str(d) for d, _ in rows] if sum(int(n) for _, n in rows) <= EXACT_FILTERED else None

    def _document_positions(self) -> dict[str, int]:
        """Each document's position in its postings (its place in the corpus order)."""
        return {str(d): int(n) for d, n in self._rows("SELECT d.doc_id, d.position FROM {s}.documents d", [])}

    def _mask(self, active: Filters) -> np.ndarray:
        """The passages ``active`` allows as a mask indexed by position (0..n), kept for the last few filters."""
        with self._masks_lock:
            mask = self._masks.get(active)
        if mask is None:
            where, params = self._allowed(active)
            query = sql.SQL("SELECT p.position FROM {s}.passages p WHERE {w}").format(s=self._s, w=where)
            mask = np.zeros(self.passage_count + 1, dtype=bool)
            mask[[int(pos) for (pos,) in self._rows(query, params)]] = True
            with self._masks_lock:
                if len(self._masks) >= _MASKS_CACHED:
                    del self._masks[next(iter(self._masks))]
                self._masks[active] = mask
        return mask


class _Reader:
    """One set of a build's postings (:data:`~qa.index.postings.SOURCES`), read for :class:`qa.index.bm25.Postings`."""

    def __init__(self, rows: _Rows, schema: sql.Identifier, name: str) -> None:
        if name not in SOURCES:
            raise ValueError(f"no postings named {name!r}")
        self._rows = rows
        self._lists = sql.SQL("SELECT term, positions, title_tf, text_tf FROM {}.{} WHERE term = ANY(%s)").format(
            schema, sql.Identifier(name)
        )
        self._statistics = sql.SQL("SELECT rows, tokens, lengths FROM {}.{}").format(
            schema, sql.Identifier(f"{name}_stats")
        )

    def statistics(self) -> tuple[int, int, bytes]:
        rows, tokens, lengths = self._rows(self._statistics, [])[0]
        return int(rows), int(tokens), bytes(lengths)

    def lists(self, tokens: Sequence[str]) -> Iterable[tuple[str, bytes, bytes, bytes]]:
        return [(str(t), bytes(p), bytes(a), bytes(b)) for t, p, a, b in self._rows(self._lists, [list(tokens)])]

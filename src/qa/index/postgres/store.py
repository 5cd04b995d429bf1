"""One build in PostgreSQL + pgvector behind :class:`~qa.index.protocol.PassageStore`.

Dense search is pgvector's inner product (``<#>``, negated: vectors are normalised, so it
is the cosine). A build whose vector index is flat is scored exactly, as the embedded
store's flat FAISS index is; a build with an HNSW index is searched through it with an
iterative scan (pgvector 0.8), so a filter that rejects most neighbours still yields ``k``
passages; a filter that allows few passages (up to :data:`EXACT_FILTERED`) scores them
exactly instead. Lexical search is BM25 computed here from the term statistics the build
wrote, with FTS5's formula and weights (see :mod:`qa.index.lexicon` and docs/postgresql.md).
Every value is a bound parameter; the build's schema is a quoted identifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from qa.embedding.base import Vectors
from qa.errors import IndexStoreError
from qa.index.filters import Filters, fold
from qa.index.lexicon import K1, B, query_lexemes
from qa.index.manifest import Manifest
from qa.index.postgres.connection import Pool
from qa.index.protocol import PassageScores, ScoredPassage, SentenceVectors, Weights
from qa.index.records import DocumentRecord, PassageRecord
from qa.index.vector_index import HNSW_EF_SEARCH

#: A filter allowing at most this many passages is scored exactly (a sequential pass over
#: them) rather than through the HNSW graph: exact and, at this size, as fast.
EXACT_FILTERED = 20_000
#: pgvector's largest hnsw.ef_search; a k above it is served by the iterative scan.
MAX_EF_SEARCH = 1000

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


class PostgresStore:
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

    # -- build identity -----------------------------------------------------------------------

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def build_id(self) -> str:
        return self._manifest.build_id

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
                "FROM {s}.passages p WHERE {w} ORDER BY score DESC, p.position LIMIT %s"
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

            rows = sorted(self._pool.run(search), key=lambda r: (-float(r[3]), int(r[0])))
        return [ScoredPassage(str(p), str(d), int(pos), float(score)) for pos, p, d, score in rows]

    def lexical(
        self, terms: Sequence[str], k: int, weights: Weights, filters: Filters | None = None
    ) -> list[ScoredPassage]:
        lexemes = query_lexemes(terms)
        if not lexemes:
            return []
        active = filters if filters is not None and filters.active() else None
        where, params = self._allowed(active)
        query = sql.SQL(
            "SELECT p.position, p.passage_id, p.doc_id, b.score FROM ({bm25}) b "
            "JOIN {s}.passages p ON p.position = b.position WHERE {w} ORDER BY b.score DESC, p.position LIMIT %s"
        ).format(bm25=self._bm25_sql("true"), s=self._s, w=where)
        rows = self._rows(query, [*self._bm25_params(lexemes, weights), *params, k])
        return [ScoredPassage(str(p), str(d), int(pos), float(score)) for pos, p, d, score in rows]

    def scores(
        self,
        passage_ids: Sequence[str],
        query: Vectors | None = None,
        terms: Sequence[str] | None = None,
        weights: Weights = (1.0, 1.0),
    ) -> dict[str, PassageScores]:
        if not passage_ids:
            return {}
        rows = self._rows(
            "SELECT p.passage_id, p.position, "
            + ("-(p.embedding <#> %s::vector)" if query is not None else "NULL::float8")
            + " FROM {s}.passages p WHERE p.passage_id = ANY(%s)",
            ([vector_literal(query)] if query is not None else []) + [list(passage_ids)],
        )
        positions = {str(p): int(pos) for p, pos, _ in rows}
        cosines = {str(p): (None if c is None else float(c)) for p, _, c in rows}
        lexical: dict[int, float] = {}
        lexemes = query_lexemes(terms or ())
        if lexemes and positions:
            bm25 = self._bm25_sql("t.position = ANY(%s)")
            found = self._rows(bm25, [*self._bm25_params(lexemes, weights, list(positions.values()))])
            lexical = {int(pos): float(score) for pos, score in found}
        return {p: PassageScores(cosines[p], lexical.get(positions[p])) for p in passage_ids if p in positions}

    def document_scores(self, terms: Sequence[str], doc_ids: Sequence[str], weights: Weights) -> dict[str, float]:
        lexemes = query_lexemes(terms)
        if not lexemes or not doc_ids:
            return {}
        rows = self._rows(
            "SELECT t.doc_id, sum(q.idf * (x.w * %s) / (x.w + %s * (1 - %s + %s * d.length / st.document_length))) "
            "FROM {s}.doc_postings t JOIN {s}.doc_terms q ON q.lexeme = t.lexeme "
            "JOIN {s}.documents d ON d.doc_id = t.doc_id CROSS JOIN {s}.stats st "
            "CROSS JOIN LATERAL (SELECT %s * t.tf_title + %s * t.tf_text AS w) x "
            "WHERE t.lexeme = ANY(%s) AND t.doc_id = ANY(%s) GROUP BY t.doc_id",
            [K1 + 1, K1, B, B, weights[0], weights[1], lexemes, list(doc_ids)],
        )
        return {str(d): float(score) for d, score in rows}

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

    def _bm25_sql(self, condition: str) -> sql.Composed:
        """``(position, score)`` of the passages holding any of the lexemes, FTS5's bm25() with weights."""
        return sql.SQL(
            "SELECT t.position, sum(q.idf * (x.w * %s) / (x.w + %s * (1 - %s + %s * p.length / st.passage_length)))"
            " AS score FROM {s}.postings t JOIN {s}.terms q ON q.lexeme = t.lexeme "
            "JOIN {s}.passages p ON p.position = t.position CROSS JOIN {s}.stats st "
            "CROSS JOIN LATERAL (SELECT %s * t.tf_title + %s * t.tf_text AS w) x "
            "WHERE t.lexeme = ANY(%s) AND " + condition + " GROUP BY t.position"
        ).format(s=self._s)

    @staticmethod
    def _bm25_params(lexemes: list[str], weights: Weights, positions: list[int] | None = None) -> list[Any]:
        params: list[Any] = [K1 + 1, K1, B, B, float(weights[0]), float(weights[1]), lexemes]
        return params if positions is None else [*params, positions]

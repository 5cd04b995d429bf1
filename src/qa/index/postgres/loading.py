"""Writing one build into PostgreSQL: its schema loaded with COPY (documents, passages with
their vectors, sentences, BM25 postings), then its indexes, the HNSW graph last; and the
vectors of texts that kept builds already embedded, reused by an incremental build.

The postings are derived as the embedded build derives them: FTS5 cuts the text in a temporary
SQLite file and each term's list is read out of its index (:mod:`qa.index.postings`).
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from qa.embedding.base import Vectors
from qa.errors import IndexStoreError
from qa.index.filters import fold
from qa.index.postgres.schema import BUILD_INDEXES, BUILD_TABLES, HNSW_INDEX, render, schema_name
from qa.index.postgres.store import vector_literal
from qa.index.postings import DOCUMENTS, PASSAGES, SOURCES, fill_fts, statistics, term_lists
from qa.index.prepare import Prepared
from qa.index.records import encode_pages
from qa.index.sentence_vectors import text_key
from qa.index.vector_index import HNSW_EF_CONSTRUCTION, HNSW_M
from qa.ingest.chunking import Passage
from qa.ingest.cleaning import cleaned_text
from qa.ingest.documents import Document

#: Rows looked up per statement when a build reuses vectors.
_REUSE_BATCH = 5000


class DatabaseVectors:
    """Vectors of texts the kept builds already embedded, found by the sha256 of the text (incremental builds)."""

    def __init__(self, conn: psycopg.Connection, schemas: list[str], dimension: int) -> None:
        self._conn = conn
        self._schemas = schemas
        self._dimension = dimension

    def get(self, keys: Sequence[str]) -> dict[str, Vectors]:
        found: dict[str, Vectors] = {}
        wanted = list(dict.fromkeys(keys))
        for schema in self._schemas:
            s = sql.Identifier(schema)
            for start in range(0, len(wanted), _REUSE_BATCH):
                batch = [k for k in wanted[start : start + _REUSE_BATCH] if k not in found]
                if not batch:
                    continue
                passages = self._conn.execute(
                    sql.SQL(
                        "SELECT DISTINCT ON (text_key) text_key, embedding::text FROM {}.passages "
                        "WHERE text_key = ANY(%s)"
                    ).format(s),
                    [batch],
                ).fetchall()
                for key, text in passages:
                    found[str(key)] = np.array(str(text).strip("[]").split(","), dtype=np.float32)
                rest = [k for k in batch if k not in found]
                if rest:
                    sentences = self._conn.execute(
                        sql.SQL(
                            "SELECT DISTINCT ON (text_key) text_key, vector FROM {}.sentences WHERE text_key = ANY(%s)"
                        ).format(s),
                        [rest],
                    ).fetchall()
                    for key, blob in sentences:
                        found[str(key)] = np.frombuffer(bytes(blob), dtype=np.float32).copy()
        return {k: v for k, v in found.items() if v.shape == (self._dimension,)}

    def put(self, keys: Sequence[str], vectors: Vectors) -> None:
        """New vectors are written with the build itself."""

    def get_chunks(self, keys: Sequence[str]) -> dict[str, list[list[Any]]]:
        return {}  # chunking is cheap next to embedding: every document is chunked again

    def put_chunks(self, items: dict[str, list[list[Any]]]) -> None:
        """Passage boundaries are not cached in the database."""

    def extractions(self) -> None:
        """Extractions are not kept in the database: a corpus folder's files are extracted at each build."""

    def committed(self, commit_id: str, kept: Sequence[str]) -> None:
        """Nothing to forget: the vectors live in the kept builds' own schemas."""

    def close(self) -> None:
        """The connection is the engine's (the one holding the build lock)."""


def write_schema(
    conn: psycopg.Connection,
    build_id: str,
    documents: Sequence[Document],
    prepared: Prepared,
    hnsw: bool,
    dimension: int,
) -> None:
    """The build's schema, loaded with COPY and indexed, in one transaction.

    The postings are derived first, outside the transaction, as the embedded build derives
    them (:func:`cut_by_fts5`), and copied in with the rows.
    """
    schema = schema_name(build_id)
    s = sql.Identifier(schema)
    if len(prepared.spans) != len(prepared.sentence_vectors):
        raise IndexStoreError(f"{len(prepared.spans)} sentences but {len(prepared.sentence_vectors)} sentence vectors")
    cleaned = [cleaned_text(d.text, list(d.blocks)) for d in documents]
    with cut_by_fts5(documents, cleaned, prepared.passages) as lexical, conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(s))
        conn.execute(render(BUILD_TABLES, schema, dimension=dimension))
        _copy_documents(conn, s, documents, cleaned, prepared.passages)
        _copy_passages(conn, s, prepared)
        _copy_sentences(conn, s, prepared)
        _copy_postings(conn, s, lexical, {PASSAGES: len(prepared.passages), DOCUMENTS: len(documents)})
        conn.execute(render(BUILD_INDEXES, schema))
        if hnsw:
            conn.execute(render(HNSW_INDEX, schema, m=HNSW_M, ef=HNSW_EF_CONSTRUCTION))
    with conn.transaction():
        conn.execute(sql.SQL("ANALYZE {}.passages").format(s))


@contextmanager
def cut_by_fts5(
    documents: Sequence[Document], cleaned: Sequence[str], passages: Sequence[Passage]
) -> Iterator[sqlite3.Connection]:
    """The build's text cut by FTS5 into its tables (:func:`~qa.index.postings.fill_fts`), in a
    temporary SQLite file deleted afterwards, where :mod:`tempfile` puts files (``TMPDIR``): a file,
    not memory, because corpora reach 1M passages (SciFact's 22,233 passages and 5,183 documents
    took 11 MB, filled in 0.3 s; 1M passages would take about 45 times that)."""
    with tempfile.TemporaryDirectory(prefix="qa-fts5-") as folder:
        db = sqlite3.connect(Path(folder) / "fts5.sqlite")
        try:
            # Nothing to recover after a crash: the file is thrown away with the build that died.
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            fill_fts(db, documents, cleaned, passages)
            db.commit()
            yield db
        finally:
            db.close()


def _copy_documents(
    conn: psycopg.Connection,
    s: sql.Identifier,
    documents: Sequence[Document],
    cleaned: Sequence[str],
    passages: Sequence[Passage],
) -> None:
    counts: dict[str, int] = {}
    for p in passages:
        counts[p.doc_id] = counts.get(p.doc_id, 0) + 1
    with conn.cursor().copy(
        sql.SQL(
            "COPY {}.documents (doc_id, position, source, title, author, url, published, outlet, sha256, encoding, "
            "format, pages, text, cleaned, author_fold, outlet_fold, day, n_passages) FROM STDIN"
        ).format(s)
    ) as copy:
        for position, (d, text) in enumerate(zip(documents, cleaned, strict=True), start=1):
            copy.write_row(
                (
                    d.doc_id, position, d.source, d.title, d.author, d.url, d.published, d.outlet, d.sha256,
                    d.encoding, d.format, encode_pages(d.pages), d.text, text,
                    fold(d.author or ""), fold(d.outlet or ""), (d.published or "")[:10], counts.get(d.doc_id, 0),
                )
            )  # fmt: skip


def _copy_passages(conn: psycopg.Connection, s: sql.Identifier, prepared: Prepared) -> None:
    with conn.cursor().copy(
        sql.SQL(
            'COPY {}.passages (position, passage_id, doc_id, ordinal, start, "end", section, n_tokens, text, '
            "text_key, embedding) FROM STDIN"
        ).format(s)
    ) as copy:
        rows = zip(prepared.passages, prepared.texts, prepared.vectors, strict=True)
        for position, (p, text, vector) in enumerate(rows, start=1):
            copy.write_row(
                (
                    position, p.passage_id, p.doc_id, p.ordinal, p.start, p.end, p.section, p.n_tokens, p.text,
                    text_key(text), vector_literal(vector),
                )
            )  # fmt: skip


def _copy_sentences(conn: psycopg.Connection, s: sql.Identifier, prepared: Prepared) -> None:
    rows = np.ascontiguousarray(prepared.sentence_vectors, dtype=np.float32)
    with conn.cursor().copy(
        sql.SQL('COPY {}.sentences (position, start, "end", text_key, vector) FROM STDIN').format(s)
    ) as copy:
        for n, (i, start, end) in enumerate(prepared.spans):
            copy.write_row((i + 1, start, end, prepared.sentence_keys[n], rows[n].tobytes()))


def _copy_postings(
    conn: psycopg.Connection, s: sql.Identifier, lexical: sqlite3.Connection, rows: dict[str, int]
) -> None:
    """Each set's lists, read out of FTS5's index in ``lexical`` (:func:`~qa.index.postings.term_lists`),
    and its statistics; ``rows``: how many rows each set has."""
    for name, count in rows.items():
        lengths = np.zeros(count + 1, dtype=np.int32)
        table = sql.Identifier(name)
        with conn.cursor().copy(
            sql.SQL("COPY {}.{} (term, positions, title_tf, text_tf) FROM STDIN").format(s, table)
        ) as copy:
            for found in term_lists(lexical, SOURCES[name], lengths):
                copy.write_row(found)
        conn.execute(
            sql.SQL("INSERT INTO {}.{} (rows, tokens, lengths) VALUES (%s, %s, %s)").format(
                s, sql.Identifier(f"{name}_stats")
            ),
            list(statistics(count, lengths)),
        )

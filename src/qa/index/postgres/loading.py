"""Writing one build into PostgreSQL: its schema loaded with COPY (documents, passages with
their vectors, sentences, BM25 postings), then its indexes, the HNSW graph last; and the
vectors of texts that kept builds already embedded, reused by an incremental build.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from qa.embedding.base import Vectors
from qa.errors import IndexStoreError
from qa.index import lexicon
from qa.index.embedded.cache import text_key
from qa.index.filters import fold
from qa.index.postgres.schema import BUILD_INDEXES, BUILD_TABLES, HNSW_INDEX, render, schema_name
from qa.index.postgres.store import vector_literal
from qa.index.prepare import Prepared
from qa.index.records import encode_pages
from qa.index.vector_index import HNSW_EF_CONSTRUCTION, HNSW_M
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
    """The build's schema, loaded with COPY and indexed, in one transaction."""
    schema = schema_name(build_id)
    s = sql.Identifier(schema)
    passages = prepared.passages
    if len(prepared.spans) != len(prepared.sentence_vectors):
        raise IndexStoreError(f"{len(prepared.spans)} sentences but {len(prepared.sentence_vectors)} sentence vectors")
    titles = {d.doc_id: d.title for d in documents}
    counts: dict[str, int] = {}
    for p in passages:
        counts[p.doc_id] = counts.get(p.doc_id, 0) + 1
    with conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(s))
        conn.execute(render(BUILD_TABLES, schema, dimension=dimension))
        with conn.cursor().copy(
            sql.SQL(
                "COPY {}.documents (doc_id, source, title, author, url, published, outlet, sha256, encoding, format, "
                "pages, text, cleaned, author_fold, outlet_fold, day, length, n_passages) FROM STDIN"
            ).format(s)
        ) as copy:
            doc_postings: list[tuple[str, str, int, int]] = []
            for d in documents:
                cleaned = cleaned_text(d.text, list(d.blocks))
                title_terms, title_length = lexicon.term_counts(d.title)
                text_terms, text_length = lexicon.term_counts(cleaned or d.text)
                for lexeme in title_terms.keys() | text_terms.keys():
                    doc_postings.append((lexeme, d.doc_id, title_terms[lexeme], text_terms[lexeme]))
                copy.write_row(
                    (
                        d.doc_id, d.source, d.title, d.author, d.url, d.published, d.outlet, d.sha256, d.encoding,
                        d.format, encode_pages(d.pages), d.text, cleaned,
                        fold(d.author or ""), fold(d.outlet or ""), (d.published or "")[:10],
                        title_length + text_length, counts.get(d.doc_id, 0),
                    )
                )  # fmt: skip
        postings: list[tuple[str, int, int, int]] = []
        with conn.cursor().copy(
            sql.SQL(
                'COPY {}.passages (position, passage_id, doc_id, ordinal, start, "end", section, n_tokens, text, '
                "length, text_key, embedding) FROM STDIN"
            ).format(s)
        ) as copy:
            for position, (p, text, vector) in enumerate(
                zip(passages, prepared.texts, prepared.vectors, strict=True), start=1
            ):
                title_terms, title_length = lexicon.term_counts(titles.get(p.doc_id, ""))
                text_terms, text_length = lexicon.term_counts(p.text)
                for lexeme in title_terms.keys() | text_terms.keys():
                    postings.append((lexeme, position, title_terms[lexeme], text_terms[lexeme]))
                copy.write_row(
                    (
                        position, p.passage_id, p.doc_id, p.ordinal, p.start, p.end, p.section, p.n_tokens, p.text,
                        title_length + text_length, text_key(text), vector_literal(vector),
                    )
                )  # fmt: skip
        rows = np.ascontiguousarray(prepared.sentence_vectors, dtype=np.float32)
        with conn.cursor().copy(
            sql.SQL('COPY {}.sentences (position, start, "end", text_key, vector) FROM STDIN').format(s)
        ) as copy:
            for n, (i, start, end) in enumerate(prepared.spans):
                copy.write_row((i + 1, start, end, prepared.sentence_keys[n], rows[n].tobytes()))
        with conn.cursor().copy(
            sql.SQL("COPY {}.postings (lexeme, position, tf_title, tf_text) FROM STDIN").format(s)
        ) as copy:
            for row in postings:
                copy.write_row(row)
        with conn.cursor().copy(
            sql.SQL("COPY {}.doc_postings (lexeme, doc_id, tf_title, tf_text) FROM STDIN").format(s)
        ) as copy:
            for doc_row in doc_postings:
                copy.write_row(doc_row)
        conn.execute(render(BUILD_INDEXES, schema))
        if hnsw:
            conn.execute(render(HNSW_INDEX, schema, m=HNSW_M, ef=HNSW_EF_CONSTRUCTION))
    with conn.transaction():
        conn.execute(sql.SQL("ANALYZE {}.passages").format(s))
        conn.execute(sql.SQL("ANALYZE {}.postings").format(s))

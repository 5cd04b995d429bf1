"""The tables of the PostgreSQL store: a registry of builds, the live pointer, and one schema per build.

::

    qa.builds (build_id, schema_name, manifest jsonb, created_at)   every complete build
    qa.live   (id = 1, build_id)                                    the build every replica serves
    qa_b_<build>.documents   doc_id, position 1..n, metadata, text, cleaned, folded author/outlet
    qa_b_<build>.passages    position 1..n, passage_id, offsets, text, embedding vector(d), text_key
    qa_b_<build>.sentences   (position, start) -> end, vector (float32 bytes), text_key
    qa_b_<build>.postings    term -> positions, tf in title, tf in text (int32 bytes)  [BM25 of passages]
    qa_b_<build>.postings_stats           one row: passages, their tokens, each one's length
    qa_b_<build>.document_postings, document_postings_stats   the same by document position

A build's schema is created and filled in one transaction and registered in ``qa.builds``
in it; making it live is a second, one-row transaction on ``qa.live``; a dropped build is
``DROP SCHEMA ... CASCADE``. ``text_key`` (sha256 of the text the model saw) lets the next
build reuse vectors instead of embedding again. The postings are the embedded build's, derived
from FTS5's index the same way (:mod:`qa.index.postings`) and scored by :mod:`qa.index.bm25`;
a document's ``position`` is its place in the corpus order, as the embedded build's rowid.
"""

from __future__ import annotations

import re

from psycopg import sql

from qa.index.records import DOCUMENT_TABLE_COLUMNS, PASSAGE_TABLE_COLUMNS, SENTENCE_TABLE_COLUMNS

#: Registry and live pointer, created once per database.
REGISTRY = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA IF NOT EXISTS qa;
CREATE TABLE IF NOT EXISTS qa.builds (
    build_id    TEXT PRIMARY KEY,
    schema_name TEXT NOT NULL UNIQUE,
    manifest    JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS qa.live (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    build_id TEXT NOT NULL REFERENCES qa.builds(build_id)
);
"""

#: One build's tables, before loading (indexes come after COPY). ``{dimension}`` is an int.
BUILD_TABLES = (
    """
CREATE TABLE {schema}.documents ("""
    + DOCUMENT_TABLE_COLUMNS
    + """,
    position    INTEGER NOT NULL,
    author_fold TEXT NOT NULL,
    outlet_fold TEXT NOT NULL,
    day         TEXT NOT NULL,
    n_passages  INTEGER NOT NULL
);
CREATE TABLE {schema}.passages (
    position   INTEGER PRIMARY KEY,"""
    + PASSAGE_TABLE_COLUMNS
    + """,
    text_key   TEXT NOT NULL,
    embedding  vector({dimension}) NOT NULL
);
CREATE TABLE {schema}.sentences ("""
    + SENTENCE_TABLE_COLUMNS
    + """,
    text_key   TEXT NOT NULL,
    vector     BYTEA NOT NULL,
    PRIMARY KEY (position, start)
);
CREATE TABLE {schema}.postings (term TEXT NOT NULL, positions BYTEA NOT NULL, title_tf BYTEA NOT NULL,
                                text_tf BYTEA NOT NULL);
CREATE TABLE {schema}.postings_stats (rows INTEGER NOT NULL, tokens BIGINT NOT NULL, lengths BYTEA NOT NULL);
CREATE TABLE {schema}.document_postings (term TEXT NOT NULL, positions BYTEA NOT NULL, title_tf BYTEA NOT NULL,
                                         text_tf BYTEA NOT NULL);
CREATE TABLE {schema}.document_postings_stats (rows INTEGER NOT NULL, tokens BIGINT NOT NULL,
                                               lengths BYTEA NOT NULL);
"""
)

#: After loading: keys and lookups.
BUILD_INDEXES = """
CREATE UNIQUE INDEX ON {schema}.passages (passage_id);
CREATE UNIQUE INDEX ON {schema}.passages (doc_id, ordinal);
CREATE INDEX ON {schema}.sentences (text_key);
CREATE INDEX ON {schema}.passages (text_key);
ALTER TABLE {schema}.postings ADD PRIMARY KEY (term);
ALTER TABLE {schema}.document_postings ADD PRIMARY KEY (term);
"""

#: pgvector HNSW over inner product (vectors are normalised, so it ranks as cosine).
HNSW_INDEX = (
    "CREATE INDEX ON {schema}.passages USING hnsw (embedding vector_ip_ops) WITH (m = {m}, ef_construction = {ef})"
)

_SCHEMA_PREFIX = "qa_b_"


def schema_name(build_id: str) -> str:
    """The schema of a build: ``qa_b_`` and the build id lower-cased, anything but ``[a-z0-9]`` as ``_``."""
    return _SCHEMA_PREFIX + re.sub(r"[^a-z0-9]", "_", build_id.lower())[:50]


def render(template: str, schema: str, **numbers: int) -> sql.Composed:
    """A DDL template with the schema as a quoted identifier and integers as literals (never text)."""
    return sql.SQL(template).format(
        schema=sql.Identifier(schema), **{k: sql.Literal(int(v)) for k, v in numbers.items()}
    )

"""PostgreSQL's engine: segments as schemas written with COPY, commits as rows, made live in one transaction.

The lifecycle (:mod:`qa.index.lifecycle`) is the same for every store; this is what a database
does for it. A segment is one schema (``qa_b_<id>``), written in one transaction: COPY of
documents, passages (with their vectors), sentences and BM25 postings, then the indexes (the HNSW
graph after the rows: inserting into an indexed table measured 188 rows/s against about 12,600
rows/s for COPY). A segment that dies on the way leaves nothing (the server rolls the transaction
back). A commit is its row in ``qa.builds`` (with the manifest); switching updates the one row
of ``qa.live`` in a transaction of its own: every replica sees the old build or the new one,
never half of one. Writes hold a PostgreSQL advisory lock, so two hosts building into one
database take turns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from qa.embedding.identity import ModelIdentity
from qa.errors import IndexCorruptError, IndexNotFoundError, IndexStoreError
from qa.index.engine import Segment
from qa.index.manifest import BuildIdentity, Manifest, check_compatible, check_manifest
from qa.index.postgres.connection import Pool, redact, scrub
from qa.index.postgres.loading import DatabaseVectors, write_schema
from qa.index.postgres.schema import REGISTRY, schema_name
from qa.index.postgres.store import PostgresStore
from qa.index.prepare import Prepared
from qa.index.vector_index import VectorIndexSpec
from qa.ingest.documents import Document

log = logging.getLogger(__name__)

#: The advisory lock every build, switch and rollback of one database holds (an arbitrary constant: "qa" in ASCII).
BUILD_LOCK = 0x7161


class PostgresEngine:
    """A PostgreSQL database holding qa builds (``QA_STORE=postgresql://...``)."""

    name = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self.where = redact(url)
        self._pool = Pool(url)
        #: The connection holding the lock while a write is under way (:meth:`lock`).
        self._conn: psycopg.Connection | None = None

    def close(self) -> None:
        self._pool.close()

    # -- reading -------------------------------------------------------------------------------

    def current(self) -> str:
        rows = self._pool.run(_live_rows)
        if not rows:
            raise IndexNotFoundError(f"no index in {self.where}: build one with `qa build --store ...`")
        return str(rows[0][0])

    def commits(self) -> list[str]:
        return [str(b) for (b,) in self._pool.run(_build_rows)]

    def manifest(self, commit_id: str) -> dict[str, Any]:
        rows = self._pool.run(
            lambda c: (
                c.execute("SELECT manifest FROM qa.builds WHERE build_id = %s", [commit_id]).fetchall()
                if _has_registry(c)
                else []
            )
        )
        if not rows:
            raise IndexNotFoundError(f"no complete build {commit_id!r} in {self.where}")
        manifest = rows[0][0]
        if not isinstance(manifest, dict):
            raise IndexCorruptError(
                f"build {commit_id} in {self.where} has no manifest object: rebuild with `qa build`"
            )
        return manifest

    def open_commit(self, commit_id: str, expected: BuildIdentity | None) -> PostgresStore:
        """The build ``commit_id``, refused unless it was made as ``expected`` says (invariant 6)."""
        raw = self.manifest(commit_id)
        check_compatible(raw, expected, f"{self.where} (build {commit_id})")
        label = Path(commit_id)  # what manifest messages name (the URL has no place in a path)
        check_manifest(label, raw)
        manifest = Manifest.from_json(raw, label)
        pool = Pool(self.url)
        try:
            store = PostgresStore(pool, schema_name(commit_id), manifest)
            counted = pool.run(
                lambda c: c.execute(
                    sql.SQL("SELECT count(*) FROM {}.passages").format(sql.Identifier(store.schema))
                ).fetchone()
            )
        except psycopg.errors.UndefinedTable:
            pool.close()
            raise IndexCorruptError(
                f"build {commit_id} in {self.where} has no tables: rebuild with `qa build`"
            ) from None
        except BaseException:
            pool.close()
            raise
        if counted is None or int(counted[0]) != manifest.passages:
            pool.close()
            raise IndexCorruptError(
                f"build {commit_id} in {self.where} holds {counted[0] if counted else 0} passages, its manifest "
                f"says {manifest.passages}. Rebuild with `qa build`."
            )
        return store

    def verify_commit(self, commit_id: str) -> None:
        """What opening leaves out: that both sets of postings count the rows the manifest records. A
        database keeps its own pages whole (checksums, WAL), so there is no file of ours to hash."""
        manifest = self.manifest(commit_id)
        schema = sql.Identifier(schema_name(commit_id))
        for table, key in (("postings_stats", "passages"), ("document_postings_stats", "documents")):
            query = sql.SQL("SELECT rows FROM {}.{}").format(schema, sql.Identifier(table))

            def read(conn: psycopg.Connection, query: sql.Composed = query) -> list[tuple[Any, ...]]:
                return conn.execute(query).fetchall()

            try:
                rows = self._pool.run(read)
            except psycopg.errors.UndefinedTable:
                rows = []
            if [int(r) for (r,) in rows] != [manifest.get(key)]:
                raise IndexCorruptError(
                    f"build {commit_id} in {self.where}: {table} counts {rows or 'nothing'}, its manifest "
                    f"{manifest.get(key)} {key}. Rebuild with `qa build`."
                )

    # -- writing (under the lock) ------------------------------------------------------------------

    @contextmanager
    def lock(self) -> Iterator[None]:
        """A connection of its own holding the build lock (released when it closes)."""
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise IndexStoreError(
                f"cannot connect to the PostgreSQL store at {self.where}: {scrub(str(exc).strip(), self.url)}"
            ) from None
        try:
            conn.execute(REGISTRY)
            conn.execute("SELECT pg_advisory_lock(%s)", [BUILD_LOCK])
            self._conn = conn
            self._drop_orphans()
            yield
        finally:
            self._conn = None
            conn.close()

    def reuse(self, model: ModelIdentity) -> DatabaseVectors:
        """Vectors the kept builds hold, found by the sha256 of the text."""
        return DatabaseVectors(self._locked(), [schema_name(b) for b in self.commits()], model.dimension)

    def write_segment(
        self, segment_id: str, documents: Sequence[Document], prepared: Prepared, spec: VectorIndexSpec
    ) -> Segment:
        hnsw = spec.describe().get("type") == "hnsw"
        write_schema(self._locked(), segment_id, documents, prepared, hnsw, prepared.vectors.shape[1])
        return Segment(segment_id, {"schema": schema_name(segment_id)})

    def write_commit(self, commit_id: str, segments: Sequence[Segment], manifest: dict[str, Any]) -> None:
        if len(segments) != 1 or segments[0].segment_id != commit_id:
            raise IndexStoreError(f"a PostgreSQL build commits the one schema written for it, not {segments!r}")
        conn = self._locked()
        with conn.transaction():
            conn.execute(
                "INSERT INTO qa.builds (build_id, schema_name, manifest) VALUES (%s, %s, %s)",
                [commit_id, schema_name(commit_id), Jsonb(manifest)],
            )

    def switch(self, commit_id: str) -> None:
        conn = self._locked()
        with conn.transaction():
            conn.execute(
                "INSERT INTO qa.live (id, build_id) VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET build_id = %s",
                [commit_id, commit_id],
            )

    def drop_unused(self, kept: Sequence[str]) -> list[str]:
        conn = self._locked()
        dropped = []
        for build_id in self.commits():
            if build_id not in kept:
                with conn.transaction():
                    conn.execute("DELETE FROM qa.builds WHERE build_id = %s", [build_id])
                    conn.execute(
                        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema_name(build_id)))
                    )
                dropped.append(build_id)
        return dropped

    # -- internals -------------------------------------------------------------------------------

    def _locked(self) -> psycopg.Connection:
        if self._conn is None:
            raise IndexStoreError(f"writing to {self.where} needs its build lock (StoreLocation takes it)")
        return self._conn

    def _drop_orphans(self) -> None:
        """Schemas of builds no row registers (left by a build that died between its schema and its row)."""
        conn = self._locked()
        registered = {schema_name(b) for b in self.commits()}
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", ["qa\\_b\\_%"]).fetchall()
        for (name,) in rows:
            if name not in registered:
                log.warning("dropping schema %s of %s: no build registers it", name, self.where)
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _has_registry(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass('qa.live') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _live_rows(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    if not _has_registry(conn):
        return []
    return conn.execute("SELECT build_id FROM qa.live WHERE id = 1").fetchall()


def _build_rows(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    if not _has_registry(conn):
        return []
    return conn.execute("SELECT build_id FROM qa.builds ORDER BY build_id").fetchall()

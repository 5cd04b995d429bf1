"""Vectors already computed, kept with the index so a rebuild embeds only new text.

One SQLite file, ``index/embedding-cache.sqlite``, maps (model key, sha256 of the text
the model saw) to a vector, (chunker key, document) to the document's passage
boundaries, (extractor version, sha256 of a web page, PDF or Word file) to its
extracted text, and (reader version, path, sha256 of any article and of its sidecar) to the
document read from it, so an unchanged article is neither re-read, re-extracted, re-cleaned,
re-chunked nor re-embedded. Each row
remembers the last build that used it; after a successful build, rows used by no
build still on disk are dropped, so the cache holds what the live and the previous
build need, nothing more. Rows are committed one slice
of embedded passages at a time (never one row at a time), so a build that dies halfway
leaves its work for the next one. The file is in WAL mode: a commit is one append to the
log, and a process killed mid-write leaves the last committed state. The cache is
disposable: a damaged file is replaced by an empty one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.embedding.base import Vectors
from qa.ingest.extract import Extraction

log = logging.getLogger(__name__)

CACHE_FILE = "embedding-cache.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model      TEXT NOT NULL,
    key        TEXT NOT NULL,
    vector     BLOB NOT NULL,
    last_build TEXT NOT NULL,
    PRIMARY KEY (model, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chunks (
    key        TEXT PRIMARY KEY,
    spans      TEXT NOT NULL,
    last_build TEXT NOT NULL
) WITHOUT ROWID;
-- The text, metadata and page map extracted from a web page, PDF or Word file, by
-- extractor, extractor version and sha256 of the file (see qa.ingest.extract).
CREATE TABLE IF NOT EXISTS extractions (
    key        TEXT PRIMARY KEY,
    payload    TEXT NOT NULL,
    last_build TEXT NOT NULL
) WITHOUT ROWID;
-- A document as read from a file of any format (qa.ingest.documents.Document.to_json), by the
-- reader's code, extractor version, path and sha256 of the file and of its sidecar
-- (qa.ingest.documents.document_key): an unchanged file is not decoded and cleaned again.
-- A rowid table: its rows hold whole articles, too large for WITHOUT ROWID (SciFact's 9.6 MB of
-- documents took 24 MB that way, 13.7 MB as a rowid table).
CREATE TABLE IF NOT EXISTS documents (
    key        TEXT PRIMARY KEY,
    payload    TEXT NOT NULL,
    last_build TEXT NOT NULL
);
"""
#: Keys looked up per statement: below 999, the bound-parameter limit of SQLite builds
#: before 3.32 (SQLITE_MAX_VARIABLE_NUMBER), so every SQLite this runs on accepts it.
_BATCH = 500


def model_key(identity: dict[str, Any]) -> str:
    """A short stable key for a model identity (name, revision, dimension, probe)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


class EmbeddingCache:
    """Lookup and storage of vectors for one model, stamped with the build that uses them."""

    def __init__(self, index_dir: Path, model: str, dimension: int, build: str) -> None:
        self.path = index_dir / CACHE_FILE
        self.model = model
        self.dimension = dimension
        self.build = build
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = self._open()
            db.execute("SELECT COUNT(*) FROM vectors").fetchone()
        except sqlite3.DatabaseError as exc:
            log.warning("embedding cache %s is unreadable (%s); starting an empty one", self.path, exc)
            for suffix in ("", "-wal", "-shm", "-journal"):
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            db = self._open()
        return db

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL loses at most the last commits on power loss, never consistency;
            # the cache is disposable, so that is the right trade for faster commits.
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def close(self) -> None:
        self._db.close()

    def get(self, keys: Sequence[str]) -> dict[str, Vectors]:
        """Vectors found for ``keys``; each one found is stamped with this build.

        Linear in ``len(keys)``: one primary-key lookup per key, in slices of ``_BATCH``,
        and a single commit at the end.
        """
        found: dict[str, Vectors] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _BATCH):
            chunk = unique[start : start + _BATCH]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, vector FROM vectors WHERE model = ? AND key IN ({marks})",  # noqa: S608
                [self.model, *chunk],
            ).fetchall()
            hits = []
            for key, blob in rows:
                vector = np.frombuffer(blob, dtype=np.float32)
                if vector.shape == (self.dimension,):
                    found[key] = vector
                    hits.append(key)
            self._db.executemany(
                "UPDATE vectors SET last_build = ? WHERE model = ? AND key = ?",
                [(self.build, self.model, key) for key in hits],
            )
        self._db.commit()
        return found

    def put(self, keys: Sequence[str], vectors: Vectors) -> None:
        """Store freshly computed vectors in one transaction (committed at once: a crash keeps them)."""
        self._db.executemany(
            "INSERT OR REPLACE INTO vectors (model, key, vector, last_build) VALUES (?, ?, ?, ?)",
            [
                (self.model, key, np.ascontiguousarray(vec, dtype=np.float32).tobytes(), self.build)
                for key, vec in zip(keys, vectors, strict=True)
            ],
        )
        self._db.commit()

    def get_chunks(self, keys: Sequence[str]) -> dict[str, list[list[Any]]]:
        """Passage boundaries stored for ``keys`` (see :func:`qa.index.prepare.chunk_key`), stamped with this build."""
        found: dict[str, list[list[Any]]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _BATCH):
            chunk = unique[start : start + _BATCH]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, spans FROM chunks WHERE key IN ({marks})", chunk).fetchall()  # noqa: S608
            hits = []
            for key, spans in rows:
                try:
                    value = json.loads(spans)
                except json.JSONDecodeError:
                    continue
                if isinstance(value, list):
                    found[key] = value
                    hits.append(key)
            self._db.executemany("UPDATE chunks SET last_build = ? WHERE key = ?", [(self.build, k) for k in hits])
        self._db.commit()
        return found

    def put_chunks(self, items: dict[str, list[list[Any]]]) -> None:
        """Store passage boundaries of newly chunked documents, in one transaction."""
        self._db.executemany(
            "INSERT OR REPLACE INTO chunks (key, spans, last_build) VALUES (?, ?, ?)",
            [(key, json.dumps(spans, separators=(",", ":")), self.build) for key, spans in items.items()],
        )
        self._db.commit()

    def get_extraction(self, key: str) -> Extraction | None:
        """The extraction stored under ``key`` (see :meth:`qa.ingest.extract.Extractor.cache_key`), stamped with
        this build."""
        row = self._db.execute("SELECT payload FROM extractions WHERE key = ?", (key,)).fetchone()
        found = Extraction.from_json(row[0]) if row else None
        if found is not None:
            self._db.execute("UPDATE extractions SET last_build = ? WHERE key = ?", (self.build, key))
            self._db.commit()
        return found

    def put_extraction(self, key: str, extraction: Extraction) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO extractions (key, payload, last_build) VALUES (?, ?, ?)",
            (key, extraction.to_json(), self.build),
        )
        self._db.commit()

    def get_documents(self, keys: Sequence[str]) -> dict[str, str]:
        """Documents' JSON stored for ``keys``, stamped with this build (in slices of ``_BATCH``, one commit)."""
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _BATCH):
            chunk = unique[start : start + _BATCH]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, payload FROM documents WHERE key IN ({marks})", chunk).fetchall()  # noqa: S608
            found.update(rows)
            self._db.executemany(
                "UPDATE documents SET last_build = ? WHERE key = ?", [(self.build, k) for k, _ in rows]
            )
        self._db.commit()
        return found

    def put_documents(self, items: Mapping[str, str]) -> None:
        """Store newly read documents' JSON, in one transaction."""
        self._db.executemany(
            "INSERT OR REPLACE INTO documents (key, payload, last_build) VALUES (?, ?, ?)",
            [(key, payload, self.build) for key, payload in items.items()],
        )
        self._db.commit()

    def rename_build(self, build: str) -> None:
        """Re-stamp this build's rows with its final id (known only once it is written)."""
        for table in ("vectors", "chunks", "extractions", "documents"):
            self._db.execute(f"UPDATE {table} SET last_build = ? WHERE last_build = ?", (build, self.build))  # noqa: S608
        self._db.commit()
        self.build = build

    def retain(self, builds: Iterable[str]) -> int:
        """Drop rows no build in ``builds`` used, and vectors of other models; return how many vectors went."""
        keep = sorted(set(builds) | {self.build})
        marks = ",".join("?" * len(keep))
        cursor = self._db.execute(
            f"DELETE FROM vectors WHERE model != ? OR last_build NOT IN ({marks})",  # noqa: S608
            [self.model, *keep],
        )
        dropped = cursor.rowcount
        self._db.execute(f"DELETE FROM chunks WHERE last_build NOT IN ({marks})", keep)  # noqa: S608
        self._db.execute(f"DELETE FROM extractions WHERE last_build NOT IN ({marks})", keep)  # noqa: S608
        self._db.execute(f"DELETE FROM documents WHERE last_build NOT IN ({marks})", keep)  # noqa: S608
        self._db.commit()
        return dropped

    # -- what the lifecycle asks of an engine's reuse (qa.index.lifecycle.Reuse) ------------------

    def extractions(self) -> EmbeddingCache:
        """Extracted web pages, PDFs and Word files, and documents as read from any file, are kept here too."""
        return self

    def committed(self, commit_id: str, kept: Sequence[str]) -> None:
        """The build became ``commit_id``: its rows take that name, rows no kept build used are dropped."""
        self.rename_build(commit_id)
        dropped = self.retain(kept)
        log.info("embedding cache: %d rows of builds no longer kept dropped", dropped)

"""Where builds live: an index folder (the embedded default) or a PostgreSQL database.

A :class:`StoreLocation` is what the service opens builds from, writes builds into,
switches and rolls back; :func:`locate` picks one from a folder path or a
``postgresql://`` URL (``QA_STORE`` / ``--store``). Everything above it sees the same verbs
whichever it is, and each store it opens is a :class:`~qa.index.protocol.PassageStore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from qa.embedding.base import Embedder
from qa.index import pipeline
from qa.index.builds import current_build_id
from qa.index.manifest import read_manifest
from qa.index.pipeline import BuildReport, Progress
from qa.index.protocol import PassageStore
from qa.index.store import Index
from qa.index.vectors import VectorIndexMode
from qa.ingest.chunking import ChunkerConfig
from qa.ingest.documents import Document

#: What a build must have been made with (see :func:`qa.index.pipeline.expected_identity`), or ``None``.
Expected = dict[str, Any] | None


class StoreLocation(Protocol):
    """Builds in one place, the live one named by a pointer only a complete build can take."""

    #: Where, for messages and logs: a folder, or a URL without its password.
    where: str

    def current_build_id(self) -> str: ...

    def live_manifest(self) -> dict[str, Any]: ...

    def open(self, expected: Expected, build_id: str | None = None) -> PassageStore: ...

    def build(
        self,
        documents: Sequence[Document],
        embedder: Embedder,
        config: ChunkerConfig,
        corpus: dict[str, Any],
        progress: Progress | None = None,
        vector_index: VectorIndexMode = "auto",
    ) -> BuildReport: ...

    def build_corpus(
        self,
        corpus_dir: Path,
        embedder: Embedder,
        config: ChunkerConfig,
        progress: Progress | None = None,
        vector_index: VectorIndexMode = "auto",
    ) -> BuildReport: ...

    def rollback(self, expected: Expected) -> tuple[str, str]: ...

    def close(self) -> None: ...


class IndexFolder:
    """The embedded store's index folder: builds of FAISS + SQLite files and CURRENT."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self.where = str(index_dir)

    def current_build_id(self) -> str:
        return current_build_id(self.index_dir)

    def live_manifest(self) -> dict[str, Any]:
        return read_manifest(self.index_dir / current_build_id(self.index_dir))

    def open(self, expected: Expected, build_id: str | None = None) -> Index:
        if build_id is None:
            return Index.open(self.index_dir, expected)
        return Index.open_build(self.index_dir / build_id, expected)

    def build(
        self,
        documents: Sequence[Document],
        embedder: Embedder,
        config: ChunkerConfig,
        corpus: dict[str, Any],
        progress: Progress | None = None,
        vector_index: VectorIndexMode = "auto",
    ) -> BuildReport:
        return pipeline.build_documents(documents, self.index_dir, embedder, config, corpus, progress, vector_index)

    def build_corpus(
        self,
        corpus_dir: Path,
        embedder: Embedder,
        config: ChunkerConfig,
        progress: Progress | None = None,
        vector_index: VectorIndexMode = "auto",
    ) -> BuildReport:
        return pipeline.build_index(corpus_dir, self.index_dir, embedder, config, progress, vector_index)

    def rollback(self, expected: Expected) -> tuple[str, str]:
        return pipeline.rollback(self.index_dir, expected)

    def close(self) -> None:
        """Nothing is held open between calls."""


def locate(where: Path | str | StoreLocation) -> StoreLocation:
    """The location a folder path or a ``postgresql://`` URL names (a location is returned as it is)."""
    if isinstance(where, IndexFolder):
        return where
    if isinstance(where, str | Path):
        text = str(where)
        from qa.index.postgres.connection import is_postgres_url  # psycopg loads only when a database is named

        if isinstance(where, str) and is_postgres_url(text):
            from qa.index.postgres.builds import PostgresLocation

            return PostgresLocation(text)
        return IndexFolder(Path(where))
    return where


def corpus_documents(corpus_dir: Path) -> tuple[list[Document], dict[str, Any]]:
    """A corpus folder's documents and the record a manifest keeps of it."""
    from qa.ingest.documents import corpus_fingerprint, load_corpus

    corpus = {"path": str(corpus_dir), "sha256": corpus_fingerprint(corpus_dir)}
    return load_corpus(corpus_dir), corpus

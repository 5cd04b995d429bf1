"""Where builds live: an index folder (the embedded default) or a PostgreSQL database.

:func:`locate` picks the engine from a folder path or a ``postgresql://`` URL (``QA_STORE`` /
``--store``) and returns the one :class:`~qa.index.lifecycle.StoreLocation` over it: everything
above sees the same verbs whichever it is, and each store it opens is a
:class:`~qa.index.protocol.PassageStore`. The functions below are the same verbs for a caller
holding only a folder or a URL (scripts, tests, ``qa.build_index``).
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from qa.embedding.base import Embedder
from qa.index.lifecycle import StoreLocation
from qa.index.manifest import BuildIdentity
from qa.index.prepare import BuildReport, Progress
from qa.index.vector_index import VectorIndexMode
from qa.ingest.chunking import ChunkerConfig


def locate(where: Path | str | StoreLocation) -> StoreLocation:
    """The location a folder path or a ``postgresql://`` URL names (a location is returned as it is)."""
    if isinstance(where, StoreLocation):
        return where
    from qa.index.postgres.connection import is_postgres_url  # psycopg loads only when a database is named

    if isinstance(where, str) and is_postgres_url(where):
        from qa.index.postgres.engine import PostgresEngine

        return StoreLocation(PostgresEngine(where))
    from qa.index.embedded.engine import IndexFolder

    return StoreLocation(IndexFolder(Path(where)))


def build_index(
    corpus_dir: Path,
    where: Path | str,
    embedder: Embedder,
    config: ChunkerConfig,
    progress: Progress | None = None,
    vector_index: VectorIndexMode = "auto",
) -> BuildReport:
    """Build the articles in ``corpus_dir`` into a new build at ``where`` and make it live."""
    with closing(locate(where)) as location:
        return location.build_corpus(corpus_dir, embedder, config, progress, vector_index)


def rollback(where: Path | str, expected: BuildIdentity | None = None) -> tuple[str, str]:
    """Make the previous build at ``where`` live again (see :meth:`StoreLocation.rollback`)."""
    with closing(locate(where)) as location:
        return location.rollback(expected)


def stale_reason(
    corpus_dir: Path,
    where: Path | str,
    embedder: Embedder,
    config: ChunkerConfig,
    vector_index: VectorIndexMode = "auto",
) -> str | None:
    """Why the live build at ``where`` no longer matches the corpus and settings, or ``None`` if it does."""
    with closing(locate(where)) as location:
        return location.stale_reason(corpus_dir, embedder, config, vector_index)

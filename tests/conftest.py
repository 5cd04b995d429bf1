"""Shared fixtures: a deterministic fake embedder for plumbing, the real model for quality."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qa.config import Settings
from qa.embedding.base import SentenceTransformerEmbedder
from qa.index.location import build_index
from qa.index.postgres.server import LocalPostgres
from qa.ingest.chunking import ChunkerConfig
from tests.helpers import SEEDS, FakeEmbedder

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A writable copy of the seed articles."""
    target = tmp_path / "corpus"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture
def settings(tmp_path: Path, corpus_dir: Path) -> Settings:
    return Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index")


@pytest.fixture
def built(settings: Settings, fake_embedder: FakeEmbedder) -> Settings:
    """Settings whose index folder holds a build of the seeds made with the fake embedder."""
    build_index(
        settings.corpus_dir,
        settings.index_dir,
        fake_embedder,
        ChunkerConfig.from_settings(settings),
    )
    return settings


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """A real PostgreSQL 18 + pgvector from the pinned wheel on a free loopback port, for the whole run.

    Its data folder is made traversable because, under root (as CI runs), the server runs as
    an unprivileged user (initdb refuses root; see qa.index.postgres.server).
    """
    base = Path(tempfile.mkdtemp(prefix="qa-pg-"))
    base.chmod(0o711)
    server = LocalPostgres(base / "data")
    server.start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_server: LocalPostgres) -> str:
    """The URL of a new, empty database on the test server (pgvector installed)."""
    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:16]}")


@pytest.fixture(scope="session")
def real_embedder() -> Iterator[SentenceTransformerEmbedder]:
    """The bundled all-MiniLM-L6-v2, loaded once for the whole run."""
    embedder = SentenceTransformerEmbedder()
    embedder.load()
    yield embedder
    embedder.close()


@pytest.fixture(scope="session")
def real_index_dir(tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder) -> Path:
    """The seeds built with the real model and the default settings, once per run."""
    index_dir = tmp_path_factory.mktemp("real") / "index"
    defaults = Settings()
    build_index(SEEDS, index_dir, real_embedder, ChunkerConfig.from_settings(defaults))
    return index_dir


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch, corpus: Path) -> list[str]:
    """Files of the test's ``corpus`` folder opened from now on (every read of a file goes through ``Path.open``)."""
    seen: list[str] = []
    real = Path.open

    def counting(self: Path, *args: Any, **kwargs: Any) -> Any:
        if corpus in self.parents:
            seen.append(self.relative_to(corpus).as_posix())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", counting)
    return seen

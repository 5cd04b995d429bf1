"""The embedding cache: rebuilds embed only new text, and the cache holds only what builds use."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from qa import indexing
from qa.cache import CACHE_FILE
from qa.chunking import ChunkerConfig
from qa.config import Settings
from qa.embedding import Vectors
from qa.indexing import build_index
from qa.store import Index, list_builds
from tests.helpers import FakeEmbedder

CONFIG = ChunkerConfig()


class CountingEmbedder(FakeEmbedder):
    """Remembers every text it embedded (the model probe included)."""

    def __init__(self, fail_after: int | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.texts: list[str] = []
        self.fail_after = fail_after

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        if self.fail_after is not None and len(self.texts) >= self.fail_after:
            raise RuntimeError("simulated crash while embedding")
        self.texts.extend(texts)
        return super().embed_batch(texts)


def _passage_texts(index_dir: Path, doc_id: str | None = None) -> list[str]:
    index = Index.open(index_dir)
    try:
        passages = index.passages(list(range(1, index.passage_count + 1)))
        return [p.text for p in passages if doc_id is None or p.doc_id == doc_id]
    finally:
        index.close()


def _cache_rows(index_dir: Path) -> int:
    db = sqlite3.connect(index_dir / CACHE_FILE)
    try:
        return int(db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
    finally:
        db.close()


def test_an_unchanged_corpus_is_rebuilt_without_embedding(settings: Settings) -> None:
    first = CountingEmbedder()
    report = build_index(settings.corpus_dir, settings.index_dir, first, CONFIG)
    assert report.embedded == report.passages > 0
    again = CountingEmbedder()
    second = build_index(settings.corpus_dir, settings.index_dir, again, CONFIG)
    assert second.embedded == 0
    assert len(again.texts) == 1  # only the model probe
    index = Index.open(settings.index_dir)
    try:
        stored = index.passages(list(range(1, index.passage_count + 1)))
        vectors = FakeEmbedder().embed_batch([p.text for p in stored])
        for row, vector in enumerate(vectors, start=1):
            hits = index.search(vector, 1)
            assert hits[0][1] == pytest.approx(1.0, abs=1e-5), row
    finally:
        index.close()


def test_editing_adding_and_deleting_articles_embeds_only_those(settings: Settings) -> None:
    build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), CONFIG)
    before = set(_passage_texts(settings.index_dir))
    edited = settings.corpus_dir / "003_4fdb1282455ab5f8.txt"
    edited.write_bytes(edited.read_bytes().replace(b"on October 1 stressed", b"on 1 October stressed"))
    (settings.corpus_dir / "001_3737cd750cfae74d.txt").unlink()
    (settings.corpus_dir / "added.txt").write_text(
        "An Added Article\nThe added article brings one new paragraph of prose. It has two sentences.\n"
    )
    embedder = CountingEmbedder()
    report = build_index(settings.corpus_dir, settings.index_dir, embedder, CONFIG)
    after = _passage_texts(settings.index_dir)
    new_texts = set(after) - before
    assert set(embedder.texts[1:]) == new_texts
    assert report.embedded == len(new_texts)
    assert new_texts <= set(_passage_texts(settings.index_dir, "003_4fdb1282455ab5f8")) | set(
        _passage_texts(settings.index_dir, "added")
    )
    assert not _passage_texts(settings.index_dir, "001_3737cd750cfae74d")


def test_a_crashed_build_keeps_its_vectors_for_the_next_one(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(indexing, "EMBED_CHUNK", 10)
    crashing = CountingEmbedder(fail_after=21)  # the probe, then two slices of ten
    with pytest.raises(RuntimeError, match="simulated"):
        build_index(settings.corpus_dir, settings.index_dir, crashing, CONFIG)
    assert not list_builds(settings.index_dir)
    embedder = CountingEmbedder()
    report = build_index(settings.corpus_dir, settings.index_dir, embedder, CONFIG)
    assert report.embedded == report.passages - 20


def test_the_cache_keeps_what_the_live_and_previous_builds_use(settings: Settings) -> None:
    build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), CONFIG)
    first_rows = _cache_rows(settings.index_dir)
    article = settings.corpus_dir / "000_f4e7857b5d4e8740.txt"
    original = article.read_bytes()
    for n in range(3):
        article.write_bytes(original + f"\nRevision {n} adds this closing sentence to the article.\n".encode())
        build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), CONFIG)
    # Two builds are kept; rows only the pruned builds used are gone.
    assert len(list_builds(settings.index_dir)) == 2
    assert first_rows < _cache_rows(settings.index_dir) <= first_rows + 4
    # Another model's rows are dropped by its first build.
    build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(seed="z"), CONFIG)
    assert _cache_rows(settings.index_dir) == len(set(_passage_texts(settings.index_dir)))


def test_a_damaged_cache_is_replaced(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), CONFIG)
    (settings.index_dir / CACHE_FILE).write_bytes(b"not a database" * 1000)
    embedder = CountingEmbedder()
    with caplog.at_level(logging.WARNING):
        report = build_index(settings.corpus_dir, settings.index_dir, embedder, CONFIG)
    assert "embedding cache" in caplog.text
    assert report.embedded == report.passages
    assert np.isfinite(report.seconds)

"""Builds on disk: atomic switch, refusal of foreign or damaged indexes, pruning."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from qa.chunking import ChunkerConfig
from qa.config import Settings
from qa.embedding import Vectors
from qa.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from qa.indexing import build_index, expected_identity, stale_reason
from qa.store import CURRENT, DATABASE, MANIFEST, TMP_PREFIX, VECTORS, Index, current_build_id, list_builds
from tests.helpers import FakeEmbedder

CONFIG = ChunkerConfig()


def _open(settings: Settings, embedder: FakeEmbedder, config: ChunkerConfig = CONFIG) -> Index:
    return Index.open(settings.index_dir, expected_identity(embedder, config))


def _build_dir(settings: Settings) -> Path:
    return settings.index_dir / current_build_id(settings.index_dir)


def test_a_build_opens_with_the_model_and_chunker_that_made_it(built: Settings, fake_embedder: FakeEmbedder) -> None:
    index = _open(built, fake_embedder)
    try:
        assert index.passage_count == len(index.passages(list(range(1, index.passage_count + 1))))
        assert index.dimension == fake_embedder.dimension
        manifest = index.manifest
        assert manifest["model"]["name"] == fake_embedder.name
        assert manifest["chunker"] == CONFIG.describe()
        assert manifest["documents"] == 5
        assert manifest["passages"] == index.passage_count
        assert len(manifest["corpus"]["sha256"]) == 64
    finally:
        index.close()


@pytest.mark.parametrize(
    ("other", "config", "words"),
    [
        (FakeEmbedder(dimension=32), CONFIG, ["dimension 64", "32", "qa build"]),
        (FakeEmbedder(seed="b", name="another-model"), CONFIG, ["another-model", "vectors differ", "qa build"]),
        (FakeEmbedder(), ChunkerConfig(max_tokens=200), ["max_tokens=96", "200", "qa build"]),
        (FakeEmbedder(), ChunkerConfig(overlap_sentences=1), ["overlap_sentences=0", "qa build"]),
    ],
    ids=["dimension", "model", "budget", "overlap"],
)
def test_an_index_from_another_model_or_chunker_is_refused(
    built: Settings, other: FakeEmbedder, config: ChunkerConfig, words: list[str]
) -> None:
    """Invariant 6: refused at open, with a message saying what differs and how to rebuild."""
    with pytest.raises(IndexMismatchError) as caught:
        _open(built, other, config)
    message = str(caught.value)
    for word in words:
        assert word in message, message


def test_an_index_from_another_format_version_is_refused(built: Settings, fake_embedder: FakeEmbedder) -> None:
    path = _build_dir(built) / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 999
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="format version 999"):
        _open(built, fake_embedder)


def test_a_missing_index_says_how_to_build_one(settings: Settings, fake_embedder: FakeEmbedder) -> None:
    with pytest.raises(IndexNotFoundError, match="qa build"):
        _open(settings, fake_embedder)
    settings.index_dir.mkdir(parents=True)
    (settings.index_dir / CURRENT).write_text("no-such-build\n")
    with pytest.raises(IndexNotFoundError, match="no-such-build"):
        _open(settings, fake_embedder)


@pytest.mark.parametrize("damage", ["truncate-vectors", "garbage-database", "drop-manifest", "bad-manifest"])
def test_damaged_files_are_detected_at_open(built: Settings, fake_embedder: FakeEmbedder, damage: str) -> None:
    build = _build_dir(built)
    if damage == "truncate-vectors":
        data = (build / VECTORS).read_bytes()
        (build / VECTORS).write_bytes(data[: len(data) // 2])
    elif damage == "garbage-database":
        (build / DATABASE).write_bytes(b"this is not an sqlite database" * 100)
    elif damage == "drop-manifest":
        (build / MANIFEST).unlink()
    else:
        (build / MANIFEST).write_text("{not json")
    with pytest.raises(IndexCorruptError, match="qa build"):
        _open(built, fake_embedder)


def test_a_vector_count_that_disagrees_with_the_passages_is_detected(
    built: Settings, fake_embedder: FakeEmbedder
) -> None:
    path = _build_dir(built) / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["passages"] += 1
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="inconsistent"):
        _open(built, fake_embedder)


class FailingEmbedder(FakeEmbedder):
    """Fails on the n-th batch of passages, like a model crashing halfway through a build."""

    def __init__(self, fail_on: int) -> None:
        super().__init__()
        self.calls = 0
        self.fail_on = fail_on

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("simulated failure while embedding")
        return super().embed_batch(texts)


def test_a_failed_build_leaves_the_live_build_untouched(built: Settings, fake_embedder: FakeEmbedder) -> None:
    before = current_build_id(built.index_dir)
    (built.corpus_dir / "extra.txt").write_text("An Extra Article\nIt has a single sentence of prose in it.\n")
    failing = FailingEmbedder(fail_on=2)  # call 1 is the model probe, call 2 the passages
    with pytest.raises(RuntimeError, match="simulated"):
        build_index(built.corpus_dir, built.index_dir, failing, CONFIG)
    assert current_build_id(built.index_dir) == before
    assert list_builds(built.index_dir) == [before]
    assert not list(built.index_dir.glob(f"{TMP_PREFIX}*"))
    index = _open(built, fake_embedder)
    assert index.document("extra") is None
    index.close()
    # The next build succeeds and switches.
    report = build_index(built.corpus_dir, built.index_dir, fake_embedder, CONFIG)
    assert current_build_id(built.index_dir) == report.build_id != before


def test_old_builds_are_pruned_keeping_the_previous_one(built: Settings, fake_embedder: FakeEmbedder) -> None:
    ids = [current_build_id(built.index_dir)]
    for _ in range(3):
        ids.append(build_index(built.corpus_dir, built.index_dir, fake_embedder, CONFIG).build_id)
    assert len(set(ids)) == 4
    assert list_builds(built.index_dir) == ids[-2:]
    assert current_build_id(built.index_dir) == ids[-1]


def test_stale_reason_follows_the_corpus_and_the_settings(built: Settings, fake_embedder: FakeEmbedder) -> None:
    assert stale_reason(built.corpus_dir, built.index_dir, fake_embedder, CONFIG) is None
    assert "max_tokens" in (stale_reason(built.corpus_dir, built.index_dir, fake_embedder, ChunkerConfig(64)) or "")
    assert stale_reason(built.corpus_dir, built.index_dir, FakeEmbedder(dimension=16), CONFIG)
    article = next(built.corpus_dir.glob("*.txt"))
    article.write_bytes(article.read_bytes() + b"\nOne more sentence was added to this article.\n")
    assert "changed" in (stale_reason(built.corpus_dir, built.index_dir, fake_embedder, CONFIG) or "")
    assert stale_reason(built.corpus_dir, built.index_dir / "nowhere", fake_embedder, CONFIG)


def test_search_returns_nearest_passages_best_first(built: Settings, fake_embedder: FakeEmbedder) -> None:
    index = _open(built, fake_embedder)
    try:
        target = index.passages([7])[0]
        hits = index.search(fake_embedder.embed_batch([target.text])[0], 5)
        assert hits[0][0] == 7
        assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
        scores = [s for _, s in hits]
        assert scores == sorted(scores, reverse=True)
        assert [p.rowid for p in index.passages([9, 3, 5])] == [9, 3, 5]
        assert index.passages([10_000]) == []
        assert len(index.search(np.ones(fake_embedder.dimension, dtype=np.float32), 10_000)) == index.passage_count
    finally:
        index.close()

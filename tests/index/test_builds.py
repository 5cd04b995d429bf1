"""The build lifecycle: CURRENT, a failed build, pruning."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.config import Settings
from qa.errors import IndexNotFoundError
from qa.index.embedded.folder import current_build_id, list_builds
from qa.index.embedded.layout import CURRENT, TMP_PREFIX
from qa.index.embedded.store import EmbeddedStore
from qa.index.location import build_index
from qa.index.manifest import BuildIdentity
from qa.ingest.chunking import ChunkerConfig
from tests.helpers import FailingEmbedder, FakeEmbedder

CONFIG = ChunkerConfig()


def _open(settings: Settings, embedder: FakeEmbedder, config: ChunkerConfig = CONFIG) -> EmbeddedStore:
    return EmbeddedStore.open(settings.index_dir, BuildIdentity.of(embedder, config))


def _build_dir(settings: Settings) -> Path:
    return settings.index_dir / current_build_id(settings.index_dir)


def test_a_missing_index_says_how_to_build_one(settings: Settings, fake_embedder: FakeEmbedder) -> None:
    with pytest.raises(IndexNotFoundError, match="qa build"):
        _open(settings, fake_embedder)
    settings.index_dir.mkdir(parents=True)
    (settings.index_dir / CURRENT).write_text("no-such-build\n")
    with pytest.raises(IndexNotFoundError, match="no-such-build"):
        _open(settings, fake_embedder)


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


def test_an_empty_current_file_says_how_to_build(built: Settings, fake_embedder: FakeEmbedder) -> None:
    (built.index_dir / CURRENT).write_text("")
    with pytest.raises(IndexNotFoundError, match="qa build"):
        _open(built, fake_embedder)

"""Failed builds leave the live build serving; old builds are pruned; rollback goes back one build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa.config import Settings
from qa.embedding.base import Vectors
from qa.errors import CorpusError, IndexCorruptError, IndexMismatchError, RollbackError
from qa.index.embedded import engine
from qa.index.embedded.folder import current_build_id, list_builds
from qa.index.embedded.layout import CURRENT, MANIFEST, TMP_PREFIX, VECTORS
from qa.index.embedded.store import EmbeddedStore
from qa.index.location import build_index, locate, rollback, stale_reason
from qa.index.manifest import BuildIdentity
from qa.index.protocol import ScoredPassage
from qa.index.vector_index import VectorIndexSpec
from qa.ingest.chunking import ChunkerConfig
from tests.helpers import ROOT, FailingEmbedder, FakeEmbedder

CONFIG = ChunkerConfig()
QUESTION = "Why did India reject an Asian NATO?"


def _build(settings: Settings, embedder: FakeEmbedder | None = None) -> str:
    return build_index(settings.corpus_dir, settings.index_dir, embedder or FakeEmbedder(), CONFIG).build_id


def _answers(index: EmbeddedStore) -> list[ScoredPassage]:
    return index.dense(FakeEmbedder().embed_batch([QUESTION])[0], 5)


def _leftovers(index_dir: Path) -> list[str]:
    return sorted(p.name for p in index_dir.iterdir() if p.name.startswith(TMP_PREFIX) or p.name.endswith(".tmp"))


EXTRA = "An Extra Article\n\n" + "".join(
    f"Paragraph {n} of the extra article repeats what harbour engineers told the council about the sea walls, "
    f"the storms of last winter, the cost of temporary barriers and the two winters the repairs will take. "
    f"Officials said the {n} districts nearest the water would be served first, and that residents would be told.\n\n"
    for n in ("one", "two", "three")
)


def _add_article(settings: Settings) -> None:
    (settings.corpus_dir / "extra.txt").write_text(EXTRA)


# -- failed builds --------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["corpus-gone", "all-unreadable"])
def test_a_build_whose_corpus_cannot_be_read_changes_nothing(built: Settings, fault: str) -> None:
    before = current_build_id(built.index_dir)
    served = EmbeddedStore.open(built.index_dir, expected=None)
    answers = _answers(served)
    if fault == "corpus-gone":
        for path in built.corpus_dir.iterdir():
            path.unlink()
        built.corpus_dir.rmdir()
    else:
        for path in built.corpus_dir.glob("*.txt"):
            path.write_bytes(b"\x00\x01\x02 binary")
    with pytest.raises(CorpusError):
        _build(built)
    assert current_build_id(built.index_dir) == before
    assert list_builds(built.index_dir) == [before]
    assert _answers(served) == answers
    served.close()


def test_an_exception_while_embedding_leaves_the_served_build_answering(built: Settings) -> None:
    before = current_build_id(built.index_dir)
    served = EmbeddedStore.open(built.index_dir, expected=None)
    answers = _answers(served)
    _add_article(built)
    with pytest.raises(RuntimeError, match="simulated"):
        _build(built, FailingEmbedder(fail_on=2))
    assert current_build_id(built.index_dir) == before
    assert list_builds(built.index_dir) == [before]
    assert _leftovers(built.index_dir) == []
    assert _answers(served) == answers
    assert served.document("extra") is None
    served.close()
    after = _build(built)
    assert current_build_id(built.index_dir) == after != before
    index = EmbeddedStore.open(built.index_dir, expected=None)
    assert index.document("extra") is not None
    index.close()


def test_an_exception_while_writing_removes_the_partial_folder(
    built: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = current_build_id(built.index_dir)

    def broken(path: Path, vectors: Vectors, spec: VectorIndexSpec) -> None:
        path.write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(engine, "write_vectors", broken)
    with pytest.raises(OSError, match="No space left"):
        _build(built)
    assert current_build_id(built.index_dir) == before
    assert list_builds(built.index_dir) == [before]
    assert _leftovers(built.index_dir) == []
    monkeypatch.undo()
    assert _build(built) != before


@pytest.mark.parametrize("stage", ["embedding", "writing"])
def test_a_build_killed_midway_changes_nothing_and_the_next_one_succeeds(
    built: Settings, tmp_path: Path, stage: str
) -> None:
    """A real process running a build is SIGKILLed while embedding, or with a half-written build folder."""
    before = current_build_id(built.index_dir)
    served = EmbeddedStore.open(built.index_dir, expected=None)
    answers = _answers(served)
    _add_article(built)
    marker = tmp_path / "marker"
    driver = subprocess.Popen(
        [sys.executable, "-m", "tests.build_driver", str(built.corpus_dir), str(built.index_dir), str(marker), stage],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if driver.poll() is not None:
                pytest.fail(f"the driver exited early: {driver.stderr.read().decode() if driver.stderr else ''}")
            if time.monotonic() > deadline:
                pytest.fail("the driver never reached the stage")
            time.sleep(0.05)
        assert marker.read_text() == stage
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
        if driver.stderr:
            driver.stderr.close()
    assert driver.returncode == -signal.SIGKILL

    assert current_build_id(built.index_dir) == before
    assert list_builds(built.index_dir) == [before]
    assert _answers(served) == answers
    assert bool(_leftovers(built.index_dir)) == (stage == "writing")
    served.close()
    assert EmbeddedStore.open(built.index_dir, expected=None).build_id == before

    report = build_index(built.corpus_dir, built.index_dir, FakeEmbedder(), CONFIG)
    assert current_build_id(built.index_dir) == report.build_id != before
    assert _leftovers(built.index_dir) == []
    index = EmbeddedStore.open(built.index_dir, expected=None)
    extra = index.document_passages("extra")
    index.close()
    assert len(extra) >= 2
    # The killed build had cached the first new passage it embedded.
    assert report.embedded == len(extra) - (1 if stage == "embedding" else len(extra))


def test_leftovers_of_interrupted_builds_are_removed_by_the_next_build(built: Settings) -> None:
    # A process id that is alive (this one) does not protect a leftover: builds hold the lock.
    (built.index_dir / f"{TMP_PREFIX}20260101T000000000Z-deadbeef-{os.getpid()}").mkdir()
    (built.index_dir / f"{TMP_PREFIX}20260101T000000000Z-deadbeef-1" / "sub").mkdir(parents=True)
    (built.index_dir / f"{CURRENT}.12345.tmp").write_text("half")
    assert len(_leftovers(built.index_dir)) == 3
    _build(built)
    assert _leftovers(built.index_dir) == []


# -- pruning and rollback -------------------------------------------------------------------


def test_builds_are_pruned_to_the_current_and_the_previous_one(built: Settings) -> None:
    ids = [current_build_id(built.index_dir)]
    for _ in range(3):
        ids.append(_build(built))
    assert list_builds(built.index_dir) == ids[-2:]
    assert locate(built.index_dir).previous_build_id() == ids[-2]
    manifest = json.loads((built.index_dir / ids[-1] / MANIFEST).read_text())
    assert manifest["previous_build"] == ids[-2]


def test_rollback_switches_current_to_the_previous_build(built: Settings, fake_embedder: FakeEmbedder) -> None:
    first = current_build_id(built.index_dir)
    _add_article(built)
    second = _build(built)
    assert rollback(built.index_dir, BuildIdentity.of(fake_embedder, CONFIG)) == (second, first)
    assert (built.index_dir / CURRENT).read_text() == f"{first}\n"
    assert _leftovers(built.index_dir) == []
    index = EmbeddedStore.open(built.index_dir, BuildIdentity.of(fake_embedder, CONFIG))
    assert index.build_id == first
    assert index.document("extra") is None
    index.close()
    # Both builds stay on disk; a second rollback has nowhere to go.
    assert list_builds(built.index_dir) == [first, second]
    with pytest.raises(RollbackError, match="no previous build"):
        rollback(built.index_dir, BuildIdentity.of(fake_embedder, CONFIG))
    assert current_build_id(built.index_dir) == first


def test_a_build_after_a_rollback_keeps_the_build_that_was_serving(built: Settings) -> None:
    first = current_build_id(built.index_dir)
    bad = _build(built)
    rollback(built.index_dir)
    third = _build(built)
    assert list_builds(built.index_dir) == [first, third]
    assert locate(built.index_dir).previous_build_id() == first
    assert rollback(built.index_dir) == (third, first)
    assert not (built.index_dir / bad).exists()


def test_rollback_refuses_when_there_is_no_previous_build(built: Settings) -> None:
    only = current_build_id(built.index_dir)
    with pytest.raises(RollbackError) as caught:
        rollback(built.index_dir)
    assert only in str(caught.value)
    assert "qa build" in str(caught.value)
    assert current_build_id(built.index_dir) == only


def test_rollback_refuses_a_build_made_with_another_model(built: Settings) -> None:
    first = current_build_id(built.index_dir)
    other = FakeEmbedder(dimension=32, name="another-model")
    second = _build(built, other)
    with pytest.raises(IndexMismatchError) as caught:
        rollback(built.index_dir, BuildIdentity.of(other, CONFIG))
    message = str(caught.value)
    assert f"refusing to roll back to build {first}" in message
    assert "dimension 64" in message
    assert "qa build" in message
    assert current_build_id(built.index_dir) == second


def test_rollback_refuses_a_damaged_previous_build(built: Settings) -> None:
    first = current_build_id(built.index_dir)
    second = _build(built)
    vectors = built.index_dir / first / VECTORS
    vectors.write_bytes(vectors.read_bytes()[:100])
    with pytest.raises(IndexCorruptError, match=f"refusing to roll back to build {first}"):
        rollback(built.index_dir)
    assert current_build_id(built.index_dir) == second


def test_rollback_works_when_the_live_build_is_damaged(built: Settings) -> None:
    first = current_build_id(built.index_dir)
    second = _build(built)
    (built.index_dir / second / MANIFEST).write_text("{damaged")
    with pytest.raises(IndexCorruptError):
        EmbeddedStore.open(built.index_dir, expected=None)
    assert rollback(built.index_dir) == (second, first)
    EmbeddedStore.open(built.index_dir, expected=None).close()


def test_stale_reason_follows_the_corpus_and_the_settings(built: Settings, fake_embedder: FakeEmbedder) -> None:
    assert stale_reason(built.corpus_dir, built.index_dir, fake_embedder, CONFIG) is None
    assert "max_tokens" in (stale_reason(built.corpus_dir, built.index_dir, fake_embedder, ChunkerConfig(64)) or "")
    assert stale_reason(built.corpus_dir, built.index_dir, FakeEmbedder(dimension=16), CONFIG)
    article = next(built.corpus_dir.glob("*.txt"))
    article.write_bytes(article.read_bytes() + b"\nOne more sentence was added to this article.\n")
    assert "changed" in (stale_reason(built.corpus_dir, built.index_dir, fake_embedder, CONFIG) or "")
    assert stale_reason(built.corpus_dir, built.index_dir / "nowhere", fake_embedder, CONFIG)

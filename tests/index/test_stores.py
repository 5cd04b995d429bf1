"""Builds and the invariants of ARCHITECTURE.md on both stores: the index folder and PostgreSQL + pgvector.

Every test takes ``location`` (a :class:`~qa.index.location.StoreLocation`), parametrised
over the two; the PostgreSQL one is a fresh database on a real server (tests/conftest.py).
Invariants proved here for passages read back from each store: 1 (verbatim spans),
2 (stable ids; one edited article changes only its ids), 5 (a failed build leaves the live
one serving; atomic switch, rollback, pruning), 6 (another model is refused); and the
incremental rebuild (unchanged passages are not embedded again).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from qa.config import Settings
from qa.errors import IndexMismatchError, IndexNotFoundError, IndexStoreError, RollbackError
from qa.index.filters import Filters
from qa.index.lifecycle import StoreLocation
from qa.index.location import locate
from qa.index.manifest import BuildIdentity
from qa.index.protocol import PassageStore
from qa.ingest.chunking import ChunkerConfig
from tests.helpers import ROOT, FailingEmbedder, FakeEmbedder, all_passages

CONFIG = ChunkerConfig()
QUESTION = "Why did India reject an Asian NATO?"
EXTRA = "An Extra Article\n\n" + "".join(
    f"Paragraph {n} of the extra article repeats what harbour engineers told the council about the sea walls, "
    f"the storms of last winter and the cost of temporary barriers.\n\n"
    for n in ("one", "two", "three")
)


@pytest.fixture(params=["embedded", "postgresql"])
def location(request: pytest.FixtureRequest, settings: Settings) -> Iterator[StoreLocation]:
    where: Path | str = settings.index_dir if request.param == "embedded" else request.getfixturevalue("pg_url")
    opened = locate(where)
    yield opened
    opened.close()


def _build(location: StoreLocation, settings: Settings, embedder: FakeEmbedder | None = None) -> str:
    return location.build_corpus(settings.corpus_dir, embedder or FakeEmbedder(), CONFIG).build_id


def _open(location: StoreLocation, embedder: FakeEmbedder | None = None) -> PassageStore:
    return location.open(BuildIdentity.of(embedder or FakeEmbedder(), CONFIG))


def _ids(location: StoreLocation) -> dict[str, list[str]]:
    store = _open(location)
    try:
        return {d.doc_id: [p.passage_id for p in store.document_passages(d.doc_id)] for d in store.documents()}
    finally:
        store.close()


def _count(location: StoreLocation, build_id: str) -> int:
    store = location.open(None, build_id)
    try:
        return store.passage_count
    finally:
        store.close()


def test_no_build_yet_says_how_to_build(location: StoreLocation) -> None:
    with pytest.raises(IndexNotFoundError, match="qa build"):
        location.current_build_id()


def test_every_passage_read_back_is_a_verbatim_span(location: StoreLocation, settings: Settings) -> None:
    """Invariant 1, for passages as the store returns them."""
    _build(location, settings)
    store = _open(location)
    try:
        passages = all_passages(store)
        assert passages
        for p in passages:
            texts = store.document_text(p.doc_id)
            assert texts is not None
            assert texts[0][p.start : p.end] == p.text
        assert [p.position for p in passages] == list(range(1, len(passages) + 1))
    finally:
        store.close()


def test_ids_are_stable_and_rebuilds_embed_only_new_text(location: StoreLocation, settings: Settings) -> None:
    """Invariant 2, and incremental builds: unchanged passages are reused, not embedded again."""
    embedder = FakeEmbedder()
    first = location.build_corpus(settings.corpus_dir, embedder, CONFIG)
    before = _ids(location)
    again = location.build_corpus(settings.corpus_dir, embedder, CONFIG)
    assert again.build_id != first.build_id
    assert again.embedded == 0
    assert _ids(location) == before
    article = sorted(settings.corpus_dir.glob("*.txt"))[1]
    article.write_text(article.read_text(encoding="utf-8") + "\n\nA closing paragraph about quokkas.\n")
    edited = location.build_corpus(settings.corpus_dir, embedder, CONFIG)
    after = _ids(location)
    changed = {d for d in before if after[d] != before[d]}
    assert changed == {article.stem}
    assert 0 < edited.embedded < edited.passages


def test_a_failed_build_leaves_the_live_build_serving(location: StoreLocation, settings: Settings) -> None:
    """Invariant 5: a build that dies while embedding switches nothing and leaves nothing behind."""
    live = _build(location, settings)
    (settings.corpus_dir / "extra.txt").write_text(EXTRA)
    with pytest.raises(RuntimeError, match="simulated"):
        _build(location, settings, FailingEmbedder(fail_on=3))
    assert location.current_build_id() == live
    store = _open(location)
    try:
        assert store.build_id == live
        assert store.dense(FakeEmbedder().embed_batch([QUESTION])[0], 3)
    finally:
        store.close()
    assert _build(location, settings) != live


def test_a_postgres_build_killed_while_writing_leaves_nothing(settings: Settings, pg_url: str, tmp_path: Path) -> None:
    """Invariant 5 against SIGKILL: the build's transaction dies with its process; the live build serves on."""
    with contextlib.closing(locate(pg_url)) as location:
        live = _build(location, settings)
        (settings.corpus_dir / "extra.txt").write_text(EXTRA)
        marker = tmp_path / "marker"
        driver = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.build_driver",
                str(settings.corpus_dir),
                pg_url,
                str(marker),
                "postgres-writing",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 120
            while not marker.exists():
                if driver.poll() is not None:
                    pytest.fail(f"the driver exited early: {driver.stderr.read().decode() if driver.stderr else ''}")
                assert time.monotonic() < deadline, "the driver never reached the stage"
                time.sleep(0.05)
        finally:
            driver.send_signal(signal.SIGKILL)
            driver.wait(timeout=30)
            if driver.stderr:
                driver.stderr.close()
        assert location.current_build_id() == live
        store = _open(location)
        assert store.document("extra") is None
        store.close()
        # The server rolled the build's transaction back (it may take a moment to notice the dead client).
        with psycopg.connect(pg_url, autocommit=True) as conn:
            deadline = time.monotonic() + 10
            while conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'qa_b_%'").fetchone() != (1,):
                assert time.monotonic() < deadline, "the killed build's schema is still there"
                time.sleep(0.1)
        after = _build(location, settings)
        assert location.current_build_id() == after != live


def test_switch_rollback_and_pruning(location: StoreLocation, settings: Settings) -> None:
    """Invariant 5: a new build is live at once; rollback goes back one; older builds are dropped."""
    first = _build(location, settings)
    with pytest.raises(RollbackError):
        location.rollback(BuildIdentity.of(FakeEmbedder(), CONFIG))
    (settings.corpus_dir / "extra.txt").write_text(EXTRA)
    second = _build(location, settings)
    assert location.current_build_id() == second
    assert location.rollback(BuildIdentity.of(FakeEmbedder(), CONFIG)) == (second, first)
    assert location.current_build_id() == first
    assert _count(location, first) < _count(location, second)
    third = _build(location, settings)
    assert location.current_build_id() == third
    # The build that was serving (first) is kept for rollback; the one rolled back from is dropped.
    assert _count(location, first) > 0
    with pytest.raises(IndexStoreError):
        location.open(None, second)


def test_a_build_made_with_another_model_is_refused(location: StoreLocation, settings: Settings) -> None:
    """Invariant 6."""
    _build(location, settings)
    for other in (FakeEmbedder(dimension=32), FakeEmbedder(seed="b")):
        with pytest.raises(IndexMismatchError, match="qa build"):
            location.open(BuildIdentity.of(other, CONFIG))
    with pytest.raises(IndexMismatchError, match="chunker"):
        location.open(BuildIdentity.of(FakeEmbedder(), ChunkerConfig(max_tokens=40)))


@pytest.mark.parametrize(
    "value", ["x'); DROP TABLE passages;--", "' OR '1'='1", "%s", "{s}", '"; DROP SCHEMA qa CASCADE; --', "\\"]
)
def test_filter_values_are_data_not_sql(location: StoreLocation, settings: Settings, value: str) -> None:
    _build(location, settings)
    store = _open(location)
    try:
        query = FakeEmbedder().embed_batch([QUESTION])[0]
        for filters in (Filters(doc_ids=(value,)), Filters(author=value), Filters(outlet=value)):
            assert store.dense(query, 5, filters) == []
            assert store.lexical(["india", value], 5, (1.0, 1.0), filters) == []
        assert store.passages([value]) == []
        assert store.document(value) is None
        assert len(all_passages(store)) == store.passage_count
    finally:
        store.close()


def test_an_hnsw_build_still_fills_k_under_filters(
    location: StoreLocation, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The graph index (pgvector HNSW, FAISS HNSW): unfiltered and filtered top-k as exact search gives them."""
    embedder = FakeEmbedder()
    location.build_corpus(settings.corpus_dir, embedder, CONFIG, vector_index="hnsw")
    store = _open(location)
    try:
        assert store.manifest.vectors.describe()["type"] == "hnsw"
        query = embedder.embed_batch([QUESTION])[0]
        passages = all_passages(store)
        exact = sorted(
            (
                (float(v @ query), p)
                for p, v in zip(passages, embedder.embed_batch([p.text for p in passages]), strict=True)
            ),
            key=lambda pair: (-pair[0], pair[1].position),
        )
        assert [h.passage_id for h in store.dense(query, 5)] == [p.passage_id for _, p in exact[:5]]
        doc = passages[-1].doc_id
        wanted = [p.passage_id for _, p in exact if p.doc_id == doc][:5]
        assert [h.passage_id for h in store.dense(query, 5, Filters(doc_ids=(doc,)))] == wanted
        # Through the graph too (PostgreSQL scores a small allowed set exactly unless told not to).
        monkeypatch.setattr("qa.index.postgres.store.EXACT_FILTERED", 0)
        assert [h.passage_id for h in store.dense(query, 5, Filters(doc_ids=(doc,)))] == wanted
    finally:
        store.close()


def test_verification_finds_what_opening_leaves_out(location: StoreLocation, settings: Settings) -> None:
    """An intact build verifies on both stores; on PostgreSQL a postings count that disagrees with the
    manifest is named (in an index folder, checksums: tests/index/test_integrity.py)."""
    build_id = _build(location, settings)
    assert location.verify()[0] == build_id
    assert location.verify(build_id, opened=True)[0] == build_id
    if location.engine.name != "postgresql":
        return
    from qa.index.postgres.schema import schema_name

    with psycopg.connect(location.engine.url, autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute(f"UPDATE {schema_name(build_id)}.postings_stats SET rows = rows + 1")  # noqa: S608
    _open(location).close()  # opening does not read the postings' statistics
    with pytest.raises(IndexStoreError, match="postings_stats counts"):
        location.verify()

"""Hot reload: a new build is swapped in between requests, and a bad one never replaces a good one."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qa.config import Settings
from qa.errors import IndexCorruptError, IndexMismatchError, IndexStoreError
from qa.index.embedded.folder import current_build_id, switch_current
from qa.index.location import build_index
from qa.index.manifest import BuildIdentity
from qa.ingest.chunking import ChunkerConfig
from qa.server.app import create_app
from qa.server.live import LiveIndex, NotServing
from tests.helpers import FakeEmbedder, serve_in_thread

QUESTIONS = ["Why did India reject an Asian NATO?", "What is strategic autonomy?", "Quad cooperation"]
#: Words no seed article uses, so the fake embedder ranks the added paragraph first.
NEW_FACT = "The lighthouse committee announced quokka observatories in Zanzibar, funded by marmalade exports."
NEW_QUESTION = "quokka observatories Zanzibar marmalade lighthouse committee"


def config(settings: Settings) -> ChunkerConfig:
    return ChunkerConfig(settings.max_tokens, settings.overlap_sentences)


def rebuild_with_new_fact(settings: Settings) -> str:
    """Add a paragraph to one article and build again (with a separate fake embedder); the new build id."""
    article = sorted(settings.corpus_dir.glob("*.txt"))[3]
    article.write_text(article.read_text(encoding="utf-8") + "\n\n" + NEW_FACT + "\n", encoding="utf-8")
    return build_index(settings.corpus_dir, settings.index_dir, FakeEmbedder(), config(settings)).build_id


def break_into_new_build(index_dir: Path, name: str = "99990101T000000000Z-broken") -> str:
    """A copy of the live build with unreadable vectors, named in CURRENT."""
    source = index_dir / current_build_id(index_dir)
    shutil.copytree(source, index_dir / name)
    (index_dir / name / "vectors.faiss").write_bytes(b"not a faiss index")
    switch_current(index_dir, name)
    return name


@pytest.fixture
def live(built: Settings, fake_embedder: FakeEmbedder) -> Iterator[LiveIndex]:
    index = LiveIndex(built.index_dir, fake_embedder, BuildIdentity.of(fake_embedder, config(built)))
    index.open()
    yield index
    index.close()


def test_a_request_in_flight_finishes_on_the_old_build_which_closes_after_it(live: LiveIndex, built: Settings) -> None:
    lease = live.acquire()
    old = lease.searcher.store
    new_id = rebuild_with_new_fact(built)

    result = live.reload()

    assert result.changed
    assert (result.previous_build_id, result.build_id) == (old.build_id, new_id)
    # The held lease still answers from the old build, which is still open...
    assert lease.searcher.ask(QUESTIONS[0], 3).build_id == old.build_id
    # ...while new requests get the new one.
    with live.lease() as searcher:
        assert searcher.store.build_id == new_id
    lease.release()
    with pytest.raises(sqlite3.ProgrammingError):
        old.passages(["x"])  # closed once its last request was done
    assert live.reloads_ok == 1


def test_an_unused_old_build_is_closed_at_once(live: LiveIndex, built: Settings) -> None:
    old = live.current()
    assert old is not None
    rebuild_with_new_fact(built)
    live.reload()
    with pytest.raises(sqlite3.ProgrammingError):
        old.passages(["x"])


def test_reload_without_a_new_build_changes_nothing(live: LiveIndex) -> None:
    before = live.current()
    result = live.reload()
    assert not result.changed
    assert live.current() is before
    assert live.reloads_ok == 0


def test_a_broken_build_keeps_the_old_one_serving_and_logs_why(
    live: LiveIndex, built: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    old_id = live.current().build_id  # type: ignore[union-attr]
    broken = break_into_new_build(built.index_dir)

    with caplog.at_level(logging.ERROR, logger="qa.server.live"):
        live.poll()
    assert live.current().build_id == old_id  # type: ignore[union-attr]
    assert live.reloads_failed == 1
    assert any("still serving" in r.getMessage() and "vectors.faiss" in r.getMessage() for r in caplog.records)
    with live.lease() as searcher:
        assert searcher.ask(QUESTIONS[0], 2).build_id == old_id

    live.poll()  # the watcher does not retry the same broken build on every tick
    assert live.reloads_failed == 1
    with pytest.raises(IndexCorruptError):
        live.reload()  # an explicit reload does
    assert live.reloads_failed == 2
    assert current_build_id(built.index_dir) == broken


def test_a_build_made_with_another_chunker_is_refused_on_reload(live: LiveIndex, built: Settings) -> None:
    old_id = live.current().build_id  # type: ignore[union-attr]
    build_index(built.corpus_dir, built.index_dir, FakeEmbedder(), ChunkerConfig(built.max_tokens + 32, 0))
    with pytest.raises(IndexMismatchError):
        live.reload()
    assert live.current().build_id == old_id  # type: ignore[union-attr]


def test_nothing_served_until_a_build_appears(settings: Settings, fake_embedder: FakeEmbedder) -> None:
    live = LiveIndex(settings.index_dir, fake_embedder, BuildIdentity.of(fake_embedder, config(settings)))
    live.open()
    try:
        with pytest.raises(NotServing) as caught:
            live.acquire()
        assert "qa build" in str(caught.value)
        report = build_index(settings.corpus_dir, settings.index_dir, FakeEmbedder(), config(settings))
        live.poll()
        assert live.current().build_id == report.build_id  # type: ignore[union-attr]
        assert live.error is None
    finally:
        live.close()


def test_the_watcher_thread_switches_to_a_new_build(live: LiveIndex, built: Settings) -> None:
    live.start_watching(0.02)
    new_id = rebuild_with_new_fact(built)
    deadline = time.monotonic() + 10
    while live.current().build_id != new_id:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the watcher did not switch within 10 s"
        time.sleep(0.02)
    assert any(t.name == "qa-reload-watcher" for t in threading.enumerate())


def test_no_request_fails_while_a_rebuild_switches_in(built: Settings, fake_embedder: FakeEmbedder) -> None:
    """Four clients ask over real HTTP while a changed corpus is rebuilt and switched in."""
    settings = built.model_copy(update={"reload_interval": 0.05})
    failures: list[str] = []
    builds: Counter[str] = Counter()
    stop = threading.Event()

    def client(base: str, number: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as http:
            for i in range(2000):  # bounded even if stop never comes
                if stop.is_set():
                    return
                question = QUESTIONS[(i + number) % len(QUESTIONS)]
                try:
                    if i % 3 == 2:
                        response = http.post("/ask", json={"question": question, "k": 3})
                    else:
                        response = http.get("/ask", params={"q": question, "k": 3})
                except httpx.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                answer = response.json()
                builds[answer["build_id"]] += 1
                passage = http.get(f"/passages/{answer['results'][0]['passage_id']}")
                if passage.status_code not in (200, 404):  # 404 only if that article changed
                    failures.append(f"passage {passage.status_code}: {passage.text[:200]}")

    with serve_in_thread(create_app(settings, embedder=fake_embedder)) as base:
        old_id = httpx.get(f"{base}/readyz").json()["build_id"]
        threads = [threading.Thread(target=client, args=(base, n)) for n in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        new_id = rebuild_with_new_fact(settings)
        deadline = time.monotonic() + 10
        while httpx.get(f"{base}/readyz").json()["build_id"] != new_id:
            assert time.monotonic() < deadline, "the server did not switch within 10 s"
            time.sleep(0.05)
        time.sleep(1.0)  # keep the stream going on the new build
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

        assert not failures, failures[:5]
        assert builds[old_id] > 0
        assert builds[new_id] > 0
        answer = httpx.get(f"{base}/ask", params={"q": NEW_QUESTION, "k": 3}).json()
        assert answer["build_id"] == new_id
        assert "quokka" in answer["results"][0]["text"]
        health = httpx.get(f"{base}/healthz").json()
        assert (health["status"], health["build_id"]) == ("ok", new_id)
        metrics = httpx.get(f"{base}/metrics").text
        assert 'qa_reloads_total{result="success"} 1.0' in metrics


def test_an_unexpected_error_while_opening_counts_as_a_failed_reload(
    live: LiveIndex, built: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_id = live.current().build_id  # type: ignore[union-attr]
    rebuild_with_new_fact(built)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError("permission denied: /srv/secret")

    monkeypatch.setattr("qa.index.embedded.engine.EmbeddedStore.open_build", refuse)
    with pytest.raises(IndexStoreError, match="PermissionError"):
        live.reload()
    assert live.current().build_id == old_id  # type: ignore[union-attr]
    assert live.reloads_failed == 1


def test_a_build_that_fails_verification_after_opening_is_no_longer_served(live: LiveIndex, built: Settings) -> None:
    """Opening checks sizes, not every byte; the server verifies the new build in the background and
    stops serving it when a checksum differs (503 with the reason), until the live build changes."""
    new_id = rebuild_with_new_fact(built)
    vectors = built.index_dir / new_id / "vectors.faiss"
    data = bytearray(vectors.read_bytes())
    middle = len(data) // 2  # inside the vectors themselves: the same size, other bytes
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    vectors.write_bytes(bytes(data))

    assert live.reload().build_id == new_id  # opened: sizes and structure are right
    deadline = time.monotonic() + 30
    while live.current() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live.current() is None
    with pytest.raises(NotServing):
        live.acquire()
    assert isinstance(live.error, IndexCorruptError)
    assert "checksum" in str(live.error)
    assert live.reloads_failed == 1
    live.poll()  # the same build is not tried again
    assert live.current() is None
    rebuild_with_new_fact(built)  # a new build is
    live.poll()
    assert live.current() is not None

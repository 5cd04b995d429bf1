"""The service on PostgreSQL + pgvector over real HTTP: replicas on one database, a lost database.

Real servers only: uvicorn on 127.0.0.1 and PostgreSQL from the pinned wheel (the session's
for the replicas; one of this module's own for the test that stops and restarts it).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from qa.config import Settings
from qa.index.location import locate
from qa.index.postgres.server import LocalPostgres
from qa.ingest.chunking import ChunkerConfig
from qa.server.app import create_app
from tests.helpers import FakeEmbedder, serve_in_thread

CONFIG = ChunkerConfig()
QUESTIONS = ["Why did India reject an Asian NATO?", "What is strategic autonomy?", "Quad cooperation"]
NEW_FACT = "The lighthouse committee announced quokka observatories in Zanzibar, funded by marmalade exports."
#: In the URL the service is given; the test server trusts loopback, so any password connects.
PASSWORD = "pw-s3cret-never-shown"


def _with_password(url: str) -> SecretStr:
    return SecretStr(url.replace("postgres@", f"postgres:{PASSWORD}@"))


def _rebuild_with_new_fact(settings: Settings, url: str) -> str:
    article = sorted(settings.corpus_dir.glob("*.txt"))[3]
    article.write_text(article.read_text(encoding="utf-8") + "\n\n" + NEW_FACT + "\n", encoding="utf-8")
    location = locate(url)
    try:
        return location.build_corpus(settings.corpus_dir, FakeEmbedder(), CONFIG).build_id
    finally:
        location.close()


def test_two_replicas_switch_together_with_no_failed_request(
    settings: Settings, pg_url: str, fake_embedder: FakeEmbedder
) -> None:
    """Two `qa serve` apps on one database, four clients each, a build switched in midway."""
    location = locate(pg_url)
    old_id = location.build_corpus(settings.corpus_dir, fake_embedder, CONFIG).build_id
    location.close()
    served = settings.model_copy(update={"store": _with_password(pg_url), "reload_interval": 0.05})
    failures: list[str] = []
    builds: Counter[str] = Counter()
    stop = threading.Event()
    switched = threading.Event()
    new_id = ""

    def client(base: str, number: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as http:
            for i in range(2000):  # bounded even if stop never comes
                if stop.is_set():
                    return
                after = switched.is_set()
                response = http.get("/ask", params={"q": QUESTIONS[(i + number) % len(QUESTIONS)], "k": 3})
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                build = response.json()["build_id"]
                builds[build] += 1
                if after and build != new_id:
                    failures.append(f"{base} answered from {build} after every replica had switched")

    with (
        serve_in_thread(create_app(served, embedder=fake_embedder)) as first,
        serve_in_thread(create_app(served, embedder=FakeEmbedder())) as second,
    ):
        threads = [threading.Thread(target=client, args=(base, n)) for base in (first, second) for n in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        new_id = _rebuild_with_new_fact(settings, pg_url)
        deadline = time.monotonic() + 10
        while {httpx.get(f"{base}/readyz").json()["build_id"] for base in (first, second)} != {new_id}:
            assert time.monotonic() < deadline, "the replicas did not switch within 10 s"
            time.sleep(0.05)
        time.sleep(0.3)  # requests that started on the old build have finished
        switched.set()
        time.sleep(0.7)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        health = httpx.get(f"{first}/healthz").text
    assert not failures, failures[:5]
    assert builds[old_id] > 0
    assert builds[new_id] > 0
    assert PASSWORD not in health


@pytest.fixture(scope="module")
def own_server() -> Iterator[LocalPostgres]:
    base = Path(tempfile.mkdtemp(prefix="qa-pg-own-"))
    base.chmod(0o711)
    server = LocalPostgres(base / "data")
    server.start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


def test_a_lost_database_answers_503_and_the_service_recovers_by_itself(
    settings: Settings, own_server: LocalPostgres, fake_embedder: FakeEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    url = own_server.create_database("lost")
    location = locate(url)
    location.build_corpus(settings.corpus_dir, fake_embedder, CONFIG)
    location.close()
    served = settings.model_copy(update={"store": _with_password(url), "reload_interval": 0.05})
    caplog.set_level(logging.INFO)
    with serve_in_thread(create_app(served, embedder=fake_embedder)) as base, httpx.Client(base_url=base) as http:
        assert http.get("/ask", params={"q": QUESTIONS[0]}).status_code == 200
        own_server.stop()
        try:
            away = http.get("/ask", params={"q": QUESTIONS[0]})
            assert away.status_code == 503
            error = away.json()["error"]
            assert (error["status"], error["code"]) == (503, "unavailable")
            assert "database" in error["message"]
            texts = [away.text, http.get("/healthz").text, http.get("/readyz").text]
        finally:
            own_server.start()
        deadline = time.monotonic() + 15
        while (back := http.get("/ask", params={"q": QUESTIONS[0]})).status_code != 200:
            assert time.monotonic() < deadline, f"the service did not recover: {back.text[:200]}"
            time.sleep(0.1)
        assert back.json()["results"]
    assert all(PASSWORD not in text for text in texts)
    assert PASSWORD not in caplog.text
    assert "unavailable" in caplog.text

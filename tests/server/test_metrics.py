"""/metrics: per-app registry, route templates not raw paths, index and reload figures."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.index.embedded.folder import current_build_id
from qa.server.app import create_app
from tests.helpers import FakeEmbedder


@pytest.fixture
def client(built: Settings, fake_embedder: FakeEmbedder) -> Iterator[TestClient]:
    with TestClient(create_app(built, embedder=fake_embedder)) as test_client:
        yield test_client


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in the Prometheus text format, or None."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return None


def test_requests_are_counted_per_route_template(client: TestClient) -> None:
    for passage_id in ("a:1", "b:2", "c:3"):
        assert client.get(f"/passages/{passage_id}").status_code == 404
    client.get("/ask", params={"q": "India"})
    client.get("/no/such/route/123")
    text = client.get("/metrics").text
    assert sample(text, "qa_http_requests_total", route="/passages/{passage_id}", status="404") == 3
    assert sample(text, "qa_http_requests_total", method="GET", route="/ask", status="200") == 1
    assert sample(text, "qa_http_requests_total", route="<unmatched>", status="404") == 1
    assert "a:1" not in text
    assert "/no/such/route" not in text
    assert sample(text, "qa_http_request_duration_seconds_count", route="/ask") == 1


def test_the_open_build_is_reported(client: TestClient, built: Settings) -> None:
    ready = client.get("/readyz").json()
    text = client.get("/metrics").text
    assert sample(text, "qa_index_passages") == ready["passages"]
    assert sample(text, "qa_build_info", build_id=current_build_id(built.index_dir), model="fake-hashing") == 1
    assert sample(text, "qa_reloads_total", result="success") == 0
    assert sample(text, "qa_reloads_total", result="failure") == 0
    manifest = json.loads((built.index_dir / ready["build_id"] / "manifest.json").read_text(encoding="utf-8"))
    assert sample(text, "qa_build_duration_seconds") == manifest.get("build_seconds")  # None when not recorded
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_build_duration_is_read_from_the_manifest_when_present(built: Settings, fake_embedder: FakeEmbedder) -> None:
    manifest_path = built.index_dir / current_build_id(built.index_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest_path.write_text(json.dumps({**manifest, "build_seconds": 12.5}), encoding="utf-8")
    with TestClient(create_app(built, embedder=fake_embedder)) as test_client:
        assert sample(test_client.get("/metrics").text, "qa_build_duration_seconds") == 12.5


def test_each_app_has_its_own_registry(built: Settings, fake_embedder: FakeEmbedder) -> None:
    with (
        TestClient(create_app(built, embedder=fake_embedder)) as first,
        TestClient(create_app(built, embedder=fake_embedder)) as second,
    ):
        for _ in range(3):
            first.get("/healthz")
        second.get("/healthz")
        assert sample(first.get("/metrics").text, "qa_http_requests_total", route="/healthz") == 3
        assert sample(second.get("/metrics").text, "qa_http_requests_total", route="/healthz") == 1


def test_questions_are_batched_and_counted(client: TestClient) -> None:
    for _ in range(3):
        client.get("/ask", params={"q": "India"})
    text = client.get("/metrics").text
    # Only the question is encoded: sentence vectors come from the build.
    assert sample(text, "qa_embed_texts_total") == 3
    assert 1 <= (sample(text, "qa_embed_batches_total") or 0) <= 3


def test_no_index_reports_zero_passages_and_no_build(settings: Settings, fake_embedder: FakeEmbedder) -> None:
    with TestClient(create_app(settings, embedder=fake_embedder)) as test_client:
        text = test_client.get("/metrics").text
        assert sample(text, "qa_index_passages") == 0
        assert "qa_build_info" not in text

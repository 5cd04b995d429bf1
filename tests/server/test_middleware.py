"""Bad requests and hostile input: one error shape, never a 500, never a leak, database intact."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.index.embedded.folder import current_build_id
from qa.search.retrieval import Searcher
from qa.server.app import create_app
from tests.helpers import FakeEmbedder, serve_in_thread
from tests.server.test_api import QUESTION, assert_error

LIMIT = 64 * 1024


@pytest.fixture
def client(built: Settings, fake_embedder: FakeEmbedder) -> Iterator[TestClient]:
    with TestClient(create_app(built, embedder=fake_embedder)) as test_client:
        yield test_client


# -- body size and encoding ---------------------------------------------------------------


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    body = b'{"question": "' + b"x" * LIMIT + b'"}'
    error = assert_error(client.post("/ask", content=body, headers={"content-type": "application/json"}), 413)
    assert error["code"] == "payload_too_large"
    assert str(LIMIT) in error["message"]


def test_body_at_the_limit_is_read(client: TestClient) -> None:
    padding = LIMIT - len('{"question": ""}')
    body = '{"question": "' + "x" * padding + '"}'
    assert len(body.encode()) == LIMIT
    # Read, then refused for what it says (a question over 2,000 characters), not for its size.
    assert_error(client.post("/ask", content=body, headers={"content-type": "application/json"}), 422)


def test_limit_comes_from_settings(built: Settings, fake_embedder: FakeEmbedder) -> None:
    settings = built.model_copy(update={"max_body_bytes": 2048})
    with TestClient(create_app(settings, embedder=fake_embedder)) as test_client:
        response = test_client.post("/ask", json={"question": QUESTION, "k": 3, "pad": "y" * 3000})
        assert_error(response, 413)


def test_chunked_body_without_content_length_over_the_limit_is_413(
    built: Settings, fake_embedder: FakeEmbedder
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(9):
            yield b"y" * 8192
        yield b'"}'

    with serve_in_thread(create_app(built, embedder=fake_embedder)) as base:
        request = httpx.Request("POST", f"{base}/ask", content=chunks(), headers={"content-type": "application/json"})
        assert "content-length" not in request.headers
        assert request.headers["transfer-encoding"] == "chunked"
        with httpx.Client(timeout=10) as http:
            response = http.send(request)
        assert_error(response, 413, "payload_too_large")
        # The server is still fine afterwards.
        assert httpx.get(f"{base}/ask", params={"q": QUESTION}).status_code == 200


def test_body_that_is_not_utf8_is_422(client: TestClient) -> None:
    response = client.post("/ask", content=b'{"question": "\xff\xfe"}', headers={"content-type": "application/json"})
    error = assert_error(response, 422, "invalid_request")
    assert "UTF-8" in error["message"]


# -- query parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "unknown"),
    [
        ("/ask", {"q": QUESTION, "top_k": "3"}, "top_k"),
        ("/ask", {"q": QUESTION, "k": "3", "debug": "1"}, "debug"),
        ("/documents", {"limit": "2"}, "limit"),
        ("/healthz", {"verbose": "true"}, "verbose"),
        ("/readyz", {"x": ""}, "x"),
    ],
)
def test_unknown_query_parameters_are_422(client: TestClient, path: str, params: dict[str, str], unknown: str) -> None:
    error = assert_error(client.get(path, params=params), 422, "invalid_request")
    assert unknown in error["message"]
    assert error["details"][0]["loc"] == ["query", unknown]


def test_declared_query_parameters_are_accepted(client: TestClient) -> None:
    assert client.get("/ask", params={"q": QUESTION, "k": "2"}).status_code == 200
    assert client.get("/documents").status_code == 200


@pytest.mark.parametrize(
    ("params", "mentions"),
    [
        ({"q": QUESTION, "k": "three"}, "k"),
        ({"q": QUESTION, "k": "1e3"}, "k"),
        ({"q": "x" * 2001}, "2000"),
    ],
)
def test_wrong_types_and_overlong_questions_are_422(client: TestClient, params: dict[str, str], mentions: str) -> None:
    assert mentions in assert_error(client.get("/ask", params=params), 422)["message"]


def test_unexpected_exception_is_500_with_the_traceback_only_in_the_log(
    built: Settings, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(self: Searcher, question: str, k: int = 5) -> Any:
        raise KeyError("SELECT secret FROM passages WHERE path = '/srv/qa/index'")

    monkeypatch.setattr(Searcher, "ask", explode)
    app = create_app(built, embedder=fake_embedder)
    with TestClient(app, raise_server_exceptions=False) as test_client, caplog.at_level(logging.ERROR):
        response = test_client.get("/ask", params={"q": QUESTION})
    assert_error(response, 500, "internal_error")
    assert "SELECT" not in response.text
    assert "/srv" not in response.text
    logged = [r for r in caplog.records if r.exc_info is not None]
    assert logged, "the traceback should be logged server-side"


# -- hostile ids and questions -----------------------------------------------------------

TRAVERSAL = [
    "../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/etc/passwd",
    "C:\\Windows\\win.ini",
]
INJECTION = ["x' OR '1'='1", "1; DROP TABLE passages;--", "' UNION SELECT text FROM documents --", '"; DELETE FROM x']


def table_counts(index_dir: Path) -> dict[str, int]:
    path = index_dir / current_build_id(index_dir) / "passages.sqlite"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in ("documents", "passages")}  # noqa: S608


@pytest.mark.parametrize("hostile", TRAVERSAL + INJECTION)
def test_hostile_ids_and_questions_are_answered_or_refused_never_500(
    client: TestClient, built: Settings, hostile: str
) -> None:
    before = table_counts(built.index_dir)
    responses = [
        client.get(f"/passages/{hostile}"),
        client.get(f"/documents/{hostile}"),
        client.get("/passages/" + httpx.URL(hostile).raw_path.decode()),
        client.get("/ask", params={"q": hostile}),
        client.post("/ask", json={"question": hostile, "k": 50}),
    ]
    for response in responses:
        assert response.status_code in (200, 404, 422), response.text
        if response.status_code != 200:
            assert_error(response, response.status_code)
        assert "root:" not in response.text  # nothing was read from /etc/passwd
        assert "sqlite" not in response.text.lower()
    assert table_counts(built.index_dir) == before
    assert client.get("/documents").json()["count"] == before["documents"]


# -- CORS and the address served ---------------------------------------------------------


def preflight(test_client: TestClient, origin: str) -> httpx.Response:
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    response: httpx.Response = test_client.options("/ask", headers=headers)
    return response


def test_cors_is_off_by_default(client: TestClient) -> None:
    assert "access-control-allow-origin" not in preflight(client, "https://evil.example").headers
    response = client.get("/ask", params={"q": QUESTION}, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


def test_cors_allows_only_the_configured_origins(built: Settings, fake_embedder: FakeEmbedder) -> None:
    settings = built.model_copy(update={"cors_origins": ["https://app.example"]})
    with TestClient(create_app(settings, embedder=fake_embedder)) as test_client:
        allowed = preflight(test_client, "https://app.example")
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert "access-control-allow-origin" not in preflight(test_client, "https://evil.example").headers
        response = test_client.get("/ask", params={"q": QUESTION}, headers={"Origin": "https://app.example"})
        assert response.headers["access-control-allow-origin"] == "https://app.example"


def test_cors_origins_and_the_admin_token_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    monkeypatch.setenv("QA_ADMIN_TOKEN", "s3cret-token")
    settings = Settings()
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "s3cret-token"
    assert "s3cret-token" not in repr(settings)


def test_the_service_listens_on_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QA_HOST", raising=False)
    assert Settings().host == "127.0.0.1"

"""``/ask`` takes mode, group and filters in the query string and in the body."""

from __future__ import annotations

from fastapi.testclient import TestClient

from qa.config import Settings
from qa.server.app import create_app
from tests.helpers import FakeEmbedder


def test_the_api_takes_mode_group_and_filters_in_the_query_and_the_body(
    built: Settings, fake_embedder: FakeEmbedder
) -> None:
    target = "003_4fdb1282455ab5f8"
    with TestClient(create_app(built, embedder=fake_embedder)) as client:
        got = client.get("/ask", params={"q": "Ishiba NATO", "k": 3, "mode": "lexical", "doc_id": target})
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["mode"] == "lexical"
        assert {r["citation"]["doc_id"] for r in body["results"]} == {target}
        posted = client.post("/ask", json={"question": "Ishiba NATO", "k": 3, "doc_id": [target], "group": False})
        assert posted.status_code == 200, posted.text
        assert {r["citation"]["doc_id"] for r in posted.json()["results"]} == {target}
        for bad in ({"mode": "semantic"}, {"published_from": "yesterday"}, {"group": "maybe"}):
            response = client.get("/ask", params={"q": "NATO", **bad})
            assert response.status_code == 422, bad
            assert response.json()["error"]["status"] == 422

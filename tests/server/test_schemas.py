"""The one request model of /ask: GET and POST share its fields, its defaults and the library's checks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.server.app import create_app
from qa.server.schemas import AskQuery, AskRequest
from tests.helpers import FakeEmbedder
from tests.server.test_api import QUESTION, assert_error


@pytest.fixture
def client(built: Settings, fake_embedder: FakeEmbedder) -> Iterator[TestClient]:
    with TestClient(create_app(built, embedder=fake_embedder)) as test_client:
        yield test_client


@pytest.fixture
def client_k3(built: Settings, fake_embedder: FakeEmbedder) -> Iterator[TestClient]:
    settings = built.model_copy(update={"default_k": 3})
    with TestClient(create_app(settings, embedder=fake_embedder)) as test_client:
        yield test_client


def test_get_and_post_read_the_same_fields() -> None:
    body = set(AskRequest.model_fields)
    assert set(AskQuery.model_fields) == body
    assert AskQuery.model_fields["question"].alias == "q"


@pytest.mark.parametrize("method", ["get", "post"])
def test_k_defaults_to_the_settings_default_k(client_k3: TestClient, method: str) -> None:
    if method == "get":
        response = client_k3.get("/ask", params={"q": QUESTION})
    else:
        response = client_k3.post("/ask", json={"question": QUESTION})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["k"] == 3
    assert len(answer["results"]) == 3


@pytest.mark.parametrize("date", ["2024-13-45", "2024-02-30", "2024-00-10"])
@pytest.mark.parametrize("name", ["published_from", "published_to"])
def test_a_date_that_is_no_day_is_a_422_naming_the_parameter(client: TestClient, name: str, date: str) -> None:
    got = assert_error(client.get("/ask", params={"q": "NATO", name: date}), 422, "invalid_request")
    posted = assert_error(client.post("/ask", json={"question": "NATO", name: date}), 422, "invalid_request")
    assert got == posted
    assert name in got["message"]
    assert date in got["message"]


def test_a_real_leap_day_is_accepted(client: TestClient) -> None:
    response = client.get("/ask", params={"q": "NATO", "published_from": "2024-02-29"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("question", ["\x00\x00", "\x00 \x07", "\u200b", " \x1b "])
def test_a_question_of_control_characters_is_the_blank_question_422(client: TestClient, question: str) -> None:
    blank = assert_error(client.get("/ask", params={"q": "   "}), 422, "invalid_request")
    got = assert_error(client.get("/ask", params={"q": question}), 422, "invalid_request")
    posted = assert_error(client.post("/ask", json={"question": question}), 422, "invalid_request")
    assert got == blank == posted
    assert "empty" in got["message"]


def test_a_control_character_inside_a_question_is_kept(client: TestClient) -> None:
    response = client.get("/ask", params={"q": "NATO\x00 India"})
    assert response.status_code == 200, response.text


def test_unknown_query_parameters_are_still_rejected(client: TestClient) -> None:
    error = assert_error(client.get("/ask", params={"q": QUESTION, "question": QUESTION}), 422, "invalid_request")
    assert "question" in error["message"]


def test_repeated_doc_id_filters_on_get(client: TestClient) -> None:
    documents = [d["doc_id"] for d in client.get("/documents").json()["documents"]][:2]
    response = client.get("/ask", params=[("q", QUESTION), *(("doc_id", d) for d in documents)])
    assert response.status_code == 200, response.text
    assert {r["citation"]["doc_id"] for r in response.json()["results"]} <= set(documents)

"""The HTTP API: every route, every error, one error shape, and no traceback ever sent."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest
from fastapi.testclient import TestClient

from qa.config import MAX_K, MAX_QUESTION_CHARS, Settings
from qa.index.embedded.store import EmbeddedStore
from qa.index.location import build_index
from qa.ingest.chunking import ChunkerConfig
from qa.search.retrieval import Searcher
from qa.server.app import create_app
from tests.helpers import FakeEmbedder

QUESTION = "Why did India reject an Asian NATO?"
QUESTIONS = [
    QUESTION,
    "What is strategic autonomy?",
    "Who proposed an Asian NATO and how did China respond?",
    "Quad Indo-Pacific security cooperation with the United States",
]
BOILERPLATE = ("Forum statistics", "View all comments")


@pytest.fixture
def client(built: Settings, fake_embedder: FakeEmbedder) -> Iterator[TestClient]:
    with TestClient(create_app(built, embedder=fake_embedder)) as test_client:
        yield test_client


def source_text(settings: Settings, source: str) -> str:
    """The article as the citation offsets count it: UTF-8 decoded, newlines untouched."""
    return (settings.corpus_dir / source).read_bytes().decode("utf-8")


class Response(Protocol):
    """What the tests read from a TestClient response (whichever httpx Starlette uses)."""

    status_code: int

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


def assert_error(response: Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The common error shape, with the right status, and nothing a client should not see."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert {"status", "code", "message"} <= set(error)
    assert error["status"] == status
    assert isinstance(error["code"], str)
    assert error["code"]
    if code is not None:
        assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"].strip()
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    return dict(error)


# -- /ask ---------------------------------------------------------------------------------


@pytest.mark.parametrize("question", QUESTIONS)
@pytest.mark.parametrize("k", [1, 3, 5, 12])
def test_get_and_post_ask_return_the_same_answer(client: TestClient, question: str, k: int) -> None:
    got = client.get("/ask", params={"q": question, "k": k})
    posted = client.post("/ask", json={"question": question, "k": k})
    assert got.status_code == 200, got.text
    assert posted.status_code == 200, posted.text
    assert got.json() == posted.json()


def test_ask_answer_has_the_contract_keys(client: TestClient, built: Settings) -> None:
    answer = client.get("/ask", params={"q": QUESTION, "k": 5}).json()
    assert {"question", "results", "build_id"} <= set(answer)
    assert answer["question"] == QUESTION
    assert answer["build_id"] == (built.index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    for result in answer["results"]:
        assert {"rank", "score", "passage_id", "text", "citation"} <= set(result)
        citation = result["citation"]
        assert {"doc_id", "title", "author", "source", "start", "end", "formatted"} <= set(citation)
        # The seeds carry no sidecar metadata: an unknown author is null, never a guess like "".
        assert citation["author"] is None or citation["author"].strip()


@pytest.mark.parametrize("k", [1, 2, 5, 17, MAX_K])
def test_results_are_ranked_and_k_is_respected(client: TestClient, k: int) -> None:
    results = client.get("/ask", params={"q": QUESTION, "k": k}).json()["results"]
    assert len(results) == k
    assert [r["rank"] for r in results] == list(range(1, k + 1))
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert len({r["passage_id"] for r in results}) == k


def test_default_k_is_five(client: TestClient) -> None:
    got = client.get("/ask", params={"q": QUESTION}).json()
    posted = client.post("/ask", json={"question": QUESTION}).json()
    assert len(got["results"]) == 5
    assert got == posted


def test_question_is_answered_trimmed(client: TestClient) -> None:
    padded = client.get("/ask", params={"q": f"  {QUESTION}\n", "k": 3}).json()
    plain = client.get("/ask", params={"q": QUESTION, "k": 3}).json()
    assert padded == plain


def test_longest_allowed_question_is_answered(client: TestClient) -> None:
    question = ("India Japan NATO " * MAX_QUESTION_CHARS)[:MAX_QUESTION_CHARS]
    assert client.get("/ask", params={"q": question, "k": 1}).status_code == 200
    assert client.post("/ask", json={"question": question, "k": 1}).status_code == 200


@pytest.mark.parametrize("question", QUESTIONS)
def test_citation_offsets_index_the_original_file(client: TestClient, built: Settings, question: str) -> None:
    results = client.get("/ask", params={"q": question, "k": MAX_K}).json()["results"]
    assert results
    for result in results:
        citation = result["citation"]
        text = source_text(built, citation["source"])
        assert 0 <= citation["start"] < citation["end"] <= len(text)
        assert text[citation["start"] : citation["end"]] == result["text"]


def test_formatted_citation_names_title_source_and_offsets(client: TestClient) -> None:
    for result in client.get("/ask", params={"q": QUESTION, "k": 10}).json()["results"]:
        citation = result["citation"]
        formatted = citation["formatted"]
        assert f"\u201c{citation['title']}\u201d" in formatted
        assert citation["source"] in formatted
        assert f"chars {citation['start']}\u2013{citation['end']}" in formatted


# -- /passages ----------------------------------------------------------------------------


def test_passage_of_an_answer_resolves_with_its_citation(client: TestClient) -> None:
    result = client.get("/ask", params={"q": QUESTION, "k": 1}).json()["results"][0]
    response = client.get(f"/passages/{result['passage_id']}")
    assert response.status_code == 200, response.text
    passage = response.json()
    assert passage["passage_id"] == result["passage_id"]
    assert passage["text"] == result["text"]
    assert passage["citation"] == result["citation"]
    assert {"previous_id", "next_id"} <= set(passage)


def test_neighbours_resolve_and_point_back(client: TestClient) -> None:
    checked = 0
    for result in client.get("/ask", params={"q": QUESTION, "k": 10}).json()["results"]:
        passage = client.get(f"/passages/{result['passage_id']}").json()
        if passage["previous_id"] is not None:
            previous = client.get(f"/passages/{passage['previous_id']}")
            assert previous.status_code == 200
            assert previous.json()["next_id"] == passage["passage_id"]
            assert previous.json()["citation"]["doc_id"] == passage["citation"]["doc_id"]
            checked += 1
        if passage["next_id"] is not None:
            following = client.get(f"/passages/{passage['next_id']}")
            assert following.status_code == 200
            assert following.json()["previous_id"] == passage["passage_id"]
            assert following.json()["citation"]["doc_id"] == passage["citation"]["doc_id"]
            checked += 1
    assert checked > 0


def test_first_and_last_passages_of_a_document_have_no_neighbour_outside_it(client: TestClient) -> None:
    for summary in client.get("/documents").json()["documents"]:
        ids = client.get(f"/documents/{summary['doc_id']}").json()["passage_ids"]
        first = client.get(f"/passages/{ids[0]}").json()
        last = client.get(f"/passages/{ids[-1]}").json()
        assert first["previous_id"] is None
        assert last["next_id"] is None
        if len(ids) > 1:
            assert first["next_id"] == ids[1]
            assert last["previous_id"] == ids[-2]


def test_every_passage_of_every_document_is_a_verbatim_span(client: TestClient, built: Settings) -> None:
    for summary in client.get("/documents").json()["documents"]:
        text = source_text(built, summary["source"])
        ids = client.get(f"/documents/{summary['doc_id']}").json()["passage_ids"]
        for ordinal, passage_id in enumerate(ids):
            passage = client.get(f"/passages/{passage_id}").json()
            assert passage["ordinal"] == ordinal
            citation = passage["citation"]
            assert text[citation["start"] : citation["end"]] == passage["text"]


# -- /documents ---------------------------------------------------------------------------


def test_documents_lists_every_article_with_passage_counts(client: TestClient, built: Settings) -> None:
    response = client.get("/documents")
    assert response.status_code == 200
    listing = response.json()
    assert listing["count"] == 5
    assert len(listing["documents"]) == 5
    index = EmbeddedStore.open(built.index_dir, expected=None)
    try:
        total = index.passage_count
    finally:
        index.close()
    assert sum(d["passages"] for d in listing["documents"]) == total
    sources = sorted(p.name for p in built.corpus_dir.glob("*.txt"))
    assert sorted(d["source"] for d in listing["documents"]) == sources
    for document in listing["documents"]:
        assert {"doc_id", "title", "author", "passages"} <= set(document)
        assert document["title"].strip()
        assert document["passages"] > 0


def test_document_has_cleaned_text_without_boilerplate(client: TestClient, built: Settings) -> None:
    originals = "".join(source_text(built, p.name) for p in built.corpus_dir.glob("*.txt"))
    assert all(phrase in originals for phrase in BOILERPLATE)  # so the check below means something
    for summary in client.get("/documents").json()["documents"]:
        response = client.get(f"/documents/{summary['doc_id']}")
        assert response.status_code == 200
        document = response.json()
        assert document["doc_id"] == summary["doc_id"]
        assert document["title"] == summary["title"]
        assert len(document["passage_ids"]) == summary["passages"]
        assert document["cleaned_text"].strip()
        for phrase in BOILERPLATE:
            assert phrase not in document["cleaned_text"]


# -- /healthz and the docs ----------------------------------------------------------------


def test_healthz_reports_build_model_and_passages(client: TestClient, built: Settings) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok"
    assert health["build_id"] == (built.index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    assert health["model"] == "fake-hashing"
    total = sum(d["passages"] for d in client.get("/documents").json()["documents"])
    assert health["passages"] == total


def test_openapi_lists_the_routes(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"get", "post"} <= set(paths["/ask"])
    for path in ("/passages/{passage_id}", "/documents", "/documents/{doc_id}", "/healthz", "/readyz"):
        assert "get" in paths[path]
    # The searcher is a dependency, not something a client has to send.
    assert {p["name"] for p in paths["/ask"]["get"]["parameters"]} == {
        "q",
        "k",
        "mode",
        "group",
        "doc_id",
        "author",
        "outlet",
        "published_from",
        "published_to",
    }
    assert {p["name"] for p in paths["/documents/{doc_id}"]["get"]["parameters"]} == {"doc_id"}
    assert "parameters" not in paths["/documents"]["get"]


def test_docs_page_is_html(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "openapi.json" in response.text


# -- errors -------------------------------------------------------------------------------

TOO_LONG = "x" * (MAX_QUESTION_CHARS + 1)


@pytest.mark.parametrize(
    ("params", "mentions"),
    [
        pytest.param({}, "q", id="q-missing"),
        pytest.param({"q": ""}, "q", id="q-empty"),
        pytest.param({"q": "   "}, "empty", id="q-blank"),
        pytest.param({"q": "\n\t "}, "empty", id="q-whitespace"),
        pytest.param({"q": TOO_LONG}, "2000", id="q-too-long"),
        pytest.param({"q": QUESTION, "k": "0"}, "k", id="k-0"),
        pytest.param({"q": QUESTION, "k": "51"}, "k", id="k-51"),
        pytest.param({"q": QUESTION, "k": "-1"}, "k", id="k-negative"),
        pytest.param({"q": QUESTION, "k": "abc"}, "k", id="k-abc"),
        pytest.param({"q": QUESTION, "k": "2.5"}, "k", id="k-float"),
    ],
)
def test_get_ask_rejects_bad_input(client: TestClient, params: dict[str, str], mentions: str) -> None:
    error = assert_error(client.get("/ask", params=params), 422, "invalid_request")
    assert mentions in error["message"]
    assert TOO_LONG not in error["message"]


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        pytest.param({}, "question", id="question-missing"),
        pytest.param({"question": ""}, "question", id="question-empty"),
        pytest.param({"question": "   "}, "empty", id="question-blank"),
        pytest.param({"question": TOO_LONG}, "question", id="question-too-long"),
        pytest.param({"question": QUESTION, "k": 0}, "k", id="k-0"),
        pytest.param({"question": QUESTION, "k": 51}, "k", id="k-51"),
        pytest.param({"question": QUESTION, "k": "abc"}, "k", id="k-abc"),
        pytest.param({"question": 42}, "question", id="question-not-a-string"),
        pytest.param({"question": [QUESTION]}, "question", id="question-a-list"),
        pytest.param({"question": None}, "question", id="question-null"),
        pytest.param({"question": QUESTION, "top_k": 3}, "top_k", id="unknown-field"),
        pytest.param([QUESTION], "body", id="not-an-object"),
    ],
)
def test_post_ask_rejects_bad_input(client: TestClient, body: Any, mentions: str) -> None:
    error = assert_error(client.post("/ask", json=body), 422, "invalid_request")
    assert mentions in error["message"]
    assert TOO_LONG not in error["message"]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"question": "Why?", ', id="truncated"),
        pytest.param(b"{question: 'Why?'}", id="not-json"),
        pytest.param(b"", id="empty"),
    ],
)
def test_post_ask_rejects_malformed_json(client: TestClient, content: bytes) -> None:
    response = client.post("/ask", content=content, headers={"content-type": "application/json"})
    error = assert_error(response, 422, "invalid_request")
    assert "JSON" in error["message"] or "body" in error["message"]


def test_post_ask_rejects_a_body_that_is_not_utf8(client: TestClient) -> None:
    response = client.post("/ask", content=b"\xff\xfe\x00", headers={"content-type": "application/json"})
    error = assert_error(response, 422, "invalid_request")
    assert "UTF-8" in error["message"]


def test_unknown_passage_is_404(client: TestClient) -> None:
    error = assert_error(client.get("/passages/000_nope:000000000000"), 404, "not_found")
    assert "000_nope:000000000000" in error["message"]


def test_unknown_document_is_404(client: TestClient) -> None:
    error = assert_error(client.get("/documents/no-such-doc"), 404, "not_found")
    assert "no-such-doc" in error["message"]


def test_unknown_route_is_404(client: TestClient) -> None:
    assert_error(client.get("/no/such/route"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/ask"), ("PUT", "/ask"), ("POST", "/documents"), ("DELETE", "/healthz")],
)
def test_wrong_method_is_405(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


def test_internal_error_is_500_without_a_traceback(
    built: Settings, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(self: Searcher, question: str, k: int = 5) -> Any:
        raise RuntimeError("boom in /secret/place.py")

    monkeypatch.setattr(Searcher, "ask", explode)
    app = create_app(built, embedder=fake_embedder)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        for response in (
            test_client.get("/ask", params={"q": QUESTION}),
            test_client.post("/ask", json={"question": QUESTION}),
        ):
            error = assert_error(response, 500, "internal_error")
            assert "boom" not in response.text
            assert "/secret" not in response.text
            assert "RuntimeError" not in error["message"]


# -- a service with nothing usable to serve -----------------------------------------------

INDEX_ROUTES = ["/ask?q=India", "/documents", "/documents/x", "/passages/x"]


def assert_unavailable(test_client: TestClient, hidden: list[Path]) -> None:
    responses = [test_client.get("/readyz"), test_client.post("/ask", json={"question": QUESTION})]
    responses += [test_client.get(route) for route in INDEX_ROUTES]
    for response in responses:
        error = assert_error(response, 503, "unavailable")
        assert "qa build" in error["message"]
        for path in hidden:
            assert str(path) not in response.text
    # Liveness stays 200: the process is up, it only cannot answer yet, and says why.
    health = test_client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "not_ready"
    assert "qa build" in health.json()["reason"]
    for path in hidden:
        assert str(path) not in health.text


def test_empty_index_folder_is_503_without_its_path(settings: Settings, fake_embedder: FakeEmbedder) -> None:
    settings.index_dir.mkdir(parents=True)
    with TestClient(create_app(settings, embedder=fake_embedder)) as test_client:
        assert_unavailable(test_client, [settings.index_dir, settings.index_dir.parent])


def test_missing_index_folder_is_503(settings: Settings, fake_embedder: FakeEmbedder) -> None:
    assert not settings.index_dir.exists()
    with TestClient(create_app(settings, embedder=fake_embedder)) as test_client:
        assert_unavailable(test_client, [settings.index_dir, settings.index_dir.parent])


@pytest.mark.parametrize(
    "builder",
    [
        pytest.param(FakeEmbedder(dimension=32), id="other-dimension"),
        pytest.param(FakeEmbedder(seed="b"), id="same-dimension-other-vectors"),
    ],
)
def test_index_built_with_another_embedder_is_refused(settings: Settings, builder: FakeEmbedder) -> None:
    config = ChunkerConfig.from_settings(settings)
    build_index(settings.corpus_dir, settings.index_dir, builder, config)
    with TestClient(create_app(settings, embedder=FakeEmbedder())) as test_client:
        assert_unavailable(test_client, [settings.index_dir, settings.index_dir.parent])
        message = test_client.get("/readyz").json()["error"]["message"]
        assert "model" in message


def test_index_built_with_another_chunker_is_refused(settings: Settings, fake_embedder: FakeEmbedder) -> None:
    build_index(settings.corpus_dir, settings.index_dir, fake_embedder, ChunkerConfig(settings.max_tokens + 32, 0))
    with TestClient(create_app(settings, embedder=fake_embedder)) as test_client:
        assert_unavailable(test_client, [settings.index_dir, settings.index_dir.parent])


# -- citations resolve across builds ---------------------------------------------------------------


def test_passage_ids_resolve_across_rebuilds_and_a_gone_passage_points_to_its_document(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    """Ids handed out by one build resolve in the next while their text is unchanged; an id whose
    passage was edited away answers 404 naming its document, which still resolves."""
    config = ChunkerConfig.from_settings(settings)
    build_index(settings.corpus_dir, settings.index_dir, fake_embedder, config)
    with TestClient(create_app(settings, embedder=fake_embedder)) as client:
        first_build = client.get("/readyz").json()["build_id"]
        before: dict[str, list[dict[str, Any]]] = {}
        for document in client.get("/documents").json()["documents"]:
            ids = client.get(f"/documents/{document['doc_id']}").json()["passage_ids"]
            before[document["doc_id"]] = [client.get(f"/passages/{p}").json() for p in ids]

    edited, removed = "003_4fdb1282455ab5f8", "004_7c5f304601117e1b"
    path = settings.corpus_dir / f"{edited}.txt"
    path.chmod(0o644)
    text = path.read_text(encoding="utf-8")
    first_sentence = before[edited][0]["text"].split(". ")[0]
    path.write_text(text.replace(first_sentence, first_sentence.replace("Asia", "East Asia"), 1), encoding="utf-8")
    (settings.corpus_dir / f"{removed}.txt").unlink()
    build_index(settings.corpus_dir, settings.index_dir, fake_embedder, config)

    with TestClient(create_app(settings, embedder=fake_embedder)) as client:
        assert client.get("/readyz").json()["build_id"] != first_build
        for doc_id, passages in before.items():
            for old in passages:
                response = client.get(f"/passages/{old['passage_id']}")
                if doc_id not in (edited, removed):
                    assert response.status_code == 200, (doc_id, response.text)
                    new = response.json()
                    assert (new["text"], new["citation"]) == (old["text"], old["citation"])
                    cite = client.get(f"/passages/{old['passage_id']}/cite", params={"format": "text"})
                    assert cite.text == old["citation"]["formatted"]
        gone = before[edited][0]["passage_id"]
        error = assert_error(client.get(f"/passages/{gone}"), 404, "not_found")
        assert error["details"] == [{"doc_id": edited, "document": f"/documents/{edited}"}]
        assert f"/documents/{edited}" in error["message"]
        assert client.get(error["details"][0]["document"]).status_code == 200
        # The rest of the edited article did not change, so its ids still resolve.
        assert client.get(f"/passages/{before[edited][-1]['passage_id']}").status_code == 200
        assert_error(client.get(f"/passages/{gone}/cite"), 404, "not_found")
        # A passage of an article that is gone altogether: no document to point to.
        error = assert_error(client.get(f"/passages/{before[removed][0]['passage_id']}"), 404, "not_found")
        assert "details" not in error

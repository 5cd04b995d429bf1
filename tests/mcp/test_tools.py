"""The MCP tools in memory (the SDK's own client and the server in one process), with the fake embedder.

Every tool is compared with the HTTP route it mirrors, on the same app and the same live
build: same JSON, same error bodies.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent

import qa.service as service
from qa.citations.formats import CITE_FORMATS
from qa.cli import commands as cli
from qa.config import Settings
from qa.index.location import build_index
from qa.ingest.chunking import ChunkerConfig
from qa.mcp.stdio import stdio_server
from qa.search.retrieval import Searcher
from qa.server.app import create_app
from tests.helpers import FakeEmbedder

pytestmark = pytest.mark.anyio

QUESTION = "Why did India reject an Asian NATO?"
TOOLS = {"ask", "get_passage", "cite", "verify_quotes", "list_documents"}


@pytest.fixture
def http(built: Settings, fake_embedder: FakeEmbedder) -> Iterator[TestClient]:
    """The HTTP app, started: its MCP server (app.state.mcp.server) answers from the same state."""
    with TestClient(create_app(built, embedder=fake_embedder)) as client:
        yield client


@pytest.fixture
async def mcp(http: TestClient) -> AsyncIterator[Client]:
    """The SDK's client, in memory, on the MCP server of the running app."""
    async with Client(http.app.state.mcp.server) as client:  # type: ignore[attr-defined]
        yield client


def text_of(result: CallToolResult) -> str:
    assert len(result.content) == 1
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content


def assert_tool_error(result: CallToolResult, rest: Any) -> None:
    """A tool error whose text is the REST error body's message and whose structure is that body."""
    assert result.is_error
    body = rest.json()
    assert text_of(result) == body["error"]["message"]
    assert result.structured_content == body
    assert "Traceback" not in text_of(result)


# -- the tools listed -------------------------------------------------------------------------


async def test_five_read_only_tools_each_with_an_output_schema_and_a_description_for_assistants(mcp: Client) -> None:
    tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.output_schema is not None, tool.name
        assert len(tool.description or "") > 100, tool.name
        assert tool.annotations is not None, tool.name
        assert tool.annotations.read_only_hint, tool.name
    assert "word for word" in (tools["ask"].description or "")
    assert "citation" in (tools["ask"].description or "")
    assert set(tools["ask"].input_schema["properties"]) == {"question", "k", "mode", "filters"}
    assert tools["ask"].input_schema["properties"]["k"]["default"] == 5
    assert "word for word" in (mcp.instructions or "")


async def test_a_client_on_the_initialize_handshake_gets_the_same_over_json_rpc_streams(http: TestClient) -> None:
    """mode="legacy": the pre-2026 handshake, the session's JSON-RPC messages over in-memory streams."""
    async with Client(http.app.state.mcp.server, mode="legacy") as mcp:  # type: ignore[attr-defined]
        result = await mcp.call_tool("ask", {"question": QUESTION, "k": 2})
        assert structured(result) == http.get("/ask", params={"q": QUESTION, "k": 2}).json()
        blank = await mcp.call_tool("ask", {"question": ""})
        assert_tool_error(blank, http.get("/ask", params={"q": " "}))


# -- ask -----------------------------------------------------------------------------------


async def test_ask_structured_output_is_the_json_of_get_ask(mcp: Client, http: TestClient) -> None:
    for question, mode in ((QUESTION, "hybrid"), ("What is strategic autonomy?", "lexical"), (QUESTION, "dense")):
        result = await mcp.call_tool("ask", {"question": question, "k": 4, "mode": mode})
        rest = http.get("/ask", params={"q": question, "k": 4, "mode": mode})
        assert rest.status_code == 200
        assert structured(result) == rest.json()
        assert len(rest.json()["results"]) == 4


async def test_ask_text_quotes_each_passage_with_its_citation_and_id(mcp: Client) -> None:
    result = await mcp.call_tool("ask", {"question": QUESTION, "k": 3})
    answer, text = structured(result), text_of(result)
    for item in answer["results"]:
        quoted = "\n".join(f"> {line}" if line else ">" for line in item["text"].split("\n"))
        assert f"passage_id {item['passage_id']}\n{quoted}\n— {item['citation']['markdown']}" in text
    assert "word for word" in text


async def test_ask_filters_and_defaults_are_the_apis(mcp: Client, http: TestClient) -> None:
    doc = "003_4fdb1282455ab5f8"
    result = await mcp.call_tool("ask", {"question": "Ishiba NATO", "filters": {"doc_id": [doc]}})
    answer = structured(result)
    assert answer["k"] == 5
    assert answer["results"]
    assert {r["citation"]["doc_id"] for r in answer["results"]} == {doc}
    assert answer == http.get("/ask", params={"q": "Ishiba NATO", "doc_id": doc}).json()


# -- errors: the REST error bodies ------------------------------------------------------------


async def test_a_blank_question_is_the_apis_422(mcp: Client, http: TestClient) -> None:
    result = await mcp.call_tool("ask", {"question": "   "})
    rest = http.get("/ask", params={"q": "   "})
    assert rest.status_code == 422
    assert_tool_error(result, rest)
    assert text_of(result) == "the question is empty"


async def test_a_bad_filter_date_is_the_apis_422(mcp: Client, http: TestClient) -> None:
    result = await mcp.call_tool("ask", {"question": QUESTION, "filters": {"published_from": "2024-13-45"}})
    rest = http.get("/ask", params={"q": QUESTION, "published_from": "2024-13-45"})
    assert rest.status_code == 422
    assert_tool_error(result, rest)


async def test_unknown_passage_ids_are_the_apis_404(mcp: Client, http: TestClient) -> None:
    gone = "001_3737cd750cfae74d:000000000000"  # its document is indexed: the message names it
    for passage_id in ("nope:123456789abc", gone):
        path = quote(passage_id, safe=":")
        assert_tool_error(await mcp.call_tool("get_passage", {"passage_id": passage_id}), http.get(f"/passages/{path}"))
        assert_tool_error(
            await mcp.call_tool("cite", {"passage_id": passage_id, "format": "bibtex"}),
            http.get(f"/passages/{path}/cite", params={"format": "bibtex"}),
        )
    result = await mcp.call_tool("get_passage", {"passage_id": gone})
    assert "its document is still here: /documents/001_3737cd750cfae74d" in text_of(result)


async def test_arguments_outside_the_schema_are_tool_errors_without_a_traceback(mcp: Client) -> None:
    for name, arguments in (
        ("ask", {"question": QUESTION, "k": 0}),
        ("ask", {"question": QUESTION, "mode": "fuzzy"}),
        ("ask", {"question": "x" * 2001}),
        ("get_passage", {"passage_id": "a:b", "context": 6}),
        ("cite", {"passage_id": "a:b", "format": "apa"}),
        ("verify_quotes", {"text": ""}),
    ):
        result = await mcp.call_tool(name, arguments)
        assert result.is_error, (name, arguments)
        assert "Traceback" not in text_of(result)
        assert "validation error" in text_of(result)


async def test_an_unexpected_failure_reaches_the_client_as_a_bare_tool_error(
    mcp: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret detail from /srv/qa/index")

    monkeypatch.setattr(Searcher, "ask", crash)
    result = await mcp.call_tool("ask", {"question": QUESTION})
    assert result.is_error
    assert text_of(result) == "Error executing tool ask"


async def test_with_no_index_every_tool_says_what_the_api_says(settings: Settings, fake_embedder: FakeEmbedder) -> None:
    """No build yet: the tools answer with the 503 message of the API, and the resources list is empty."""
    with TestClient(create_app(settings, embedder=fake_embedder)) as http:
        rest = http.get("/ask", params={"q": QUESTION})
        assert rest.status_code == 503
        async with Client(http.app.state.mcp.server) as mcp:  # type: ignore[attr-defined]
            for name, arguments in (
                ("ask", {"question": QUESTION}),
                ("get_passage", {"passage_id": "a:b"}),
                ("cite", {"passage_id": "a:b"}),
                ("verify_quotes", {"text": "India does not see the need"}),
                ("list_documents", {}),
            ):
                assert_tool_error(await mcp.call_tool(name, arguments), rest)
            assert "qa build" in text_of(await mcp.call_tool("ask", {"question": QUESTION}))
            assert (await mcp.list_resources()).resources == []


# -- get_passage and cite ---------------------------------------------------------------------


async def test_get_passage_is_the_apis_passage_with_its_neighbours_in_reading_order(
    mcp: Client, http: TestClient
) -> None:
    answer = structured(await mcp.call_tool("ask", {"question": QUESTION, "k": 1}))
    passage_id = answer["results"][0]["passage_id"]
    alone = structured(await mcp.call_tool("get_passage", {"passage_id": passage_id}))
    assert alone == {"passage": http.get(f"/passages/{passage_id}").json(), "before": [], "after": []}

    found = structured(await mcp.call_tool("get_passage", {"passage_id": passage_id, "context": 2}))
    chain = [*found["before"], found["passage"], *found["after"]]
    assert 1 < len(chain) <= 5
    for view in chain:
        assert view == http.get(f"/passages/{view['passage_id']}").json()
    for left, right in itertools.pairwise(chain):
        assert left["next_id"] == right["passage_id"]
        assert right["previous_id"] == left["passage_id"]
    document = http.get(f"/documents/{found['passage']['citation']['doc_id']}").json()
    ids = document["passage_ids"]
    at = ids.index(passage_id)
    assert [v["passage_id"] for v in chain] == ids[max(0, at - 2) : at + 3]


async def test_cite_gives_each_format_as_the_cite_route_does(mcp: Client, http: TestClient) -> None:
    answer = structured(await mcp.call_tool("ask", {"question": QUESTION, "k": 1}))
    passage_id = answer["results"][0]["passage_id"]
    for fmt in CITE_FORMATS:
        result = await mcp.call_tool("cite", {"passage_id": passage_id, "format": fmt})
        rest = http.get(f"/passages/{passage_id}/cite", params={"format": fmt})
        assert rest.status_code == 200
        assert text_of(result) == rest.text
        assert structured(result) == {
            "passage_id": passage_id,
            "format": fmt,
            "media_type": rest.headers["content-type"],
            "citation": rest.text,
        }
    markdown = await mcp.call_tool("cite", {"passage_id": passage_id})
    assert text_of(markdown) == answer["results"][0]["citation"]["markdown"]


# -- verify_quotes ----------------------------------------------------------------------------


async def test_verify_quotes_finds_every_quote_of_qa_ask_format_markdown(
    mcp: Client, http: TestClient, built: Settings, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "make_encoder", lambda *args, **kwargs: fake_embedder)
    printed = CliRunner().invoke(
        cli.main, ["ask", QUESTION, "--index", str(built.index_dir), "--k", "5", "--format", "markdown"]
    )
    assert printed.exit_code == 0, printed.output
    draft = printed.stdout
    result = await mcp.call_tool("verify_quotes", {"text": draft})
    report = structured(result)
    assert report["unsupported"] == 0
    assert report["supported"] == len(report["quotes"]) == 5
    assert all(q["found"] and q["kind"] == "block" for q in report["quotes"])
    assert report == http.post("/verify", json={"text": draft}).json()
    assert text_of(result).startswith("5 of 5 quote(s) found verbatim")


async def test_verify_quotes_gives_the_closest_passage_for_a_quote_that_is_not_verbatim(mcp: Client) -> None:
    draft = "The article says India “has traditionally welcomed formal military alliances”."  # source: resisted
    result = await mcp.call_tool("verify_quotes", {"text": draft})
    report = structured(result)
    assert report["unsupported"] == 1
    closest = report["quotes"][0]["closest"]
    assert closest is not None
    assert "resisted formal military alliances" in closest["sentence"]
    assert f"passage_id {closest['passage_id']}" in text_of(result)
    assert "NOT found" in text_of(result)


# -- list_documents and the document resources ------------------------------------------------


async def test_list_documents_and_one_resource_per_document_with_its_cleaned_text(
    mcp: Client, http: TestClient
) -> None:
    listed = structured(await mcp.call_tool("list_documents", {}))
    assert listed == http.get("/documents").json()
    doc_ids = [d["doc_id"] for d in listed["documents"]]
    assert len(doc_ids) == 5
    resources = (await mcp.list_resources()).resources
    assert [str(r.uri) for r in resources] == [f"qa://documents/{d}" for d in doc_ids]
    assert all(r.mime_type == "text/plain" for r in resources)
    templates = (await mcp.list_resource_templates()).resource_templates
    assert [t.uri_template for t in templates] == ["qa://documents/{doc_id}"]
    for doc_id in doc_ids:
        contents = (await mcp.read_resource(f"qa://documents/{doc_id}")).contents
        assert len(contents) == 1
        assert getattr(contents[0], "text", None) == http.get(f"/documents/{doc_id}").json()["cleaned_text"]
    with pytest.raises(MCPError, match="no document 'nope' in build"):
        await mcp.read_resource("qa://documents/nope")


# -- the same live build as the API -----------------------------------------------------------


async def test_a_new_build_is_answered_by_the_tools_once_the_api_has_reloaded(
    mcp: Client, http: TestClient, built: Settings, fake_embedder: FakeEmbedder
) -> None:
    before = structured(await mcp.call_tool("list_documents", {}))
    first = structured(await mcp.call_tool("ask", {"question": QUESTION}))["build_id"]
    shutil.copy(built.corpus_dir / "001_3737cd750cfae74d.txt", built.corpus_dir / "005_copy.txt")
    report = build_index(built.corpus_dir, built.index_dir, fake_embedder, ChunkerConfig.from_settings(built))
    http.app.state.qa.live.reload()  # type: ignore[attr-defined]  # what the watcher does within its interval
    after = structured(await mcp.call_tool("list_documents", {}))
    assert after["count"] == before["count"] + 1
    answer = structured(await mcp.call_tool("ask", {"question": QUESTION}))
    assert answer["build_id"] == report.build_id != first
    assert answer == http.get("/ask", params={"q": QUESTION}).json()


# -- qa mcp's own state (stdio's server, here in memory) ----------------------------------------


async def test_the_stdio_server_starts_and_stops_its_own_state(built: Settings, fake_embedder: FakeEmbedder) -> None:
    server = stdio_server(built, fake_embedder)
    async with Client(server) as mcp:
        answer = structured(await mcp.call_tool("ask", {"question": QUESTION, "k": 2}))
        assert len(answer["results"]) == 2
        live = server.state.live
        assert live is not None
        assert live.current() is not None
    assert live.current() is None  # closed with the session

"""The real thing: the SDK's client against `qa mcp` over stdio and `qa serve` over Streamable HTTP.

Both are separate processes over the seeds built with the bundled model, as an assistant
would start or reach them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp_types import CallToolResult, TextContent

from tests.helpers import qa_command, qa_env, qa_serve

pytestmark = [pytest.mark.anyio, pytest.mark.model]

QUESTION = "Why did India reject an Asian NATO?"
#: A cold `qa mcp` loads the model and opens the build before it answers (about 10 s here, shared cores).
START_SECONDS = 120


@pytest.fixture(scope="module")
def server(real_index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with qa_serve(real_index_dir, tmp_path_factory.mktemp("serve") / "serve.log") as base:
        yield base


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def text_of(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def markdown_of_qa_ask(index_dir: Path, question: str) -> str:
    """What `qa ask --format markdown` prints, run as a user runs it."""
    command = [qa_command(), "ask", question, "--index", str(index_dir), "--format", "markdown"]
    done = subprocess.run(command, env=qa_env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_qa_mcp_over_stdio_answers_with_the_real_model(real_index_dir: Path, server: str) -> None:
    parameters = StdioServerParameters(command=qa_command(), args=["mcp", "--index", str(real_index_dir)], env=qa_env())
    async with Client(parameters, read_timeout_seconds=START_SECONDS) as mcp:
        assert {t.name for t in (await mcp.list_tools()).tools} == {
            "ask",
            "get_passage",
            "cite",
            "verify_quotes",
            "list_documents",
        }
        result = await mcp.call_tool("ask", {"question": QUESTION, "k": 5})
        answer = structured(result)
        assert answer["grounded"]
        assert len(answer["results"]) == 5
        top = answer["results"][0]
        assert top["citation"]["doc_id"] == "001_3737cd750cfae74d"
        assert f"— {top['citation']['markdown']}" in text_of(result)
        # The same build and model as `qa serve` over the same index: the same answer.
        assert answer == httpx.get(f"{server}/ask", params={"q": QUESTION, "k": 5}, timeout=60).json()

        missing = await mcp.call_tool("get_passage", {"passage_id": "nope:000000000000"})
        assert missing.is_error
        assert text_of(missing).startswith("no passage 'nope:000000000000' in build")


async def test_qa_serve_answers_mcp_at_slash_mcp_as_get_ask_does(real_index_dir: Path, server: str) -> None:
    questions = [QUESTION, "What is strategic autonomy?", "Who proposed creating an Asian NATO?"]
    async with Client(f"{server}/mcp") as mcp:
        for question in questions:
            result = await mcp.call_tool("ask", {"question": question})
            rest = httpx.get(f"{server}/ask", params={"q": question}, timeout=60)
            assert rest.status_code == 200
            assert structured(result) == rest.json()

        draft = markdown_of_qa_ask(real_index_dir, QUESTION)
        report = structured(await mcp.call_tool("verify_quotes", {"text": draft}))
        assert report["unsupported"] == 0
        assert report["supported"] == len(report["quotes"]) == 5
        assert report == httpx.post(f"{server}/verify", json={"text": draft}, timeout=60).json()

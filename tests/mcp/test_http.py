"""/mcp in the HTTP app, over a real socket (uvicorn on 127.0.0.1), with the fake embedder.

The SDK's own client speaks Streamable HTTP to it; the app's middleware covers the route
like any other: the body limit, unknown routes, metrics; and it opens no admin route.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp_types import CallToolResult

from qa.config import Settings
from qa.server.app import create_app
from tests.helpers import FakeEmbedder, serve_in_thread

pytestmark = pytest.mark.anyio

QUESTION = "Why did India reject an Asian NATO?"
#: What a JSON-RPC POST to /mcp carries (the transport refuses a request that accepts less).
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@pytest.fixture
def base(built: Settings, fake_embedder: FakeEmbedder) -> Iterator[str]:
    with serve_in_thread(create_app(built, embedder=fake_embedder)) as url:
        yield url


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def assert_error_shape(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == status
    assert "Traceback" not in response.text


async def test_the_sdk_client_over_streamable_http_gets_what_get_ask_gets(base: str) -> None:
    async with Client(f"{base}/mcp") as mcp:
        tools = {t.name for t in (await mcp.list_tools()).tools}
        assert tools == {"ask", "get_passage", "cite", "verify_quotes", "list_documents"}
        result = await mcp.call_tool("ask", {"question": QUESTION, "k": 3})
        async with httpx.AsyncClient(base_url=base) as http:
            rest = await http.get("/ask", params={"q": QUESTION, "k": 3})
        assert structured(result) == rest.json()
        blank = await mcp.call_tool("ask", {"question": " "})
        assert blank.is_error
        assert blank.structured_content == {
            "error": {"status": 422, "code": "invalid_request", "message": "the question is empty"}
        }
        resources = (await mcp.list_resources()).resources
        assert len(resources) == 5


def test_the_body_limit_covers_mcp(base: str, built: Settings) -> None:
    big = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", '
    big += b'"params": {"name": "verify_quotes", "arguments": {"text": "'
    big += b"x" * built.max_body_bytes + b'"}}}'
    response = httpx.post(f"{base}/mcp", content=big, headers=MCP_HEADERS, timeout=10)
    assert_error_shape(response, 413)
    assert response.json()["error"]["code"] == "payload_too_large"


def test_unknown_routes_under_mcp_are_the_apis_404(base: str) -> None:
    for path in ("/mcp/tools", "/mcpx", "/mcp/../admin/reload", "/mcp/mcp"):
        response = httpx.post(f"{base}{path}", json={}, timeout=10)
        assert_error_shape(response, 404)
    # A trailing slash is handled as on every other route (the same redirect as /ask/).
    slash = httpx.post(f"{base}/mcp/", json={}, timeout=10)
    assert (slash.status_code, slash.headers.get("location")) == (307, f"{base}/mcp")
    assert httpx.post(f"{base}/ask/", json={}, timeout=10).status_code == 307


def test_a_wrong_method_on_mcp_is_the_apis_405(base: str) -> None:
    for method in ("GET", "DELETE", "PUT"):
        response = httpx.request(method, f"{base}/mcp", headers=MCP_HEADERS, timeout=10)
        assert_error_shape(response, 405)
        assert response.headers["allow"] == "POST"
        same = httpx.request(method, f"{base}/verify", timeout=10)
        assert response.json()["error"]["message"] == same.json()["error"]["message"]


def test_the_transports_own_refusals_are_in_the_one_error_shape(base: str) -> None:
    """A loopback server accepts only loopback Host and Origin headers (the SDK's DNS-rebinding guard)."""
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}
    for headers, status, message in (
        ({"host": "evil.example"}, 421, "Invalid Host header"),
        ({"origin": "http://evil.example"}, 403, "Invalid Origin header"),
    ):
        response = httpx.post(f"{base}/mcp", json=ping, headers={**MCP_HEADERS, **headers}, timeout=10)
        assert_error_shape(response, status)
        assert response.json()["error"]["message"] == message
    allowed = httpx.post(f"{base}/mcp", json=ping, headers={**MCP_HEADERS, "origin": base}, timeout=10)
    assert allowed.status_code < 400, allowed.text


def test_mcp_opens_no_admin_route_and_is_counted_by_the_metrics(base: str) -> None:
    assert_error_shape(httpx.post(f"{base}/admin/reload", timeout=10), 404)
    request = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}
    response = httpx.post(f"{base}/mcp", json=request, headers=MCP_HEADERS, timeout=10)
    assert response.status_code < 500, response.text
    metrics = httpx.get(f"{base}/metrics", timeout=10).text
    assert 'route="/mcp"' in metrics
    assert "/mcp" not in httpx.get(f"{base}/openapi.json", timeout=10).json()["paths"]


def test_the_app_is_made_without_importing_the_mcp_sdk(tmp_path: Any) -> None:
    """The SDK is 0.43 s of `qa serve`'s start: it is imported by the first /mcp request, not with the app."""
    code = (
        "import sys\n"
        "from qa.config import Settings\n"
        "from qa.server.app import create_app\n"
        f"create_app(Settings(index_dir={str(tmp_path)!r}))\n"
        "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith(('mcp.', 'mcp_types'))))\n"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert shown.stdout.strip() == "[]"

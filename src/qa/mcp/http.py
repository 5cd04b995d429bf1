"""The MCP server at ``/mcp`` of the HTTP app, over Streamable HTTP.

Mounted as one route of the FastAPI app (:func:`qa.server.app.create_app`), so the app's
middleware wraps it like any route: the body-size limit (413), the one error shape for
unknown routes (``/mcp/anything`` is a 404), CORS and metrics. The tools answer from the
app's own :class:`~qa.server.deps.AppState`: the same build, the same live reload.

Stateless with JSON responses: every POST carries one JSON-RPC request and gets its
answer as ``application/json``, so no session lives in the process between requests
(any replica can answer any request) and nothing streams. Only POST is served (with no
stream to open or session to end, GET and DELETE have nothing to do): another method is
the API's 405 with ``Allow: POST``. The transport's own plain-text refusals (a ``Host`` or
``Origin`` its DNS-rebinding guard rejects, a wrong content type) are sent in the API's
one error shape too; its JSON-RPC errors stay JSON-RPC, as MCP clients read them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from qa.server.deps import AppState
from qa.server.middleware import error_response

if TYPE_CHECKING:  # the MCP SDK is imported when /mcp is first asked, not when the app is made
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from qa.mcp.tools import QaMcpServer

log = logging.getLogger(__name__)

#: Where the MCP endpoint answers.
PATH = "/mcp"


class McpMount:
    """The ``/mcp`` route and the session manager behind it, run while the app's lifespan runs.

    The MCP SDK and the session manager start with the first ``/mcp`` request, not with the
    app: importing the SDK is 0.43 s of `qa serve`'s start (``python -X importtime``,
    docs/benchmarks.md), which every other route would otherwise wait for.
    """

    def __init__(self, state: AppState) -> None:
        self.state = state
        self._server: QaMcpServer | None = None
        self._manager: StreamableHTTPSessionManager | None = None
        self._route = Route(PATH, endpoint=self, include_in_schema=False)
        #: While the app runs: where the session manager runs, what stops it, one start at a time.
        self._tasks: TaskGroup | None = None
        self._stop = anyio.Event()
        self._starting = anyio.Lock()

    @property
    def server(self) -> QaMcpServer:
        """The MCP server answering from the app's state (made, and the SDK imported, on first use)."""
        if self._server is None:
            from qa.mcp.tools import create_mcp_server

            self._server = create_mcp_server(self.state)
        return self._server

    def route(self) -> Route:
        """The route to add to the app (every method reaches :meth:`__call__`, which answers 405 itself)."""
        return self._route

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Let ``/mcp`` be served while the app runs (a session manager runs once, so each run makes one)."""
        self._stop, self._starting = anyio.Event(), anyio.Lock()
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            try:
                yield
            finally:
                self._tasks = None
                self._stop.set()

    async def _started(self) -> StreamableHTTPSessionManager | None:
        """The running session manager, started by the first request; ``None`` when the app is not running."""
        async with self._starting:
            if self._manager is None and self._tasks is not None:
                ready = anyio.Event()
                self._tasks.start_soon(self._serve, ready)
                await ready.wait()
        return self._manager

    async def _serve(self, ready: anyio.Event) -> None:
        """Run a session manager until the app stops (a failure to start is logged; /mcp then answers 503)."""
        try:
            settings = self.state.settings
            self.server.streamable_http_app(
                streamable_http_path=PATH,
                json_response=True,
                stateless_http=True,
                max_request_body_size=settings.max_body_bytes,
                host=settings.host,
            )
            manager = self.server.session_manager
            async with manager.run():
                self._manager = manager
                ready.set()
                await self._stop.wait()
        except Exception:
            log.exception("the MCP endpoint could not start")
        finally:
            self._manager = None
            ready.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # FastAPI's routes name themselves in the scope and a plain route does not: the metrics
        # count requests by this route template (the router shares the scope dict with them).
        scope["route"] = self._route
        if scope.get("method") != "POST":
            message = "Method Not Allowed"  # the words of the API's other 405s (Starlette's)
            await error_response(405, None, message, headers={"Allow": "POST"})(scope, receive, send)
            return
        manager = self._manager or await self._started()
        if manager is None:  # between shut-down and start-up, or it could not start
            await error_response(503, "unavailable", "the MCP endpoint is not running")(scope, receive, send)
            return
        await manager.handle_request(scope, receive, _in_the_error_shape(scope, receive, send))


def _in_the_error_shape(scope: Scope, receive: Receive, send: Send) -> Send:
    """``send``, with an error response that is not JSON replaced by the one error shape (its text the message)."""
    held: Message | None = None
    body: list[bytes] = []

    async def replace(message: Message) -> None:
        nonlocal held
        if message["type"] == "http.response.start":
            content_type = dict(message.get("headers") or []).get(b"content-type", b"")
            if message["status"] >= 400 and not content_type.startswith(b"application/json"):
                held = message
                return
        elif message["type"] == "http.response.body" and held is not None:
            body.append(message.get("body", b""))
            if not message.get("more_body", False):
                text = b"".join(body).decode("utf-8", "replace").strip() or "the request cannot be handled"
                await error_response(held["status"], None, text[:200])(scope, receive, send)
            return
        await send(message)

    return replace

"""``qa mcp``: the MCP server over stdio, for an assistant that starts it as a subprocess.

The process holds the same state as ``qa serve`` (:func:`qa.server.deps.serving`: the model,
the live build, the reload watcher), started inside the SDK's stdio transport, which points
file descriptor 1 at stderr while it serves, so nothing the model or a library prints can
corrupt the protocol on stdout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from qa.config import Settings
from qa.embedding.base import Embedder
from qa.mcp.tools import QaMcpServer, create_mcp_server
from qa.server.deps import AppState, serving


def stdio_server(settings: Settings, embedder: Embedder | None = None) -> QaMcpServer:
    """The MCP server over ``settings``, starting and stopping its state when it runs."""
    state = AppState(settings=settings)

    @asynccontextmanager
    async def lifespan(_: object) -> AsyncIterator[None]:
        async with serving(state, embedder):
            yield

    return create_mcp_server(state, lifespan)


def run_stdio(settings: Settings) -> None:
    """Serve MCP on stdin and stdout until the client closes them."""
    anyio.run(stdio_server(settings).run_stdio_async)

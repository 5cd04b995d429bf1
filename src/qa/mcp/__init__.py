"""Serve qa to AI assistants over the Model Context Protocol (a thin face, like :mod:`qa.server`).

The tools (:mod:`qa.mcp.tools`) answer from the same live build, searcher, citations and
quote checks as the HTTP API (:class:`~qa.server.deps.AppState`); only the transport differs:

- ``qa mcp --index index`` serves over stdio, for an assistant that starts it (:mod:`qa.mcp.stdio`);
- ``qa serve`` answers at ``/mcp`` over Streamable HTTP in the same process as the REST API
  (:mod:`qa.mcp.http`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_mcp_server"]


def __getattr__(name: str) -> Any:
    # The tools import the MCP SDK (0.4 s): only when asked for, so `qa serve` starts without it.
    if name == "create_mcp_server":
        from qa.mcp.tools import create_mcp_server

        return create_mcp_server
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The MCP tests run on anyio's pytest plugin, on asyncio (the loop uvicorn and the SDK use here)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

"""The commands that serve a build: ``qa serve`` (HTTP, with MCP at /mcp) and ``qa mcp`` (stdio).

Both refuse to start without a live build; the servers themselves live in
:mod:`qa.server` and :mod:`qa.mcp`.
"""

from __future__ import annotations

from typing import Any

import click

from qa.cli.commands import command_settings, main
from qa.cli.options import MAX_RELOAD_INTERVAL, index_option, model_options, setting_help, setting_range
from qa.config import Settings
from qa.errors import QAError
from qa.service import Service, store_location


def require_build(settings: Settings) -> None:
    """Exit with the store's message unless it has a live build to serve."""
    location = store_location(settings)
    try:
        location.current_build_id()
    except QAError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        location.close()


@main.command()
@index_option
@model_options
@click.option("--host", help=setting_help("host"))
@click.option("--port", type=setting_range("port"), help=setting_help("port"))
@click.option(
    "--reload-interval",
    type=setting_range("reload_interval", MAX_RELOAD_INTERVAL),
    help=setting_help("reload_interval"),
)
@click.option("--inference-threads", type=setting_range("inference_threads"), help=setting_help("inference_threads"))
def serve(host: str | None, port: int | None, **options: Any) -> None:
    """Serve an existing index over HTTP (OpenAPI docs at /docs).

    A new build (``qa build`` in another shell) is picked up within the reload
    interval; requests in flight finish on the old one. Health at /healthz and
    /readyz, Prometheus metrics at /metrics. See docs/operations.md.

    \b
    qa serve --index index --host 127.0.0.1 --port 8000
    curl '127.0.0.1:8000/ask?q=Who+proposed+an+Asian+NATO%3F&k=3'
    QA_ADMIN_TOKEN=... qa serve   # enables POST /admin/reload
    """
    settings = command_settings(host=host, port=port, **options)
    require_build(settings)
    # The model loads on a thread of its own while the web server's modules import.
    service = Service.from_settings(settings, serving=True)
    service.load_soon()
    import uvicorn

    from qa.server.app import create_app

    uvicorn.run(create_app(settings, service=service), host=settings.host, port=settings.port, log_level="info")


@main.command("mcp")
@index_option
@model_options
@click.option(
    "--reload-interval",
    type=setting_range("reload_interval", MAX_RELOAD_INTERVAL),
    help=setting_help("reload_interval"),
)
@click.option("--inference-threads", type=setting_range("inference_threads"), help=setting_help("inference_threads"))
def mcp_command(**options: Any) -> None:
    """Serve an existing index to an AI assistant over MCP (stdio).

    The assistant starts this command and talks JSON-RPC on its stdin and stdout; logs go
    to stderr. The tools (ask, get_passage, cite, verify_quotes, list_documents) answer as
    the HTTP API does, from the same live build; `qa serve` answers MCP at /mcp too.

    \b
    qa mcp --index index
    {"command": "/path/to/.venv/bin/qa", "args": ["mcp", "--index", "/path/to/index"]}  # in an assistant's config
    """
    from qa.mcp.stdio import run_stdio

    settings = command_settings(**options)
    require_build(settings)
    run_stdio(settings)

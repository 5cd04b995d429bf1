"""The HTTP API: :func:`create_app` wires the middleware, the error handlers and the routers.

Every error a client can see has one JSON shape (see :mod:`qa.server.middleware`)::

    {"error": {"status": 422, "code": "invalid_request", "message": "...", "details": [...]}}

and no traceback, file path or SQL ever reaches a client. The build being served is
held by a :class:`~qa.server.live.LiveIndex`, which swaps in a new build between requests;
the routes (one module per concern in :mod:`qa.server.routes`) reach it through
:func:`~qa.server.deps.live_searcher`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from qa import __version__
from qa.config import Settings
from qa.embedding.base import Embedder
from qa.mcp.http import McpMount
from qa.server.deps import AppState, serving
from qa.server.errors import install_qa_error_handlers
from qa.server.metrics import MetricsMiddleware
from qa.server.middleware import BodyGuard, error_responses, install_error_handlers, reject_unknown_query_parameters
from qa.server.routes import admin, ask, documents, health, page, passages, verify
from qa.service import Service

#: Errors every route may answer with (index routes add 404 and 503).
_EVERY_ROUTE = error_responses(405, 413, 422, 500)


def create_app(settings: Settings, embedder: Embedder | None = None, service: Service | None = None) -> FastAPI:
    """The service over ``settings.index_dir``. The model is loaded and the index opened at start-up.

    ``embedder`` replaces the encoder the settings name (tests pass a fake one); ``service`` is
    one already made for ``settings`` (``qa serve`` starts its model loading early). A
    watcher thread reopens the index when CURRENT names a new build (see :mod:`qa.server.live`).
    The MCP server (:mod:`qa.mcp`) answers at ``/mcp`` over Streamable HTTP, from the same
    state, behind the same middleware (body limit, error shape, metrics).
    """
    state = AppState(settings=settings)
    state.metrics.watch(lambda: state.live, lambda: state.batcher)
    mcp = McpMount(state)
    app = FastAPI(
        title="qa",
        version=__version__,
        summary="Ranked, verbatim, cited passages from a folder of articles.",
        lifespan=_lifespan(state, embedder, mcp, service),
        responses=_EVERY_ROUTE,
        dependencies=[Depends(reject_unknown_query_parameters)],
    )
    app.state.qa = state
    app.state.mcp = mcp
    install_error_handlers(app)
    install_qa_error_handlers(app)
    # Added innermost first: metrics see every response, CORS headers go on errors too.
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    for module in (ask, passages, verify, page, documents, health):
        app.include_router(module.routes(state))
    page.mount_static(app)
    app.router.routes.append(mcp.route())
    if settings.admin_token is not None and settings.admin_token.get_secret_value():
        app.include_router(admin.routes(state, settings.admin_token.get_secret_value()))
    return app


def _lifespan(
    state: AppState, embedder: Embedder | None, mcp: McpMount, service: Service | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start-up (the model, the build, the watcher, the /mcp endpoint) and shut-down, reversed."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with serving(state, embedder, service), mcp.running():
            yield

    return lifespan

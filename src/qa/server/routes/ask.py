"""GET and POST /ask: one request model (:class:`~qa.server.schemas.AskRequest`) for both."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from qa.search.models import Answer
from qa.search.retrieval import Searcher
from qa.server.deps import AppState, Live
from qa.server.middleware import error_responses
from qa.server.schemas import AskQuery, AskRequest

_ERRORS = error_responses(404, 422, 503)


def answer(live: Searcher, request: AskRequest, default_k: int) -> Answer:
    return live.ask(
        request.question, request.k or default_k, mode=request.mode, filters=request.filters(), group=request.group
    )


def routes(state: AppState) -> APIRouter:
    """The two /ask routes; ``k`` defaults to the settings' ``default_k`` (read once, here).

    The routes are ``async`` and hand the search to a worker thread themselves: FastAPI then
    checks the returned Answer on the event loop instead of in a second worker-thread hop,
    as it does for a plain ``def`` route (measured: docs/benchmarks.md, issue 16 target 2).
    """
    default_k = state.settings.default_k
    router = APIRouter()

    @router.get("/ask", response_model=Answer, responses=_ERRORS, summary="Ask a question (query string)")
    async def ask_get(live: Live, query: Annotated[AskQuery, Query()]) -> Answer:
        return await run_in_threadpool(answer, live, query, default_k)

    @router.post("/ask", response_model=Answer, responses=_ERRORS, summary="Ask a question (JSON body)")
    async def ask_post(live: Live, body: AskRequest) -> Answer:
        return await run_in_threadpool(answer, live, body, default_k)

    return router

"""POST /verify: is each quote a verbatim span of an article, and where (or what is closest)."""

from __future__ import annotations

from fastapi import APIRouter

from qa.citations.verify import VerifyReport
from qa.server.deps import AppState, Live
from qa.server.middleware import error_responses
from qa.server.schemas import VerifyRequest


def routes(state: AppState) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/verify",
        response_model=VerifyReport,
        responses=error_responses(404, 422, 503),
        summary="Check quotes: is each a verbatim span of an article, and where (or what is closest)",
    )
    def verify(live: Live, body: VerifyRequest) -> VerifyReport:
        return state.verifiers.get(live.store).verify(body.text)

    return router

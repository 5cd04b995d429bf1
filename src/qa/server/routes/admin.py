"""POST /admin/reload, which exists only when an admin token is configured."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from qa.errors import IndexStoreError, ModelError
from qa.server.deps import AppState, public_reason
from qa.server.middleware import error_response, error_responses
from qa.server.schemas import Reloaded

_bearer = HTTPBearer(auto_error=False, description="The token in QA_ADMIN_TOKEN.")


def routes(state: AppState, token: str) -> APIRouter:
    """The admin routes, guarded by ``token`` (compared in constant time)."""
    expected = token.encode("utf-8")
    router = APIRouter()

    @router.post(
        "/admin/reload",
        response_model=Reloaded,
        responses=error_responses(401, 409, 503),
        summary="Switch to the build CURRENT names now",
    )
    def admin_reload(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Reloaded | JSONResponse:
        given = credentials.credentials.encode("utf-8") if credentials is not None else b""
        if not hmac.compare_digest(given, expected):
            return error_response(
                401, "unauthorized", "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        if state.live is None:
            return error_response(503, "unavailable", state.not_ready_reason())
        try:
            result = state.live.reload()
        except (IndexStoreError, ModelError) as exc:
            return error_response(409, "conflict", f"the new build cannot be served: {public_reason(exc)}")
        return Reloaded(reloaded=result.changed, build_id=result.build_id, previous_build_id=result.previous_build_id)

    return router

"""Everything between the socket and a route: the one error shape, request limits, catch-alls.

Every error a client can see has one JSON shape::

    {"error": {"status": 422, "code": "invalid_request", "message": "...", "details": [...]}}

whether it comes from a route, from validation, from routing (404, 405 with ``Allow``),
from :class:`BodyGuard` (413, and 422 for a body that is not UTF-8) or from an
unexpected exception (500, traceback in the server log only). No traceback, file path
or SQL text ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

#: The ``code`` of each HTTP status this service sends.
CODES = {
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid_request",
    500: "internal_error",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


def error_response(
    status: int,
    code: str | None = None,
    message: str = "",
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one error shape, as a response."""
    detail = ErrorDetail(status=status, code=code or CODES.get(status, "http_error"), message=message, details=details)
    return JSONResponse(ErrorBody(error=detail).model_dump(exclude_none=True), status_code=status, headers=headers)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` declaring the error shape for each status."""
    descriptions = {
        401: "Missing or wrong bearer token.",
        404: "Unknown id or route.",
        405: "Method not allowed on this route (see the Allow header).",
        409: "The new build cannot be opened; the old one keeps serving.",
        413: "Request body too large.",
        422: "Invalid question, parameters or body.",
        500: "Unexpected error (details in the server log only).",
        503: "No usable index is open, or the model is not loaded.",
    }
    return {s: {"model": ErrorBody, "description": descriptions[s]} for s in statuses}


def _describe(detail: dict[str, Any]) -> str:
    if detail["type"] == "json_invalid":
        return "the request body is not valid JSON"
    return f"{'.'.join(detail['loc'])}: {detail['msg']}"


def install_error_handlers(app: FastAPI) -> None:
    """Validation, routing and unexpected errors in the one shape."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "loc": [str(part) for part in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
            for err in exc.errors()
        ]
        message = "; ".join(_describe(d) for d in details) or "invalid request"
        return error_response(422, "invalid_request", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        message = str(exc.detail) if status in CODES else "the request cannot be handled"
        return error_response(status, None, message, headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the server log; the client learns only that it happened.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "internal error")


async def reject_unknown_query_parameters(request: Request) -> None:
    """An app-wide dependency: a query parameter the route does not declare is a 422.

    ``async`` because it never blocks: FastAPI runs a sync dependency on its thread pool,
    a hop that cost every request a few hundred microseconds.

    The declared names are read from the app's own OpenAPI schema, so parameters added
    to a route later are accepted without touching this function.
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    allowed = _declared_query_names(request.app, route.path_format, request.method)
    if allowed is None:
        return
    unknown = sorted(set(request.query_params.keys()) - allowed)
    if unknown:
        raise RequestValidationError(
            [
                {"type": "extra_forbidden", "loc": ("query", name), "msg": "unknown query parameter"}
                for name in unknown[:10]
            ]
        )


def _declared_query_names(app: FastAPI, path: str, method: str) -> frozenset[str] | None:
    cache: dict[tuple[str, str], frozenset[str] | None] | None = getattr(app.state, "query_names", None)
    if cache is None:
        cache = app.state.query_names = {}
    key = (path, method.lower())
    if key not in cache:
        operation = app.openapi().get("paths", {}).get(path, {}).get(key[1])
        if operation is None:
            cache[key] = None
        else:
            names = (p["name"] for p in operation.get("parameters", []) if p.get("in") == "query")
            cache[key] = frozenset(names)
    return cache[key]


class BodyGuard:
    """Reads the request body before the app does: 413 above ``max_bytes``, 422 if not UTF-8.

    The limit holds for chunked bodies without a Content-Length too, since the bytes are
    counted as they arrive; a declared Content-Length over the limit is refused before
    anything is read. The body (at most ``max_bytes``) is then replayed to the app.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            response = error_response(422, "invalid_request", "the request body is not valid UTF-8")
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "payload_too_large",
            f"the request body is larger than {self.max_bytes} bytes",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

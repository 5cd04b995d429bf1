"""The library's errors mapped to HTTP statuses and the one error shape: here and nowhere else.

:func:`error_detail` is the mapping; the HTTP handlers send it as the response body and the
MCP tools (:mod:`qa.mcp`) return it as a tool error, so both faces say the same words.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from qa.errors import IndexStoreError, InvalidQueryError, ModelError, NotFoundError, PassageNotFoundError, QAError
from qa.server.deps import ServiceUnavailable, public_reason
from qa.server.middleware import CODES, ErrorDetail, error_response

log = logging.getLogger(__name__)


def error_detail(exc: QAError | ServiceUnavailable) -> ErrorDetail:
    """404 for what does not exist, 422 for a bad question, 503 for a store or model that cannot answer."""
    if isinstance(exc, ServiceUnavailable):
        return _detail(503, str(exc))
    if isinstance(exc, PassageNotFoundError) and exc.doc_id is not None:
        details = [{"doc_id": exc.doc_id, "document": f"/documents/{exc.doc_id}"}]
        return _detail(404, str(exc), details)
    if isinstance(exc, NotFoundError):
        return _detail(404, str(exc))
    if isinstance(exc, InvalidQueryError):
        return _detail(422, str(exc))
    if isinstance(exc, IndexStoreError | ModelError):
        log.error("cannot answer: %s", exc)
        return _detail(503, public_reason(exc))
    log.error("unexpected qa error", exc_info=exc)
    return _detail(500, "internal error")


def _detail(status: int, message: str, details: list[dict[str, str]] | None = None) -> ErrorDetail:
    return ErrorDetail(status=status, code=CODES[status], message=message, details=list(details or []) or None)


def install_qa_error_handlers(app: FastAPI) -> None:
    """The library's errors (and :class:`ServiceUnavailable`) as responses in the one shape."""

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(request: Request, exc: ServiceUnavailable) -> JSONResponse:
        return _respond(error_detail(exc))

    @app.exception_handler(QAError)
    async def qa_error(request: Request, exc: QAError) -> JSONResponse:
        return _respond(error_detail(exc))


def _respond(detail: ErrorDetail) -> JSONResponse:
    return error_response(detail.status, detail.code, detail.message, detail.details)

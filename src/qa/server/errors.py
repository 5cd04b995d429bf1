"""The library's errors mapped to HTTP statuses: here and nowhere else."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from qa.errors import IndexStoreError, InvalidQueryError, ModelError, NotFoundError, PassageNotFoundError, QAError
from qa.server.deps import ServiceUnavailable, public_reason
from qa.server.middleware import error_response

log = logging.getLogger(__name__)


def install_qa_error_handlers(app: FastAPI) -> None:
    """404 for what does not exist, 422 for a bad question, 503 for a store or model that cannot answer."""

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(request: Request, exc: ServiceUnavailable) -> JSONResponse:
        return error_response(503, "unavailable", str(exc))

    @app.exception_handler(QAError)
    async def qa_error(request: Request, exc: QAError) -> JSONResponse:
        if isinstance(exc, PassageNotFoundError) and exc.doc_id is not None:
            details = [{"doc_id": exc.doc_id, "document": f"/documents/{exc.doc_id}"}]
            return error_response(404, "not_found", str(exc), details)
        if isinstance(exc, NotFoundError):
            return error_response(404, "not_found", str(exc))
        if isinstance(exc, InvalidQueryError):
            return error_response(422, "invalid_request", str(exc))
        if isinstance(exc, IndexStoreError | ModelError):
            log.error("cannot answer: %s", exc)
            return error_response(503, "unavailable", public_reason(exc))
        log.error("unexpected qa error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "internal error")

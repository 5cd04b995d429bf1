"""The HTTP API: routes, request and response models, and error mapping; nothing else.

Every error a client can see has one JSON shape::

    {"error": {"status": 422, "code": "invalid_request", "message": "...", "details": [...]}}

and no traceback, file path or SQL ever reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from qa import __version__
from qa.chunking import ChunkerConfig
from qa.citations import DocumentSummary, DocumentView, PassageView, resolve_document, resolve_passage, summarize
from qa.config import MAX_K, MAX_QUESTION_CHARS, Settings
from qa.embedding import Embedder, SentenceTransformerEmbedder
from qa.errors import (
    IndexMismatchError,
    IndexNotFoundError,
    IndexStoreError,
    InvalidQueryError,
    ModelError,
    NotFoundError,
    QAError,
)
from qa.indexing import expected_identity
from qa.search import Answer, Searcher
from qa.store import Index

log = logging.getLogger(__name__)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, examples=["Why did India reject an Asian NATO?"])
    k: int = Field(5, ge=1, le=MAX_K, description="How many passages to return.")


class DocumentList(BaseModel):
    documents: list[DocumentSummary]
    count: int


class Health(BaseModel):
    status: str
    build_id: str | None = None
    model: str | None = None
    passages: int | None = None
    documents: int | None = None


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown id."},
    422: {"model": ErrorBody, "description": "Invalid question or parameters."},
    503: {"model": ErrorBody, "description": "No usable index is open."},
}


@dataclass
class _State:
    """What the app holds for its lifetime: set up once at start-up."""

    settings: Settings
    embedder: Embedder | None = None
    searcher: Searcher | None = None
    error: str | None = None


def live_searcher(request: Request) -> Searcher:
    """The dependency every index route uses: the app's open searcher, or a 503."""
    state: _State = request.app.state.qa
    if state.searcher is None:
        raise ServiceUnavailable(state.error or "the service is not ready")
    return state.searcher


# At module level: with postponed annotations FastAPI resolves a route's annotations in
# the module's globals, so an alias defined inside create_app would not be found and
# ``live`` would silently become a required query parameter.
Live = Annotated[Searcher, Depends(live_searcher)]


def public_reason(exc: QAError) -> str:
    """Why the service cannot answer, without the paths the full message names (those go to the log)."""
    if isinstance(exc, IndexNotFoundError):
        return "no index has been built yet: run `qa build`"
    if isinstance(exc, IndexMismatchError):
        return (
            "the index was built with another model, dimension, chunker or format version: rebuild it with `qa build`"
        )
    if isinstance(exc, IndexStoreError):
        return "the index files are damaged or inconsistent: rebuild it with `qa build`"
    if isinstance(exc, ModelError):
        return "the embedding model cannot be loaded: check QA_MODEL"
    return "the service is not ready"


def create_app(settings: Settings, embedder: Embedder | None = None) -> FastAPI:
    """The service over ``settings.index_dir``. The index and the model are opened once, at start-up.

    ``embedder`` replaces the sentence-transformers model (tests pass a fake one).
    """
    state = _State(settings=settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = embedder is None
        model: Embedder = embedder or SentenceTransformerEmbedder(settings.model, settings.batch_size)
        state.embedder = model
        try:
            config = ChunkerConfig(settings.max_tokens, settings.overlap_sentences)
            index = Index.open(settings.index_dir, expected_identity(model, config))
            state.searcher = Searcher(index, model)
            log.info("serving build %s (%d passages)", index.build_id, index.passage_count)
        except (IndexStoreError, ModelError) as exc:
            state.error = public_reason(exc)
            log.error("no index to serve: %s", exc)
        try:
            yield
        finally:
            if state.searcher is not None:
                state.searcher.index.close()
            if owned and isinstance(model, SentenceTransformerEmbedder):
                model.close()

    app = FastAPI(
        title="qa",
        version=__version__,
        summary="Ranked, verbatim, cited passages from a folder of articles.",
        lifespan=lifespan,
    )
    app.state.qa = state
    _install_error_handlers(app)

    @app.get("/ask", response_model=Answer, responses=_ERRORS, summary="Ask a question (query string)")
    def ask_get(
        live: Live,
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUESTION_CHARS, description="The question.")],
        k: Annotated[int | None, Query(ge=1, le=MAX_K, description="How many passages to return.")] = None,
    ) -> Answer:
        return live.ask(q, k or settings.default_k)

    @app.post("/ask", response_model=Answer, responses=_ERRORS, summary="Ask a question (JSON body)")
    def ask_post(live: Live, body: AskRequest) -> Answer:
        return live.ask(body.question, body.k)

    @app.get("/passages/{passage_id}", response_model=PassageView, responses=_ERRORS)
    def get_passage(live: Live, passage_id: str) -> PassageView:
        return resolve_passage(live.index, passage_id)

    @app.get("/documents", response_model=DocumentList, responses=_ERRORS)
    def list_documents(live: Live) -> DocumentList:
        documents = [summarize(d) for d in live.index.documents()]
        return DocumentList(documents=documents, count=len(documents))

    @app.get("/documents/{doc_id}", response_model=DocumentView, responses=_ERRORS)
    def get_document(live: Live, doc_id: str) -> DocumentView:
        return resolve_document(live.index, doc_id)

    @app.get("/healthz", response_model=Health, responses={503: {"model": ErrorBody, "description": "Not ready."}})
    def healthz() -> JSONResponse:
        if state.searcher is None:
            return _error(503, "unavailable", state.error or "the service is not ready")
        index = state.searcher.index
        health = Health(
            status="ok",
            build_id=index.build_id,
            model=str(index.manifest["model"]["name"]),
            passages=index.passage_count,
            documents=len(index.documents()),
        )
        return JSONResponse(health.model_dump())

    return app


class ServiceUnavailable(Exception):
    """Raised by the dependency when no index is open; its message is already public."""


def _error(status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(status=status, code=code, message=message, details=details))
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status)


def _describe(detail: dict[str, Any]) -> str:
    if detail["type"] == "json_invalid":
        return "the request body is not valid JSON"
    return f"{'.'.join(detail['loc'])}: {detail['msg']}"


def _install_error_handlers(app: FastAPI) -> None:
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
        return _error(422, "invalid_request", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        response = _error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(request: Request, exc: ServiceUnavailable) -> JSONResponse:
        return _error(503, "unavailable", str(exc))

    @app.exception_handler(QAError)
    async def qa_error(request: Request, exc: QAError) -> JSONResponse:
        if isinstance(exc, NotFoundError):
            return _error(404, "not_found", str(exc))
        if isinstance(exc, InvalidQueryError):
            return _error(422, "invalid_request", str(exc))
        if isinstance(exc, IndexStoreError | ModelError):
            log.error("cannot answer: %s", exc)
            return _error(503, "unavailable", public_reason(exc))
        log.exception("unexpected qa error")
        return _error(500, "internal_error", "internal error")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal_error", "internal error")

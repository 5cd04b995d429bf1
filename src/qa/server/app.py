"""The HTTP API: routes, request and response models, and error mapping; nothing else.

Every error a client can see has one JSON shape (see :mod:`qa.server.middleware`)::

    {"error": {"status": 422, "code": "invalid_request", "message": "...", "details": [...]}}

and no traceback, file path or SQL ever reaches a client. The build being served is
held by a :class:`~qa.server.live.LiveIndex`, which swaps in a new build between requests.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from qa import __version__
from qa.citations.cite import DocumentSummary, DocumentView, PassageView, resolve_document, resolve_passage, summarize
from qa.citations.formats import MEDIA_TYPES, CiteFormat, bibtex_entry, csl_item
from qa.citations.verify import VerifierCache, VerifyReport
from qa.config import MAX_K, MAX_QUESTION_CHARS, Settings
from qa.embedding.base import Embedder, InferenceThread, SentenceTransformerEmbedder
from qa.embedding.batching import MicroBatcher
from qa.embedding.onnx import make_encoder
from qa.errors import (
    IndexMismatchError,
    IndexNotFoundError,
    IndexStoreError,
    InvalidQueryError,
    ModelError,
    NotFoundError,
    PassageNotFoundError,
    QAError,
)
from qa.index.filters import Filters
from qa.index.pipeline import expected_identity
from qa.ingest.chunking import ChunkerConfig
from qa.search.models import Answer, Mode
from qa.search.retrieval import Searcher
from qa.server.live import LiveIndex, NotServing
from qa.server.metrics import Metrics, MetricsMiddleware
from qa.server.middleware import (
    BodyGuard,
    error_response,
    error_responses,
    install_error_handlers,
    reject_unknown_query_parameters,
)

log = logging.getLogger(__name__)


_MODE_HELP = "dense (embeddings), lexical (BM25) or hybrid (both, fused; the best measured)."
_GROUP_HELP = "Fold passages of other articles that report the same statement into one result (also_reported_in)."
_DATE = r"^\d{4}-\d{2}-\d{2}$"


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, examples=["Why did India reject an Asian NATO?"])
    k: int = Field(5, ge=1, le=MAX_K, description="How many passages to return.")
    mode: Mode = Field("hybrid", description=_MODE_HELP)
    group: bool = Field(True, description=_GROUP_HELP)
    doc_id: list[str] | None = Field(None, description="Only these documents.")
    author: str | None = Field(None, min_length=1, description="Only articles whose author contains this name.")
    outlet: str | None = Field(None, min_length=1, description="Only articles from this outlet.")
    published_from: str | None = Field(
        None, pattern=_DATE, description="Only articles published on or after (YYYY-MM-DD)."
    )
    published_to: str | None = Field(
        None, pattern=_DATE, description="Only articles published on or before (YYYY-MM-DD)."
    )

    def filters(self) -> Filters:
        doc_ids = tuple(self.doc_id) if self.doc_id else None
        return Filters(doc_ids, self.author, self.outlet, self.published_from, self.published_to)


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1,
        description="One quote, or a Markdown draft: its quoted sentences (5 words or more) and > block quotes.",
        examples=["Jaishankar said that India has “no intention” of joining — “India does not see the need”."],
    )


class DocumentList(BaseModel):
    documents: list[DocumentSummary]
    count: int


class Health(BaseModel):
    """Liveness: always 200 while the process runs; ``status`` says whether it can answer."""

    status: str = Field(description='"ok" when a build is open and the model loaded, else "not_ready".')
    build_id: str | None = None
    model: str | None = None
    passages: int | None = None
    documents: int | None = None
    reason: str | None = Field(default=None, description="Why the service is not ready, and what fixes it.")


class Ready(BaseModel):
    """Readiness: the build being served and the model answering."""

    status: str = "ready"
    build_id: str
    model: str
    passages: int
    documents: int


class Reloaded(BaseModel):
    reloaded: bool = Field(description="False when CURRENT already named the build being served.")
    build_id: str
    previous_build_id: str | None


STATIC_DIR = Path(__file__).parent / "static"
#: The web page loads nothing from anywhere but this server.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_CITE_CONTENT: dict[str, Any] = {
    MEDIA_TYPES["markdown"].split(";")[0]: {"schema": {"type": "string"}},
    MEDIA_TYPES["text"].split(";")[0]: {"schema": {"type": "string"}},
    MEDIA_TYPES["csl-json"]: {"schema": {"type": "array", "items": {"type": "object"}}},
    MEDIA_TYPES["bibtex"].split(";")[0]: {"schema": {"type": "string"}},
}

#: Errors of the routes that read the index (the app adds 405, 413, 422 and 500 to every route).
_ERRORS = error_responses(404, 422, 503)
_EVERY_ROUTE = error_responses(405, 413, 422, 500)


@dataclass
class _State:
    """What the app holds for its lifetime: set up once at start-up."""

    settings: Settings
    embedder: Embedder | None = None
    batcher: MicroBatcher | None = None
    live: LiveIndex | None = None
    #: Why there is no LiveIndex at all (the model did not load).
    error: str | None = None

    def not_ready_reason(self) -> str:
        if self.error:
            return self.error
        if self.live is not None and self.live.error is not None:
            return public_reason(self.live.error)
        return "the service is not ready"


async def live_searcher(request: Request) -> AsyncIterator[Searcher]:
    """The dependency every index route uses: a lease on the open build for the request, or a 503.

    The lease is returned after the route, so a reload never closes a build under a request.
    ``async`` because taking and returning a lease never blocks (a counter under a lock):
    as a sync generator FastAPI would run its two halves on the thread pool, two hops per
    request.
    """
    state: _State = request.app.state.qa
    if state.live is None:
        raise ServiceUnavailable(state.not_ready_reason())
    try:
        lease = state.live.acquire()
    except NotServing:
        raise ServiceUnavailable(state.not_ready_reason()) from None
    try:
        yield lease.searcher
    finally:
        lease.release()


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
    """The service over ``settings.index_dir``. The model is loaded and the index opened at start-up.

    ``embedder`` replaces the sentence-transformers model (tests pass a fake one). A
    watcher thread reopens the index when CURRENT names a new build (see :mod:`qa.server.live`).
    """
    state = _State(settings=settings)
    metrics = Metrics()
    metrics.watch(lambda: state.live, lambda: state.batcher)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = embedder is None
        model: Embedder = embedder or make_encoder(
            settings.model, settings.query_encoder, settings.batch_size, settings.inference_threads
        )
        state.embedder = model
        try:
            await run_in_threadpool(_start, state, model, owned)
        except ModelError as exc:
            state.error = public_reason(exc)
            log.error("cannot load the model: %s", exc)
        try:
            yield
        finally:
            if state.live is not None:
                state.live.close()
            if state.batcher is not None:
                state.batcher.close()
            if owned and isinstance(model, InferenceThread):
                model.close()

    app = FastAPI(
        title="qa",
        version=__version__,
        summary="Ranked, verbatim, cited passages from a folder of articles.",
        lifespan=lifespan,
        responses=_EVERY_ROUTE,
        dependencies=[Depends(reject_unknown_query_parameters)],
    )
    app.state.qa = state
    install_error_handlers(app)
    _install_qa_error_handlers(app)
    # Added innermost first: metrics see every response, CORS headers go on errors too.
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.get("/ask", response_model=Answer, responses=_ERRORS, summary="Ask a question (query string)")
    def ask_get(
        live: Live,
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUESTION_CHARS, description="The question.")],
        k: Annotated[int | None, Query(ge=1, le=MAX_K, description="How many passages to return.")] = None,
        mode: Annotated[Mode, Query(description=_MODE_HELP)] = "hybrid",
        group: Annotated[bool, Query(description=_GROUP_HELP)] = True,
        doc_id: Annotated[list[str] | None, Query(description="Only this document (repeatable).")] = None,
        author: Annotated[str | None, Query(min_length=1, description="Only articles by this author.")] = None,
        outlet: Annotated[str | None, Query(min_length=1, description="Only articles from this outlet.")] = None,
        published_from: Annotated[str | None, Query(pattern=_DATE, description="On or after (YYYY-MM-DD).")] = None,
        published_to: Annotated[str | None, Query(pattern=_DATE, description="On or before (YYYY-MM-DD).")] = None,
    ) -> Answer:
        filters = Filters(tuple(doc_id) if doc_id else None, author, outlet, published_from, published_to)
        return live.ask(q, k or settings.default_k, mode=mode, filters=filters, group=group)

    @app.post("/ask", response_model=Answer, responses=_ERRORS, summary="Ask a question (JSON body)")
    def ask_post(live: Live, body: AskRequest) -> Answer:
        return live.ask(body.question, body.k, mode=body.mode, filters=body.filters(), group=body.group)

    @app.get("/passages/{passage_id}", response_model=PassageView, responses=_ERRORS)
    def get_passage(live: Live, passage_id: str) -> PassageView:
        return resolve_passage(live.index, passage_id)

    @app.get(
        "/passages/{passage_id}/cite",
        response_class=Response,
        responses={200: {"description": "The citation in the format asked.", "content": _CITE_CONTENT}, **_ERRORS},
        summary="A passage's citation as Markdown, plain text, CSL-JSON or BibTeX",
    )
    def cite_passage(
        live: Live,
        passage_id: str,
        fmt: Annotated[
            CiteFormat,
            Query(alias="format", description="markdown, text, csl-json (CSL 1.0.2 data) or bibtex (@article)."),
        ] = "markdown",
    ) -> Response:
        view = resolve_passage(live.index, passage_id)
        if fmt == "markdown":
            body = view.citation.markdown
        elif fmt == "text":
            body = view.citation.formatted
        elif fmt == "csl-json":
            body = json.dumps([csl_item(view)], ensure_ascii=False, indent=2)
        else:
            body = bibtex_entry(view)
        return Response(body, media_type=MEDIA_TYPES[fmt])

    verifiers = VerifierCache()

    @app.post(
        "/verify",
        response_model=VerifyReport,
        responses=_ERRORS,
        summary="Check quotes: is each a verbatim span of an article, and where (or what is closest)",
    )
    def verify(live: Live, body: VerifyRequest) -> VerifyReport:
        return verifiers.get(live.index).verify(body.text)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The web page: ask, read the passages, copy citations, open the article."""
        return FileResponse(
            STATIC_DIR / "index.html",
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/documents", response_model=DocumentList, responses=_ERRORS)
    def list_documents(live: Live) -> DocumentList:
        documents = [summarize(d) for d in live.index.documents()]
        return DocumentList(documents=documents, count=len(documents))

    @app.get("/documents/{doc_id}", response_model=DocumentView, responses=_ERRORS)
    def get_document(live: Live, doc_id: str) -> DocumentView:
        return resolve_document(live.index, doc_id)

    @app.get("/healthz", response_model=Health, summary="Liveness: 200 whenever the process runs")
    def healthz() -> Health:
        index = state.live.current() if state.live is not None else None
        if index is None:
            return Health(status="not_ready", reason=state.not_ready_reason())
        return Health(
            status="ok",
            build_id=index.build_id,
            model=index.manifest.model.name,
            passages=index.passage_count,
            documents=len(index.documents()),
        )

    @app.get(
        "/readyz",
        response_model=Ready,
        responses=error_responses(503),
        summary="Readiness: 200 only with an index open and the model loaded",
    )
    def readyz(live: Live) -> Ready:
        index = live.index
        return Ready(
            build_id=index.build_id,
            model=index.manifest.model.name,
            passages=index.passage_count,
            documents=len(index.documents()),
        )

    @app.get("/metrics", include_in_schema=False)
    def metrics_page() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    if settings.admin_token is not None and settings.admin_token.get_secret_value():
        _add_admin_routes(app, state, settings.admin_token.get_secret_value())

    return app


def _start(state: _State, model: Embedder, owned: bool) -> None:
    """Load the model, open the build CURRENT names and start watching for new ones."""
    settings = state.settings
    if owned and isinstance(model, SentenceTransformerEmbedder):
        model.set_threads(settings.inference_threads)
    config = ChunkerConfig.from_settings(settings)
    expected = expected_identity(model, config)  # the first model call: loads it
    state.batcher = MicroBatcher(model, settings.batch_wait_ms / 1000, settings.max_batch)
    live = LiveIndex(settings.index_dir, state.batcher, expected)
    live.open()
    index = live.current()
    if index is not None:
        log.info("serving build %s (%d passages)", index.build_id, index.passage_count)
    live.start_watching(settings.reload_interval)
    state.live = live


_bearer = HTTPBearer(auto_error=False, description="The token in QA_ADMIN_TOKEN.")


def _add_admin_routes(app: FastAPI, state: _State, token: str) -> None:
    """POST /admin/reload, which exists only when an admin token is configured."""
    expected = token.encode("utf-8")

    @app.post(
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


class ServiceUnavailable(Exception):
    """Raised by the dependency when no index is open; its message is already public."""


def _install_qa_error_handlers(app: FastAPI) -> None:
    """The library's errors, mapped to HTTP statuses (here and nowhere else)."""

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

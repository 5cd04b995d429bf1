"""What a serving process holds for its lifetime, how it starts and stops, and the lease on the live build.

Both faces that serve a live index use this: the HTTP app (:func:`qa.server.app.create_app`,
through the dependency :func:`live_searcher`) and the MCP server (:mod:`qa.mcp`, over
stdio or mounted at ``/mcp`` in the same app), so they answer from the same build,
reload together and report "not ready" in the same words.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from qa.citations.verify import VerifierCache
from qa.config import Settings
from qa.embedding.base import Embedder
from qa.embedding.batching import MicroBatcher
from qa.errors import (
    IndexMismatchError,
    IndexNotFoundError,
    IndexStoreError,
    ModelError,
    QAError,
    StoreUnavailableError,
)
from qa.index.protocol import PassageStore
from qa.search.retrieval import Searcher
from qa.server.live import Lease, LiveIndex, NotServing
from qa.server.metrics import Metrics
from qa.service import Service

log = logging.getLogger(__name__)


@dataclass
class AppState:
    """Set up once at start-up (see :func:`qa.server.app.create_app`), read by every route."""

    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    verifiers: VerifierCache = field(default_factory=VerifierCache)
    service: Service | None = None
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

    def current(self) -> PassageStore | None:
        """The open build, for its figures (queries take a lease through :func:`live_searcher`)."""
        return self.live.current() if self.live is not None else None


class ServiceUnavailable(Exception):
    """Raised when no index is open; its message is already public."""


@asynccontextmanager
async def serving(
    state: AppState, embedder: Embedder | None = None, service: Service | None = None
) -> AsyncIterator[None]:
    """Start-up (the model, the build, the watcher) and shut-down, in that order reversed.

    ``embedder`` replaces the encoder the settings name (tests pass a fake one); ``service``,
    one already made for these settings (``qa serve`` makes it early, to load the model while
    the server imports). A model that cannot load leaves the state not ready (``state.error``)
    rather than failing.
    """
    if service is None:
        service = Service.from_settings(state.settings, query_encoder=embedder, serving=True)
    state.service = service
    try:
        await run_in_threadpool(_start, state, service)
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
        service.close()


def _start(state: AppState, service: Service) -> None:
    """Load the model, open the build CURRENT names and start watching for new ones."""
    settings = state.settings
    expected = service.expected  # the first model call: loads it
    state.batcher = MicroBatcher(service.query_encoder, settings.batch_wait_ms / 1000, settings.max_batch)
    live = LiveIndex(service.location, state.batcher, expected)
    live.open()
    index = live.current()
    if index is not None:
        log.info("serving build %s (%d passages)", index.build_id, index.passage_count)
    live.start_watching(settings.reload_interval)
    state.live = live


def acquire(state: AppState) -> Lease:
    """A lease on the open build (release it exactly once), or :class:`ServiceUnavailable`."""
    if state.live is None:
        raise ServiceUnavailable(state.not_ready_reason())
    try:
        return state.live.acquire()
    except NotServing:
        raise ServiceUnavailable(state.not_ready_reason()) from None


@contextmanager
def leased(state: AppState) -> Iterator[Searcher]:
    """The live searcher for the length of a ``with`` block (the MCP tools' lease)."""
    lease = acquire(state)
    try:
        yield lease.searcher
    finally:
        lease.release()


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.qa
    return state


async def live_searcher(request: Request) -> AsyncIterator[Searcher]:
    """The dependency every index route uses: a lease on the open build for the request, or a 503.

    The lease is returned after the route, so a reload never closes a build under a request.
    ``async`` because taking and returning a lease never blocks (a counter under a lock):
    as a sync generator FastAPI would run its two halves on the thread pool, two hops per
    request.
    """
    lease = acquire(state_of(request))
    try:
        yield lease.searcher
    finally:
        lease.release()


# At module level: with postponed annotations FastAPI resolves a route's annotations in
# the module's globals, so an alias defined inside a function would not be found and
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
    if isinstance(exc, StoreUnavailableError):
        return "the database holding the index cannot be reached; try again shortly"
    if isinstance(exc, IndexStoreError):
        return "the index files are damaged or inconsistent: rebuild it with `qa build`"
    if isinstance(exc, ModelError):
        return "the embedding model cannot be loaded: check QA_MODEL"
    return "the service is not ready"

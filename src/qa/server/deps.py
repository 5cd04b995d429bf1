"""What the app holds for its lifetime, and the one dependency that yields the live searcher."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from qa.citations.verify import VerifierCache
from qa.config import Settings
from qa.embedding.batching import MicroBatcher
from qa.errors import IndexMismatchError, IndexNotFoundError, IndexStoreError, ModelError, QAError
from qa.index.protocol import PassageStore
from qa.search.retrieval import Searcher
from qa.server.live import LiveIndex, NotServing
from qa.server.metrics import Metrics
from qa.service import Service


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
    """Raised by the dependency when no index is open; its message is already public."""


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
    state = state_of(request)
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
    if isinstance(exc, IndexStoreError):
        return "the index files are damaged or inconsistent: rebuild it with `qa build`"
    if isinstance(exc, ModelError):
        return "the embedding model cannot be loaded: check QA_MODEL"
    return "the service is not ready"

"""Micro-batching: questions that arrive together are encoded in one model call.

:class:`MicroBatcher` wraps an :class:`~qa.embedding.Embedder` and is one itself, so a
:class:`~qa.search.Searcher` uses it unchanged. Each ``embed_batch`` call joins a queue;
one collector thread takes the first waiting call, waits up to ``wait_seconds`` for
others (taking whatever else is already queued in any case), encodes all of them in one
call to the wrapped embedder and hands every caller its rows. Under load, questions
that queue while the model is busy go into the next batch; alone, a question waits at
most ``wait_seconds``. The wrapped embedder still runs every model call on its own
inference thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence

import numpy as np

from qa.embedding import Embedder, Vectors

log = logging.getLogger(__name__)


class _Job:
    __slots__ = ("done", "error", "result", "texts")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.done = threading.Event()
        self.result: Vectors | None = None
        self.error: BaseException | None = None


class MicroBatcher:
    """An embedder that coalesces concurrent ``embed_batch`` calls into one call of ``inner``."""

    def __init__(self, inner: Embedder, wait_seconds: float = 0.002, max_batch: int = 64) -> None:
        self.inner = inner
        self.wait_seconds = wait_seconds
        self.max_batch = max_batch
        #: Model calls made, and texts encoded by them (their ratio is the mean batch size).
        self.batches = 0
        self.texts = 0
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._collect, name="qa-batcher", daemon=True)
        self._thread.start()

    # -- the Embedder protocol, delegated -----------------------------------------------

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def revision(self) -> str:
        return self.inner.revision

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def max_seq_length(self) -> int:
        return self.inner.max_seq_length

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        if not texts or self._closed:
            return self.inner.embed_batch(texts)
        job = _Job(list(texts))
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        if job.result is None:  # pragma: no cover - the collector always sets one or the other
            raise RuntimeError("the batcher returned nothing")
        return job.result

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the collector after the calls already queued."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _collect(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            size = len(first.texts)
            deadline = time.monotonic() + self.wait_seconds
            stop = False
            while size < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                jobs.append(job)
                size += len(job.texts)
            self._run(jobs)
            if stop:
                return

    def _run(self, jobs: list[_Job]) -> None:
        texts = [text for job in jobs for text in job.texts]
        try:
            vectors = self.inner.embed_batch(texts)
        except BaseException as exc:  # every caller gets the model's error, re-raised on its own thread
            for job in jobs:
                job.error = exc
                job.done.set()
            return
        self.batches += 1
        self.texts += len(texts)
        start = 0
        for job in jobs:
            job.result = np.ascontiguousarray(vectors[start : start + len(job.texts)])
            start += len(job.texts)
            job.done.set()

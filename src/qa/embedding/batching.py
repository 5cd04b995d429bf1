"""Micro-batching: questions that arrive together are encoded in one model call.

:class:`MicroBatcher` wraps an :class:`~qa.embedding.base.Embedder` and is one itself, so a
:class:`~qa.search.retrieval.Searcher` uses it unchanged. Each ``embed_batch`` call queues its
texts and asks the model's own inference thread to *drain* the queue: the first drain
that runs takes every question waiting (up to ``max_batch``), encodes them in one call
and hands each caller its rows; later drains find their questions already answered and
return at once. So questions that queue while the model is busy go into the next batch,
and a question costs one thread hop, not two. Under load (the last batch held more than
one question) a drain first waits up to ``wait_seconds`` for others to join; a lone
question never waits.

The embedder's inference thread is used when it has one (it is an
:class:`~qa.embedding.base.InferenceThread`, as the sentence-transformers and ONNX embedders
are); otherwise the batcher runs drains on a thread of its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

from qa.embedding.base import Embedder, InferenceThread, Vectors, embed_soon
from qa.embedding.identity import ModelIdentity
from qa.embedding.spans import Spans

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
        self._queue: deque[_Job] = deque()
        self._arrived = threading.Condition()
        self._last_batch_jobs = 1
        self._closed = False
        # The model's own thread when it has one; otherwise a thread of the batcher's own.
        self._thread = inner if isinstance(inner, InferenceThread) else _BatcherThread()

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

    def identity(self) -> ModelIdentity:
        return self.inner.identity()

    def embed_with_spans(self, texts: Sequence[str], spans: Sequence[Spans]) -> tuple[Vectors, list[Vectors]]:
        """Builds, not questions, ask for sentence spans: straight to the model, unbatched."""
        return self.inner.embed_with_spans(texts, spans)

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        return self.embed_soon(texts)()

    def embed_soon(self, texts: Sequence[str]) -> Callable[[], Vectors]:
        """Queue ``texts`` and start a drain on the model's thread; call what is returned for the vectors."""
        if not texts or self._closed:
            return embed_soon(self.inner, texts)
        job = _Job(list(texts))
        with self._arrived:
            self._queue.append(job)
            self._arrived.notify()
        drained = self._thread.soon_on_inference_thread(self._drain)

        def result() -> Vectors:
            # Returns once the queue has been drained past this job, by this drain or an earlier one.
            drained()
            job.done.wait()
            if job.error is not None:
                raise job.error
            if job.result is None:  # pragma: no cover - a drain always sets one or the other
                raise RuntimeError("the batcher returned nothing")
            return job.result

        return result

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Send later calls straight to the model; calls already queued are answered first."""
        if self._closed:
            return
        self._closed = True
        if isinstance(self._thread, _BatcherThread):
            self._thread.close()

    def _drain(self) -> None:
        """Encode everything queued, a batch at a time (runs on the model's thread, one drain at a time)."""
        while True:
            with self._arrived:
                if not self._queue:
                    return
                if self._last_batch_jobs > 1 and self.wait_seconds > 0:
                    deadline = time.monotonic() + self.wait_seconds
                    while self._queued_texts() < self.max_batch and (left := deadline - time.monotonic()) > 0:
                        self._arrived.wait(left)
                jobs = [self._queue.popleft()]
                size = len(jobs[0].texts)
                while self._queue and size + len(self._queue[0].texts) <= self.max_batch:
                    jobs.append(self._queue.popleft())
                    size += len(jobs[-1].texts)
                self._last_batch_jobs = len(jobs)
            self._run(jobs)

    def _queued_texts(self) -> int:
        return sum(len(job.texts) for job in self._queue)

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


class _BatcherThread(InferenceThread):
    """The batcher's own drain thread, for a model that brings none (fakes in tests)."""

    def __init__(self) -> None:
        super().__init__("qa-batcher")

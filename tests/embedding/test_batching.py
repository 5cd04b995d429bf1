"""Micro-batching: concurrent questions share model calls and each gets exactly its own vectors."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from qa.embedding.base import SentenceTransformerEmbedder, Vectors
from qa.embedding.batching import MicroBatcher
from tests.helpers import FakeEmbedder


class SlowEmbedder(FakeEmbedder):
    """A fake model that takes 20 ms per call and records its batch sizes and threads."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.threads: set[str] = set()

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(len(texts))
        self.threads.add(threading.current_thread().name)
        time.sleep(0.02)
        return super().embed_batch(texts)


QUESTIONS = [f"question number {i} about India and the Quad" for i in range(32)]


def test_concurrent_questions_are_coalesced_and_each_gets_its_own_rows() -> None:
    inner = SlowEmbedder()
    batcher = MicroBatcher(inner, wait_seconds=0.005, max_batch=64)
    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda q: batcher.embed_batch([q]), QUESTIONS))
    finally:
        batcher.close()
    expected = FakeEmbedder().embed_batch(QUESTIONS)
    for row, result in zip(expected, results, strict=True):
        assert result.shape == (1, 64)
        np.testing.assert_array_equal(result[0], row)
    assert sum(inner.calls) == len(QUESTIONS)
    assert len(inner.calls) < len(QUESTIONS) / 2, inner.calls
    assert inner.threads == {"qa-batcher_0"}
    assert (batcher.batches, batcher.texts) == (len(inner.calls), len(QUESTIONS))


def test_a_batch_never_exceeds_max_batch_by_more_than_one_call() -> None:
    inner = SlowEmbedder()
    batcher = MicroBatcher(inner, wait_seconds=0.01, max_batch=4)
    try:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda q: batcher.embed_batch([q]), QUESTIONS))
    finally:
        batcher.close()
    assert max(inner.calls) <= 4


def test_multi_text_calls_keep_their_rows_together() -> None:
    batcher = MicroBatcher(FakeEmbedder(), wait_seconds=0.005)
    try:
        with ThreadPoolExecutor(4) as pool:
            groups = [QUESTIONS[i : i + 3] for i in range(0, 12, 3)]
            results = list(pool.map(batcher.embed_batch, groups))
    finally:
        batcher.close()
    for group, result in zip(groups, results, strict=True):
        np.testing.assert_array_equal(result, FakeEmbedder().embed_batch(group))


def test_a_model_error_reaches_every_caller_of_the_batch() -> None:
    class Broken(FakeEmbedder):
        broken = True

        def embed_batch(self, texts: Sequence[str]) -> Vectors:
            if self.broken:
                raise RuntimeError("model fell over")
            return super().embed_batch(texts)

    inner = Broken()
    batcher = MicroBatcher(inner, wait_seconds=0.005)
    try:
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(batcher.embed_batch, [q]) for q in QUESTIONS[:4]]
            for future in futures:
                with pytest.raises(RuntimeError, match="fell over"):
                    future.result()
        # The collector survives and serves again once the model does.
        inner.broken = False
        assert batcher.embed_batch(["x"]).shape == (1, 64)
    finally:
        batcher.close()


def test_no_wait_still_batches_what_queued_while_the_model_was_busy() -> None:
    inner = SlowEmbedder()
    batcher = MicroBatcher(inner, wait_seconds=0.0)
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda q: batcher.embed_batch([q]), QUESTIONS[:16]))
    finally:
        batcher.close()
    assert len(inner.calls) < 16


def test_after_close_calls_go_straight_to_the_model() -> None:
    inner = SlowEmbedder()
    batcher = MicroBatcher(inner)
    batcher.close()
    batcher.close()  # idempotent
    assert batcher.embed_batch(["x"]).shape == (1, 64)
    assert inner.threads == {threading.current_thread().name}
    assert batcher.name == inner.name
    assert batcher.dimension == inner.dimension
    assert batcher.count_tokens(["a b"]) == inner.count_tokens(["a b"])


@pytest.mark.model
def test_with_the_real_model_every_encode_runs_on_the_inference_thread_and_batching_keeps_vectors(
    real_embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = real_embedder._loaded()
    original = model.encode
    threads: list[str] = []

    def recording_encode(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "encode", recording_encode)
    batcher = MicroBatcher(real_embedder, wait_seconds=0.005)
    try:
        with ThreadPoolExecutor(8) as pool:
            batched = list(pool.map(lambda q: batcher.embed_batch([q]), QUESTIONS[:16]))
    finally:
        batcher.close()
    assert set(threads) == {"qa-inference_0"}
    assert len(threads) < 16
    alone = real_embedder.embed_batch(QUESTIONS[:16])
    for row, result in zip(alone, batched, strict=True):
        assert float(row @ result[0]) > 0.9999  # padding in a batch moves vectors by rounding only


def test_a_lone_question_does_not_wait_for_company() -> None:
    inner = SlowEmbedder()
    batcher = MicroBatcher(inner, wait_seconds=0.5)
    try:
        t0 = time.perf_counter()
        for question in QUESTIONS[:3]:
            batcher.embed_batch([question])
        elapsed = time.perf_counter() - t0
    finally:
        batcher.close()
    # Three 20 ms model calls, never the 0.5 s wait: the wait applies only under load.
    assert inner.calls == [1, 1, 1]
    assert elapsed < 0.5, elapsed


def test_under_load_the_wait_gathers_a_fuller_batch() -> None:
    inner = SlowEmbedder()
    batcher = MicroBatcher(inner, wait_seconds=0.05, max_batch=8)
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda q: batcher.embed_batch([q]), QUESTIONS[:16]))
            list(pool.map(lambda q: batcher.embed_batch([q]), QUESTIONS[16:]))
    finally:
        batcher.close()
    assert sum(inner.calls) == len(QUESTIONS)
    assert max(inner.calls) <= 8
    assert len(inner.calls) <= 8, inner.calls

"""Prometheus metrics for one app, in its own registry (never the global one).

Requests are counted and timed per route *template* (``/passages/{passage_id}``, not
the raw path), so a client cannot grow the label set; requests no route matched are
labelled ``<unmatched>``. The index figures are read from the :class:`~qa.server.live.LiveIndex`
when scraped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.embedding.batching import MicroBatcher
from qa.server.live import LiveIndex

UNMATCHED = "<unmatched>"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


class Metrics:
    """The registry of one app and the metrics recorded into it."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "qa_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "qa_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )

    def watch(self, live: Callable[[], LiveIndex | None], batcher: Callable[[], MicroBatcher | None]) -> None:
        """Report the live index (and the batcher) at every scrape."""
        self.registry.register(_ServingCollector(live, batcher))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ServingCollector(Collector):
    def __init__(self, live: Callable[[], LiveIndex | None], batcher: Callable[[], MicroBatcher | None]) -> None:
        self._live = live
        self._batcher = batcher

    def collect(self) -> Iterable[Metric]:
        live = self._live()
        index = live.current() if live is not None else None
        passages = GaugeMetricFamily("qa_index_passages", "Passages in the build being served (0 when none).")
        passages.add_metric([], index.passage_count if index is not None else 0)
        yield passages
        if index is not None:
            info = InfoMetricFamily("qa_build", "The build being served.")
            info.add_metric([], {"build_id": index.build_id, "model": index.manifest.model.name})
            yield info
            seconds = index.manifest.build_seconds
            if seconds is not None:
                duration = GaugeMetricFamily(
                    "qa_build_duration_seconds", "How long the build being served took to make (from its manifest)."
                )
                duration.add_metric([], float(seconds))
                yield duration
        reloads = CounterMetricFamily("qa_reloads", "Switches to a new build, by result.", labels=["result"])
        reloads.add_metric(["success"], live.reloads_ok if live is not None else 0)
        reloads.add_metric(["failure"], live.reloads_failed if live is not None else 0)
        yield reloads
        batcher = self._batcher()
        if batcher is not None:
            batches = CounterMetricFamily(
                "qa_embed_batches",
                "Model calls made for questions.",
            )
            batches.add_metric([], batcher.batches)
            yield batches
            texts = CounterMetricFamily(
                "qa_embed_texts",
                "Questions encoded (texts / batches = mean batch size).",
            )
            texts.add_metric([], batcher.texts)
            yield texts


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = str(scope.get("method", ""))
            method = method if method in _METHODS else "OTHER"
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)

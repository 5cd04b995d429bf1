"""Liveness (/healthz, always 200) and readiness (/readyz, 200 only when answering); /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from qa.index.protocol import PassageStore
from qa.server.deps import AppState, Live
from qa.server.middleware import error_responses
from qa.server.schemas import Health, Ready


def figures(index: PassageStore) -> dict[str, Any]:
    """What both probes report about the build being served."""
    return {
        "build_id": index.build_id,
        "model": index.manifest.model.name,
        "passages": index.passage_count,
        "documents": len(index.documents()),
        "skipped": len((index.manifest.corpus or {}).get("skipped") or []),
    }


def routes(state: AppState) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", response_model=Health, summary="Liveness: 200 whenever the process runs")
    def healthz() -> Health:
        index = state.current()
        if index is None:
            return Health(status="not_ready", reason=state.not_ready_reason())
        return Health(status="ok", **figures(index))

    @router.get(
        "/readyz",
        response_model=Ready,
        responses=error_responses(503),
        summary="Readiness: 200 only with an index open and the model loaded",
    )
    def readyz(live: Live) -> Ready:
        return Ready(**figures(live.store))

    @router.get("/metrics", include_in_schema=False)
    def metrics_page() -> Response:
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    return router

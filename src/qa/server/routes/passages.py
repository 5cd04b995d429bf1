"""A passage by id, and its citation in each format."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from qa.citations.cite import PassageView, resolve_passage
from qa.citations.formats import MEDIA_TYPES, CiteFormat, render_citation
from qa.server.deps import AppState, Live
from qa.server.middleware import error_responses

router = APIRouter()

_ERRORS = error_responses(404, 422, 503)
_CITE_CONTENT: dict[str, Any] = {
    MEDIA_TYPES["markdown"].split(";")[0]: {"schema": {"type": "string"}},
    MEDIA_TYPES["text"].split(";")[0]: {"schema": {"type": "string"}},
    MEDIA_TYPES["csl-json"]: {"schema": {"type": "array", "items": {"type": "object"}}},
    MEDIA_TYPES["bibtex"].split(";")[0]: {"schema": {"type": "string"}},
}


@router.get("/passages/{passage_id}", response_model=PassageView, responses=_ERRORS)
def get_passage(live: Live, passage_id: str) -> PassageView:
    return resolve_passage(live.store, passage_id)


@router.get(
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
    view = resolve_passage(live.store, passage_id)
    return Response(render_citation(view, fmt), media_type=MEDIA_TYPES[fmt])


def routes(state: AppState) -> APIRouter:
    """The same router for every app: these routes read nothing but the live build."""
    return router

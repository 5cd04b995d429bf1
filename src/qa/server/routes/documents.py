"""The articles of the build being served."""

from __future__ import annotations

from fastapi import APIRouter

from qa.citations.cite import DocumentView, resolve_document, summarize
from qa.server.deps import AppState, Live
from qa.server.middleware import error_responses
from qa.server.schemas import DocumentList

router = APIRouter()

_ERRORS = error_responses(404, 422, 503)


@router.get("/documents", response_model=DocumentList, responses=_ERRORS)
def list_documents(live: Live) -> DocumentList:
    documents = [summarize(d) for d in live.store.documents()]
    return DocumentList(documents=documents, count=len(documents))


@router.get("/documents/{doc_id}", response_model=DocumentView, responses=_ERRORS)
def get_document(live: Live, doc_id: str) -> DocumentView:
    return resolve_document(live.store, doc_id)


def routes(state: AppState) -> APIRouter:
    """The same router for every app: these routes read nothing but the live build."""
    return router

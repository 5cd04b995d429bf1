"""The web page at / and its static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from qa.server.deps import AppState

STATIC_DIR = Path(__file__).parent.parent / "static"
#: The web page loads nothing from anywhere but this server.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

router = APIRouter()


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    """The web page: ask, read the passages, copy citations, open the article."""
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
    )


def mount_static(app: FastAPI) -> None:
    """/static (a mount: routers cannot carry one)."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def routes(state: AppState) -> APIRouter:
    """The same router for every app: these routes read nothing but the live build."""
    return router

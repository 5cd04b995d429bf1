"""Text out of saved web pages, PDFs and Word files: one extractor per format.

An extractor turns a file's bytes into an :class:`Extraction`: the text the build stores as
the document's text (every passage offset points into it), the metadata the file itself
declares, and for a PDF the page map (which ``[start, end)`` of the text each page holds).
The text has one paragraph or heading per line and a blank line between them, the shape
:func:`qa.ingest.cleaning.analyse` reads.

Each extractor has a name and a version (its library's version and qa's own rules'
version): both go into the manifest and the corpus fingerprint, so upgrading either
rebuilds instead of silently shifting offsets.

A file that cannot be extracted raises :class:`ExtractionError` with a reason a person can
act on (encrypted, no text layer, corrupt, too large, not the format its name says).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal, Protocol

from qa.errors import ExtractionError

__all__ = [
    "FORMATS",
    "Extraction",
    "ExtractionCache",
    "ExtractionError",
    "Extractor",
    "Format",
    "PageSpan",
    "check_kind",
    "extractor_for",
    "kind_of_text",
    "sniff",
]

Format = Literal["text", "html", "pdf", "docx"]
#: The format each file suffix is read as.
FORMATS: dict[str, Format] = {
    ".txt": "text",
    ".md": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}


@dataclass(frozen=True)
class PageSpan:
    """One page of a PDF: its 1-based number, its printed label and its ``[start, end)`` in the text."""

    page: int
    label: str
    start: int
    end: int

    def to_json(self) -> dict[str, int | str]:
        return {"page": self.page, "label": self.label, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Extraction:
    """What an extractor read from a file: its text, what the file says about itself, its pages."""

    text: str
    title: str | None = None
    author: str | None = None
    published: str | None = None
    url: str | None = None
    outlet: str | None = None
    pages: tuple[PageSpan, ...] = field(default=())

    def to_json(self) -> str:
        return json.dumps(
            {
                "text": self.text,
                "title": self.title,
                "author": self.author,
                "published": self.published,
                "url": self.url,
                "outlet": self.outlet,
                "pages": [[p.page, p.label, p.start, p.end] for p in self.pages],
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, raw: str) -> Extraction | None:
        """The extraction :meth:`to_json` wrote, or ``None`` when ``raw`` is not one."""
        try:
            data: dict[str, Any] = json.loads(raw)
            pages = tuple(PageSpan(int(n), str(label), int(s), int(e)) for n, label, s, e in data["pages"])
            text = data["text"]
            if not isinstance(text, str):
                return None
            meta = {k: data.get(k) for k in ("title", "author", "published", "url", "outlet")}
            return cls(text=text, pages=pages, **{k: v if isinstance(v, str) else None for k, v in meta.items()})
        except (ValueError, TypeError, KeyError):
            return None


class ExtractionCache(Protocol):
    """What was read from files, kept between builds by file hash and reader version: an unchanged file is
    read once. Extractions of web pages, PDFs and Word files; and whole read documents of every format
    (:meth:`qa.ingest.documents.Document.to_json`, by :func:`qa.ingest.documents.document_key`), so an
    unchanged file is neither opened, decoded nor cleaned again."""

    def get_extraction(self, key: str) -> Extraction | None: ...

    def put_extraction(self, key: str, extraction: Extraction) -> None: ...

    def get_documents(self, keys: Sequence[str]) -> dict[str, str]:
        """The stored documents' JSON found for ``keys``, by key."""
        ...

    def put_documents(self, items: Mapping[str, str]) -> None:
        """Store documents' JSON by key."""
        ...


def library_version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:  # pragma: no cover - every extractor's library is a dependency
        return "missing"


@dataclass(frozen=True)
class Extractor:
    """A format's extractor: ``extract(data)`` and the identity recorded in manifests."""

    format: Format
    library: str
    #: qa's own rules on top of the library (bump when they change what text comes out).
    rules: int
    extract: Callable[[bytes], Extraction]

    @property
    def name(self) -> str:
        return f"qa-{self.format}"

    @property
    def version(self) -> str:
        return f"{self.rules}+{self.library}-{library_version(self.library)}"

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}

    def cache_key(self, sha256: str) -> str:
        """What an extraction of a file is kept under: the file's bytes and this extractor's version."""
        return f"{self.name}:{self.version}:{sha256}"

    def read(self, data: bytes) -> Extraction:
        """``extract(data)``, with any failure of the library on a malformed file as an :class:`ExtractionError`
        (a file that breaks a parser is skipped like any other bad file, never stops a build)."""
        try:
            return self.extract(data)
        except ExtractionError:
            raise
        except (MemoryError, RecursionError) as exc:
            raise ExtractionError(f"the file is too large or too nested to read ({type(exc).__name__})") from None
        except Exception as exc:
            raise ExtractionError(f"{self.library} could not read the file ({type(exc).__name__}: {exc})") from None


def extractor_for(fmt: Format) -> Extractor | None:
    """The extractor of a format (``None`` for plain text, which is read as it is)."""
    if fmt == "html":
        from qa.ingest.extract import html

        return Extractor("html", "trafilatura", html.RULES_VERSION, html.extract)
    if fmt == "pdf":
        from qa.ingest.extract import pdf

        return Extractor("pdf", "pypdfium2", pdf.RULES_VERSION, pdf.extract)
    if fmt == "docx":
        from qa.ingest.extract import docx

        return Extractor("docx", "python-docx", docx.RULES_VERSION, docx.extract)
    return None


def sniff(data: bytes) -> str | None:
    """What the bytes are by their first bytes: ``"pdf"``, ``"zip"``, ``"html"`` or ``None`` (unknown, maybe text)."""
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"%PDF-") or b"%PDF-" in data[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    lowered = head[:512].lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<!--", b"<head", b"<meta", b"<?xml")):
        return "html"
    return None


_KIND_NAMES = {"pdf": "a PDF", "zip": "a ZIP archive (a .docx or other Office file?)", "html": "an HTML page"}


def check_kind(fmt: Format, data: bytes) -> None:
    """:class:`ExtractionError` when the bytes are plainly another format than the file name says."""
    kind = sniff(data)
    expected = {"pdf": "pdf", "docx": "zip", "html": "html"}.get(fmt)
    if fmt == "html":
        if kind in ("pdf", "zip"):
            raise ExtractionError(f"the file is named as HTML but is {_KIND_NAMES[kind]}")
        return
    if expected is not None and kind != expected:
        found = _KIND_NAMES.get(kind or "", "not one (it does not start like one)")
        raise ExtractionError(f"the file is named as {fmt.upper()} but is {found}")


def kind_of_text(data: bytes) -> str | None:
    """For a .txt/.md file: the binary format it really is, when its first bytes say so."""
    kind = sniff(data)
    return _KIND_NAMES[kind] if kind in ("pdf", "zip") else None

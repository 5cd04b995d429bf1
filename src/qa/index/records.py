"""What a store returns for a passage or a document, whichever engine holds it.

A passage's ``position`` is its place in its build (1..n, documents in corpus order and passages
in reading order): the order that breaks score ties on every store.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from qa.ingest.extract import PageSpan


@dataclass(frozen=True)
class PassageRecord:
    """A passage as stored in a build."""

    #: The passage's place in the build (1..n, in reading order): what breaks score ties.
    position: int
    passage_id: str
    doc_id: str
    ordinal: int
    start: int
    end: int
    section: str | None
    n_tokens: int
    text: str


@dataclass(frozen=True)
class DocumentRecord:
    """A document as stored in a build, without its text."""

    doc_id: str
    source: str
    title: str
    author: str | None
    url: str | None
    published: str | None
    outlet: str | None
    sha256: str
    encoding: str
    n_passages: int
    #: ``text`` (.txt, .md), ``html``, ``pdf`` or ``docx``.
    format: str = "text"
    #: A PDF's pages: number, printed label and ``[start, end)`` in the document's text.
    pages: tuple[PageSpan, ...] = ()

    @classmethod
    def from_row(cls, row: Sequence[object]) -> DocumentRecord:
        """A record from ``SELECT DOCUMENT_COLUMNS, <passage count>``."""
        doc_id, source, title, author, url, published, outlet, sha256, encoding, fmt, pages, n_passages = row
        return cls(
            doc_id=str(doc_id),
            source=str(source),
            title=str(title),
            author=_optional(author),
            url=_optional(url),
            published=_optional(published),
            outlet=_optional(outlet),
            sha256=str(sha256),
            encoding=str(encoding),
            n_passages=int(n_passages),  # type: ignore[call-overload]
            format=str(fmt),
            pages=decode_pages(pages),
        )


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


def encode_pages(pages: Sequence[PageSpan]) -> str | None:
    return json.dumps([[p.page, p.label, p.start, p.end] for p in pages], ensure_ascii=False) if pages else None


def decode_pages(raw: object) -> tuple[PageSpan, ...]:
    if not isinstance(raw, str) or not raw:
        return ()
    return tuple(PageSpan(int(n), str(label), int(s), int(e)) for n, label, s, e in json.loads(raw))

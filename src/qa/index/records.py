"""What a store returns for a passage or a document, whichever engine holds it.

A passage's ``position`` is its place in its build (1..n, documents in corpus order and passages
in reading order): where the store finds it. Equal scores are ordered by passage id, never by
position (:func:`qa.index.protocol.best_first`), so a ranking survives a build laid out otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from qa.ingest.extract import PageSpan

#: A document's columns as both engines' SQL declares them (each engine adds its own around them).
DOCUMENT_TABLE_COLUMNS = """
    doc_id      TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    title       TEXT NOT NULL,
    author      TEXT,
    url         TEXT,
    published   TEXT,
    outlet      TEXT,
    sha256      TEXT NOT NULL,
    encoding    TEXT NOT NULL,
    format      TEXT NOT NULL,
    -- A PDF's page map as JSON: [[page, label, start, end], ...] into text; NULL for other formats.
    pages       TEXT,
    text        TEXT NOT NULL,
    cleaned     TEXT NOT NULL"""
#: A passage's columns as both engines' SQL declares them, after its position (1..n in the build).
PASSAGE_TABLE_COLUMNS = """
    passage_id TEXT NOT NULL,
    doc_id     TEXT NOT NULL,
    ordinal    INTEGER NOT NULL,
    start      INTEGER NOT NULL,
    "end"      INTEGER NOT NULL,
    section    TEXT,
    n_tokens   INTEGER NOT NULL,
    text       TEXT NOT NULL"""
#: A sentence's columns: its passage's position, ``[start, end)`` in the passage's text, its vector
#: (float32 bytes), keyed by (position, start).
SENTENCE_TABLE_COLUMNS = """
    position   INTEGER NOT NULL,
    start      INTEGER NOT NULL,
    "end"      INTEGER NOT NULL"""


@dataclass(frozen=True)
class PassageRecord:
    """A passage as stored in a build."""

    #: The passage's place in the build (1..n, in reading order); ties are broken by ``passage_id``.
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

"""Citations: where a passage comes from, as structured data and as strings to paste.

Also resolves the ids a client holds (a passage id from an earlier answer, a document
id) back to their text and citation.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from qa.errors import DocumentNotFoundError, InvalidQueryError, PassageNotFoundError
from qa.index.protocol import PassageStore
from qa.index.records import DocumentRecord, PassageRecord
from qa.ingest.extract import PageSpan


class Citation(BaseModel):
    """Where a passage comes from: ``[start, end)`` are character offsets into the source file."""

    doc_id: str
    title: str
    author: str | None
    source: str = Field(description="The file's path relative to the corpus folder.")
    start: int = Field(description="First character of the passage in the source text.")
    end: int = Field(description="One past the last character of the passage.")
    url: str | None = None
    published: str | None = None
    outlet: str | None = None
    page: str | None = Field(
        None,
        description=(
            "For a PDF: the printed label of the page the span starts on (its 1-based number when the file has "
            "no labels); None for other formats."
        ),
    )
    pages: list[str] | None = Field(None, description="For a PDF: the label of every page the span touches, in order.")
    formatted: str = Field(
        description="Plain text, ready to paste into a report (GET /passages/{id}/cite?format=text)."
    )
    markdown: str = Field(
        description="The same in Markdown, with a link when the URL is known (GET /passages/{id}/cite?format=markdown)."
    )


def cite(passage: PassageRecord, document: DocumentRecord) -> Citation:
    """The citation of a whole passage of ``document``."""
    return cite_span(document, passage.start, passage.end)


def pages_of(pages: Sequence[PageSpan], start: int, end: int) -> list[str]:
    """Labels of the pages ``[start, end)`` touches, in order (empty without a page map)."""
    return [p.label for p in pages if p.start < max(end, start + 1) and start < p.end]


def page_locator(pages: Sequence[str]) -> str:
    """``p. 12`` or ``pp. 12–13`` (first and last page), ``""`` without pages."""
    if not pages:
        return ""
    if len(pages) == 1:
        return f"p. {pages[0]}"
    return f"pp. {pages[0]}\u2013{pages[-1]}"


def cite_span(document: DocumentRecord, start: int, end: int) -> Citation:
    """The citation of ``source_text[start:end]`` of ``document`` (a passage, a sentence, a quote)."""
    pages = pages_of(document.pages, start, end)
    return Citation(
        doc_id=document.doc_id,
        title=document.title,
        author=document.author,
        source=document.source,
        start=start,
        end=end,
        url=document.url,
        published=document.published,
        outlet=document.outlet,
        page=pages[0] if pages else None,
        pages=pages or None,
        formatted=format_citation(document, start, end),
        markdown=format_citation(document, start, end, markdown=True),
    )


def format_citation(document: DocumentRecord, start: int, end: int, markdown: bool = False) -> str:
    """``Author, “Title”, Outlet, date (source.txt, chars 1204–1633)``; unknown parts left out.

    A PDF's citation ends with its pages: ``(report.pdf, chars 1204–1633), pp. 12–13``.
    """
    title = f"\u201c{document.title}\u201d"
    if markdown and document.url:
        title = f"[{title}]({document.url})"
    parts = [p for p in (document.author, title, document.outlet, document.published) if p]
    where = f"{document.source}, chars {start}\u2013{end}"
    if markdown:
        where = f"`{document.source}`, chars {start}\u2013{end}"
    pages = page_locator(pages_of(document.pages, start, end))
    return f"{', '.join(parts)} ({where})" + (f", {pages}" if pages else "")


class PassageView(BaseModel):
    """One passage with its citation and the ids of the passages around it."""

    passage_id: str
    text: str
    section: str | None
    ordinal: int = Field(description="Position of the passage in its document, from 0.")
    previous_id: str | None
    next_id: str | None
    citation: Citation


#: Most neighbouring passages :func:`passage_in_context` gives on each side: a passage holds at most
#: 96 tokens by default, so 5 a side is about 1,000 tokens, a page of the article; the whole article
#: is GET /documents/{doc_id} (or the MCP resource qa://documents/{doc_id}).
MAX_CONTEXT = 5


class PassageInContext(BaseModel):
    """A passage with up to ``context`` passages of its document before and after it, in reading order."""

    passage: PassageView
    before: list[PassageView] = Field(description="The passages just before it, in reading order.")
    after: list[PassageView] = Field(description="The passages just after it, in reading order.")


class DocumentSummary(BaseModel):
    """A document's metadata and how many passages it was cut into, without its text."""

    doc_id: str
    title: str
    author: str | None
    source: str
    url: str | None = None
    published: str | None = None
    outlet: str | None = None
    passages: int


class Page(BaseModel):
    """One page of a PDF: its 1-based number, printed label and ``[start, end)`` in the document's text."""

    page: int
    label: str
    start: int
    end: int


class DocumentView(DocumentSummary):
    """A document with its text, its text as cleaned for indexing, its pages and the ids of its passages."""

    format: str = Field("text", description="How the file was read: text (.txt, .md), html, pdf or docx.")
    text: str = Field(
        description=(
            "The text every offset points into: the file's text for .txt and .md, the extracted text for "
            "HTML, PDF and Word files."
        )
    )
    cleaned_text: str
    pages: list[Page] = Field(default_factory=list, description="A PDF's page map (empty for other formats).")
    passage_ids: list[str]


def resolve_passage(index: PassageStore, passage_id: str) -> PassageView:
    """The passage ``passage_id`` names in ``index``, with its citation and neighbours.

    Raises :class:`~qa.errors.PassageNotFoundError` (see :func:`passage_not_found`) for an id
    this build does not have.
    """
    found = index.passages([passage_id])
    passage = found[0] if found else None
    document = index.document(passage.doc_id) if passage else None
    if passage is None or document is None:
        raise passage_not_found(index, passage_id)
    return _view(passage, document, *index.neighbours(passage))


def passage_in_context(index: PassageStore, passage_id: str, context: int = 0) -> PassageInContext:
    """The passage ``passage_id`` names (as :func:`resolve_passage`) with ``context`` passages each side.

    ``context`` is 0 to :data:`MAX_CONTEXT` (:class:`~qa.errors.InvalidQueryError` otherwise);
    near the start or end of the document there are fewer.
    """
    if not 0 <= context <= MAX_CONTEXT:
        raise InvalidQueryError(f"context must be between 0 and {MAX_CONTEXT}, not {context}")
    view = resolve_passage(index, passage_id)
    if context == 0:
        return PassageInContext(passage=view, before=[], after=[])
    document = index.document(view.citation.doc_id)
    ordered = index.document_passages(view.citation.doc_id)
    at = next((i for i, p in enumerate(ordered) if p.passage_id == passage_id), None)
    if document is None or at is None:  # removed between the two reads
        raise passage_not_found(index, passage_id)

    def around(i: int) -> PassageView:
        before = ordered[i - 1].passage_id if i > 0 else None
        after = ordered[i + 1].passage_id if i + 1 < len(ordered) else None
        return _view(ordered[i], document, before, after)

    return PassageInContext(
        passage=view,
        before=[around(i) for i in range(max(0, at - context), at)],
        after=[around(i) for i in range(at + 1, min(len(ordered), at + 1 + context))],
    )


def _view(
    passage: PassageRecord, document: DocumentRecord, previous_id: str | None, next_id: str | None
) -> PassageView:
    return PassageView(
        passage_id=passage.passage_id,
        text=passage.text,
        section=passage.section,
        ordinal=passage.ordinal,
        previous_id=previous_id,
        next_id=next_id,
        citation=cite(passage, document),
    )


def passage_not_found(index: PassageStore, passage_id: str) -> PassageNotFoundError:
    """The error for an id no passage of this build has. Ids are ``doc_id:hash`` of the passage
    text, so an id from an earlier build resolves as long as that text is unchanged; when it is
    gone but its document is still indexed, the error names the document to look in."""
    doc_id = passage_id.rpartition(":")[0]
    if doc_id and index.document(doc_id) is not None:
        return PassageNotFoundError(
            f"no passage {passage_id!r} in build {index.build_id}: its text has changed or been removed; "
            f"its document is still here: /documents/{doc_id}",
            doc_id=doc_id,
        )
    return PassageNotFoundError(f"no passage {passage_id!r} in build {index.build_id}")


def summarize(document: DocumentRecord) -> DocumentSummary:
    """A stored document as a :class:`DocumentSummary`."""
    return DocumentSummary(
        doc_id=document.doc_id,
        title=document.title,
        author=document.author,
        source=document.source,
        url=document.url,
        published=document.published,
        outlet=document.outlet,
        passages=document.n_passages,
    )


def resolve_document(index: PassageStore, doc_id: str) -> DocumentView:
    """The document ``doc_id`` names in ``index``, with its cleaned text and passage ids in order;
    :class:`~qa.errors.DocumentNotFoundError` when this build has no such document."""
    document = index.document(doc_id)
    texts = index.document_text(doc_id) if document else None
    if document is None or texts is None:
        raise DocumentNotFoundError(f"no document {doc_id!r} in build {index.build_id}")
    return DocumentView(
        **summarize(document).model_dump(),
        format=document.format,
        text=texts[0],
        cleaned_text=texts[1],
        pages=[Page(page=p.page, label=p.label, start=p.start, end=p.end) for p in document.pages],
        passage_ids=[p.passage_id for p in index.document_passages(doc_id)],
    )

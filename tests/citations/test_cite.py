"""qa.citations.cite: citations of passages and spans, and ids resolved back to their text."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from qa.citations.cite import (
    MAX_CONTEXT,
    cite,
    cite_span,
    format_citation,
    passage_in_context,
    passage_not_found,
    resolve_document,
    resolve_passage,
    summarize,
)
from qa.config import Settings
from qa.errors import DocumentNotFoundError, InvalidQueryError, PassageNotFoundError
from qa.index.embedded.store import DocumentRecord, EmbeddedStore

DOC = "002_9c06afbfd3aef34d"
RECORD = DocumentRecord(
    doc_id="a1",
    source="news/a1.txt",
    title="Sea walls",
    author="Ana de la Cruz",
    url="https://example.org/a1",
    published="2024-03-03",
    outlet="The Harbour Times",
    sha256="0" * 64,
    encoding="utf-8",
    n_passages=4,
)


@pytest.fixture
def index(built: Settings) -> Iterator[EmbeddedStore]:
    opened = EmbeddedStore.open(built.index_dir, expected=None)
    yield opened
    opened.close()


def test_format_citation_names_every_known_part_and_the_offsets() -> None:
    assert format_citation(RECORD, 10, 250) == (
        "Ana de la Cruz, \u201cSea walls\u201d, The Harbour Times, 2024-03-03 (news/a1.txt, chars 10\u2013250)"
    )
    assert format_citation(RECORD, 10, 250, markdown=True) == (
        "Ana de la Cruz, [\u201cSea walls\u201d](https://example.org/a1), The Harbour Times, 2024-03-03 "
        "(`news/a1.txt`, chars 10\u2013250)"
    )


def test_format_citation_leaves_unknown_parts_out() -> None:
    bare = replace(RECORD, author=None, url=None, published=None, outlet=None)
    assert format_citation(bare, 0, 5) == "\u201cSea walls\u201d (news/a1.txt, chars 0\u20135)"
    assert format_citation(bare, 0, 5, markdown=True) == "\u201cSea walls\u201d (`news/a1.txt`, chars 0\u20135)"


def test_cite_span_carries_the_document_the_offsets_and_both_strings() -> None:
    citation = cite_span(RECORD, 3, 9)
    assert (citation.doc_id, citation.source, citation.start, citation.end) == ("a1", "news/a1.txt", 3, 9)
    assert (citation.title, citation.author, citation.outlet) == ("Sea walls", "Ana de la Cruz", "The Harbour Times")
    assert (citation.url, citation.published) == ("https://example.org/a1", "2024-03-03")
    assert citation.formatted == format_citation(RECORD, 3, 9)
    assert citation.markdown == format_citation(RECORD, 3, 9, markdown=True)


def test_a_resolved_passage_is_verbatim_and_cited_at_its_own_offsets(index: EmbeddedStore) -> None:
    source = index.document_text(DOC)
    document = index.document(DOC)
    assert source is not None
    assert document is not None
    for stored in index.document_passages(DOC):
        view = resolve_passage(index, stored.passage_id)
        assert view.text == source[0][view.citation.start : view.citation.end]
        assert view.citation == cite(stored, document)
        assert (view.ordinal, view.section) == (stored.ordinal, stored.section)


def test_neighbours_chain_the_passages_of_a_document_in_order(index: EmbeddedStore) -> None:
    ids = [p.passage_id for p in index.document_passages(DOC)]
    assert len(ids) >= 3
    views = [resolve_passage(index, pid) for pid in ids]
    assert [v.previous_id for v in views] == [None, *ids[:-1]]
    assert [v.next_id for v in views] == [*ids[1:], None]


def test_an_unknown_passage_of_an_indexed_document_points_to_its_document(index: EmbeddedStore) -> None:
    with pytest.raises(PassageNotFoundError) as raised:
        resolve_passage(index, f"{DOC}:000000000000")
    assert raised.value.doc_id == DOC
    assert f"/documents/{DOC}" in str(raised.value)
    assert index.build_id in str(raised.value)


def test_an_unknown_passage_of_an_unknown_document_names_no_document(index: EmbeddedStore) -> None:
    for passage_id in ("gone:000000000000", "no-colon-at-all"):
        error = passage_not_found(index, passage_id)
        assert error.doc_id is None
        assert repr(passage_id) in str(error)
        with pytest.raises(PassageNotFoundError):
            resolve_passage(index, passage_id)


def test_a_resolved_document_lists_its_passages_in_order(index: EmbeddedStore) -> None:
    view = resolve_document(index, DOC)
    texts = index.document_text(DOC)
    document = index.document(DOC)
    assert texts is not None
    assert document is not None
    assert view.passage_ids == [p.passage_id for p in index.document_passages(DOC)]
    assert view.passages == len(view.passage_ids) == document.n_passages
    assert view.cleaned_text == texts[1]
    assert view.text == texts[0]
    assert (view.format, view.pages) == ("text", [])  # a .txt file has no page map
    exclude = {"cleaned_text", "passage_ids", "text", "format", "pages"}
    assert view.model_dump(exclude=exclude) == summarize(document).model_dump()


def test_an_unknown_document_is_not_found(index: EmbeddedStore) -> None:
    with pytest.raises(DocumentNotFoundError, match="no document 'nope'"):
        resolve_document(index, "nope")


def test_every_document_summary_counts_its_passages(index: EmbeddedStore) -> None:
    for document in index.documents():
        summary = summarize(document)
        assert summary.doc_id == document.doc_id
        assert summary.passages == len(index.document_passages(document.doc_id)) > 0


def test_a_passage_in_context_has_its_neighbours_in_reading_order_and_fewer_at_the_edges(index: EmbeddedStore) -> None:
    ids = resolve_document(index, DOC).passage_ids
    assert len(ids) > 4
    first = passage_in_context(index, ids[0], 2)
    assert first.before == []
    assert [v.passage_id for v in first.after] == ids[1:3]
    assert first.passage == resolve_passage(index, ids[0])
    middle = passage_in_context(index, ids[2], MAX_CONTEXT)
    assert [v.passage_id for v in middle.before] == ids[:2]
    assert [v.passage_id for v in middle.after] == ids[3 : 3 + MAX_CONTEXT]
    for view in (*middle.before, *middle.after):
        assert view == resolve_passage(index, view.passage_id)
    last = passage_in_context(index, ids[-1], 1)
    assert ([v.passage_id for v in last.before], last.after) == ([ids[-2]], [])
    assert passage_in_context(index, ids[1]).before == []


def test_a_passage_in_context_refuses_a_context_out_of_range_and_an_unknown_id(index: EmbeddedStore) -> None:
    passage_id = resolve_document(index, DOC).passage_ids[0]
    for context in (-1, MAX_CONTEXT + 1):
        with pytest.raises(InvalidQueryError, match=f"context must be between 0 and {MAX_CONTEXT}"):
            passage_in_context(index, passage_id, context)
    with pytest.raises(PassageNotFoundError):
        passage_in_context(index, f"{DOC}:000000000000", 1)

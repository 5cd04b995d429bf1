"""A corpus of every format built and cited: verbatim spans, PDF pages in every citation format, the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import bibtexparser
import jsonschema
import pytest
from fastapi.testclient import TestClient

from qa.citations.cite import resolve_document, resolve_passage
from qa.citations.formats import render_citation
from qa.config import Settings
from qa.index.embedded.store import EmbeddedStore
from qa.index.location import build_index
from qa.index.prepare import BuildReport
from qa.ingest.chunking import ChunkerConfig
from qa.search.retrieval import Searcher
from qa.server.app import create_app
from tests.helpers import SEEDS, FakeEmbedder, all_passages, build_dir, manifest_json, open_index
from tests.ingest import makers

SCHEMA = Path(__file__).resolve().parents[2] / "src" / "qa" / "citations" / "schemas" / "csl-data.json"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, BuildReport]:
    """The seeds, a saved news page, a PDF report, a Word file and two bad files, built with the fake embedder."""
    root = tmp_path_factory.mktemp("mixed")
    corpus = root / "corpus"
    corpus.mkdir()
    for seed in SEEDS.iterdir():
        if seed.is_file():
            (corpus / seed.name).write_bytes(seed.read_bytes())
    makers.write(corpus, "harbour-report.pdf", makers.report_pdf())
    makers.write(corpus, "new-quay.html", makers.news_page())
    makers.write(corpus, "ferry-review.docx", makers.report_docx())
    makers.write(corpus, "locked.pdf", makers.encrypted_pdf())
    makers.write(corpus, "scan.pdf", makers.scanned_pdf())
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    report = build_index(corpus, settings.index_dir, FakeEmbedder(), ChunkerConfig.from_settings(settings))
    return settings, report


@pytest.fixture
def index(mixed: tuple[Settings, BuildReport]) -> Iterator[EmbeddedStore]:
    store = open_index(mixed[0], FakeEmbedder(), ChunkerConfig.from_settings(mixed[0]))
    yield store
    store.close()


def _passage_with(index: EmbeddedStore, words: str) -> str:
    return next(p.passage_id for p in all_passages(index) if words in p.text)


def test_every_passage_of_every_format_is_a_verbatim_span_of_its_stored_text(index: EmbeddedStore) -> None:
    formats = set()
    for document in index.documents():
        formats.add(document.format)
        texts = index.document_text(document.doc_id)
        assert texts is not None
        for p in index.document_passages(document.doc_id):
            assert texts[0][p.start : p.end] == p.text
    assert formats == {"text", "html", "pdf", "docx"}


def test_no_header_footer_page_number_or_comment_in_any_passage(index: EmbeddedStore) -> None:
    for p in all_passages(index):
        for junk in (makers.HEADER, makers.FOOTER, "Reader comment", "cookies", "Related stories"):
            assert junk not in p.text


def test_pdf_passage_crossing_a_page_break_cites_both_pages_in_every_format(index: EmbeddedStore) -> None:
    view = resolve_passage(index, _passage_with(index, "restored hull"))
    c = view.citation
    assert "paid for the lifting" in view.text  # the part on page "2"
    assert c.page == "1"
    assert c.pages == ["1", "2"]
    assert c.formatted.endswith(", pp. 1\u20132")
    assert c.markdown.endswith(", pp. 1\u20132")
    assert c.formatted.startswith("Karin Holm, \u201cAnnual Report 2024\u201d, 2025-02-03")
    (item,) = json.loads(render_citation(view, "csl-json"))
    jsonschema.validate([item], json.loads(SCHEMA.read_text()))
    assert item["page"] == "1-2"
    (entry,) = bibtexparser.parse_string(render_citation(view, "bibtex")).entries
    assert entry.fields_dict["pages"].value == "1--2"


def test_pdf_passage_on_one_page_cites_its_printed_label(index: EmbeddedStore) -> None:
    view = resolve_passage(index, _passage_with(index, "describes the work of the Northern Harbour"))
    assert (view.citation.page, view.citation.pages) == ("i", ["i"])
    assert view.citation.formatted.endswith(", p. i")
    (item,) = json.loads(render_citation(view, "csl-json"))
    assert item["page"] == "i"
    (entry,) = bibtexparser.parse_string(render_citation(view, "bibtex")).entries
    assert entry.fields_dict["pages"].value == "i"


def test_other_formats_carry_no_page(index: EmbeddedStore) -> None:
    for words in ("four hundred calls in its first year", "forty minutes earlier"):
        view = resolve_passage(index, _passage_with(index, words))
        assert (view.citation.page, view.citation.pages) == (None, None)
        assert "p." not in view.citation.formatted.rsplit(")", 1)[-1]
        assert "page" not in json.loads(render_citation(view, "csl-json"))[0]
        assert "pages" not in bibtexparser.parse_string(render_citation(view, "bibtex")).entries[0].fields_dict


def test_web_page_and_word_file_are_cited_with_their_own_metadata(index: EmbeddedStore) -> None:
    page = resolve_passage(index, _passage_with(index, "four hundred calls in its first year")).citation
    assert (page.title, page.author, page.published, page.outlet) == (
        "New quay opens to container ships",
        "Maria Lindqvist",
        "2024-03-14",
        "The Harbour Gazette",
    )
    assert page.url == "https://www.harbour-gazette.example/2024/03/new-quay-opens"
    word = resolve_passage(index, _passage_with(index, "forty minutes earlier"))
    assert (word.citation.title, word.citation.author) == ("Ferry Timetable Review", "Ingrid Solberg")
    assert word.section == "Why the timetable changed"


def test_highlights_carry_the_page_of_their_sentence(index: EmbeddedStore) -> None:
    answer = Searcher(index, FakeEmbedder()).ask("Who paid for lifting the wreck to the maritime museum?", k=10)
    pdf_results = [r for r in answer.results if r.citation.pages]
    assert pdf_results
    for result in pdf_results:
        assert result.highlights
        for h in result.highlights:
            assert h.page in (result.citation.pages or [])
    crossing = next(r for r in pdf_results if "restored hull" in r.text)
    document = index.document(crossing.citation.doc_id)
    assert document is not None
    for h in crossing.highlights:
        page = next(p for p in document.pages if p.start <= h.source_start < p.end)
        assert h.page == page.label


def test_document_view_returns_the_extracted_text_and_the_page_map(index: EmbeddedStore) -> None:
    view = resolve_document(index, "harbour-report")
    assert view.format == "pdf"
    assert makers.CROSSING in view.text
    assert [(p.page, p.label) for p in view.pages] == [(1, "i"), (2, "ii"), (3, "1"), (4, "2"), (5, "3")]
    assert view.pages[-1].end == len(view.text)
    passage = resolve_passage(index, view.passage_ids[0])
    assert view.text[passage.citation.start : passage.citation.end] == passage.text


def test_manifest_and_report_list_the_skipped_files_and_the_extractors(mixed: tuple[Settings, BuildReport]) -> None:
    settings, report = mixed
    assert [s.source for s in report.skipped] == ["locked.pdf", "scan.pdf"]
    corpus = manifest_json(build_dir(settings))["corpus"]
    assert [s["source"] for s in corpus["skipped"]] == ["locked.pdf", "scan.pdf"]
    assert "encrypted" in corpus["skipped"][0]["reason"]
    assert "OCR" in corpus["skipped"][1]["reason"]
    assert set(corpus["extractors"]) == {"html", "pdf", "docx"}
    assert report.documents == 8


def test_api_documents_page_map_and_healthz_skipped(mixed: tuple[Settings, BuildReport]) -> None:
    settings, _ = mixed
    with TestClient(create_app(settings, embedder=FakeEmbedder())) as client:
        health = client.get("/healthz").json()
        assert health["skipped"] == 2
        body = client.get("/documents/harbour-report").json()
        assert body["format"] == "pdf"
        assert body["pages"][2]["label"] == "1"
        assert body["pages"][2]["end"] == body["pages"][3]["start"]
        assert body["text"][body["pages"][4]["start"] :].startswith("The new quay")
        answer = client.get("/ask", params={"q": "wreck lifted maritime museum", "k": 10}).json()
        cited = [r["citation"] for r in answer["results"] if r["citation"]["pages"]]
        assert cited
        for c in cited:
            assert c["formatted"].endswith((f"p. {c['page']}", f"pp. {c['pages'][0]}\u2013{c['pages'][-1]}"))

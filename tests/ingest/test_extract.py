"""The extractors of saved web pages, PDFs and Word files, on files written by the tests (tests/ingest/makers.py)."""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import zipfile
from pathlib import Path

import pytest

from qa.ingest.changes import extractors_used
from qa.ingest.chunking import Chunker, ChunkerConfig
from qa.ingest.documents import Document, read_corpus
from qa.ingest.extract import ExtractionError, PageSpan, extractor_for
from qa.ingest.extract import docx as docx_extractor
from qa.ingest.extract import html as html_extractor
from qa.ingest.extract import pdf as pdf_extractor
from tests.helpers import FakeEmbedder
from tests.ingest import makers

LOGGER = "qa.ingest.documents"


@pytest.fixture(scope="module")
def report() -> bytes:
    return makers.report_pdf()


def _page_of(pages: tuple[PageSpan, ...], offset: int) -> str:
    return next(p.label for p in pages if p.start <= offset < p.end)


# --------------------------------------------------------------------------- PDF


def test_pdf_text_has_no_running_header_footer_or_page_number(report: bytes) -> None:
    text = pdf_extractor.extract(report).text
    assert makers.HEADER not in text
    assert makers.FOOTER not in text
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert not [line for line in lines if line in {"i", "ii", "1", "2", "3"}], "a page number was kept"
    # The body, the footnote and the title page all survive.
    for kept in (makers.FRONT, makers.CROSSING, makers.FOOTNOTE, makers.LAST, *makers.BODY_1):
        assert kept in text


def test_pdf_page_map_has_printed_labels_and_covers_the_text(report: bytes) -> None:
    extraction = pdf_extractor.extract(report)
    pages = extraction.pages
    assert [(p.page, p.label) for p in pages] == [(1, "i"), (2, "ii"), (3, "1"), (4, "2"), (5, "3")]
    assert pages[0].start == 0
    assert pages[-1].end == len(extraction.text)
    assert all(a.end == b.start for a, b in itertools.pairwise(pages)), "the pages leave a gap"
    text = extraction.text
    assert _page_of(pages, text.index(makers.FRONT)) == "i"
    assert _page_of(pages, text.index(makers.BODY_1[0])) == "1"
    assert _page_of(pages, text.index(makers.FOOTNOTE)) == "2"
    assert _page_of(pages, text.index(makers.LAST)) == "3"


def test_a_paragraph_crossing_a_page_break_stays_one_paragraph(report: bytes) -> None:
    extraction = pdf_extractor.extract(report)
    start = extraction.text.index(makers.CROSSING)  # whole, with no break or header inside
    end = start + len(makers.CROSSING)
    assert "\n" not in extraction.text[start:end]
    assert _page_of(extraction.pages, start) == "1"
    assert _page_of(extraction.pages, end - 1) == "2"


def test_two_columns_read_column_by_column_as_one_paragraph(report: bytes) -> None:
    text = pdf_extractor.extract(report).text
    assert makers.TWO_COLUMNS in text


def test_pdf_without_page_labels_falls_back_to_page_numbers() -> None:
    extraction = pdf_extractor.extract(makers.report_pdf(labels=False))
    assert [p.label for p in extraction.pages] == ["1", "2", "3", "4", "5"]
    assert makers.FOOTER not in extraction.text


def test_pdf_metadata(report: bytes) -> None:
    extraction = pdf_extractor.extract(report)
    assert (extraction.title, extraction.author, extraction.published) == (
        "Annual Report 2024",
        "Karin Holm",
        "2025-02-03",
    )


@pytest.mark.parametrize("title", ["Microsoft Word - draft3.docx", "Untitled", "report_final.pdf", "Document1"])
def test_converter_titles_are_not_titles(title: str) -> None:
    assert pdf_extractor._JUNK_TITLE_RE.search(title)


def test_line_end_hyphens_are_rejoined_and_real_hyphens_kept() -> None:
    # A compound split at its own hyphen ("long-" / "delayed") cannot be told from a hyphenated word
    # without a dictionary: it is rejoined too. A hyphen before a capital is kept.
    text, pages = pdf_extractor._assemble(
        [[(0, "the harbour's long-delayed"), (0, "expan-"), (1, "sion began. Well-"), (1, "Known names")]],
        ["1", "2"],
    )
    assert text == "the harbour's long-delayed expansion began. Well- Known names\n"
    # PDFium's own marks of a line-end hyphen (U+0002, U+FFFE), at a line's end or inside a line it joined.
    marked, _ = pdf_extractor._assemble([[(0, "struc\x02"), (0, "tures man\ufffeagement")]], ["1"])
    assert marked == "structures management\n"
    assert [p.label for p in pages] == ["1", "2"]
    assert text[pages[1].start :].startswith("sion began")


# --------------------------------------------------------------------------- HTML


def test_news_page_main_text_without_comments_banners_or_links() -> None:
    text = html_extractor.extract(makers.news_page()).text
    assert "The northern harbour\u2019s new quay received its first container ship" in text  # Windows-1252 read
    assert "four hundred calls in its first year" in text
    for junk in ("cookies", "Reader comment", "Related stories", "Ferry timetable changes", "All rights reserved"):
        assert junk not in text


def test_news_page_metadata_from_json_ld_and_opengraph() -> None:
    e = html_extractor.extract(makers.news_page())
    assert e.title == "New quay opens to container ships"
    assert e.author == "Maria Lindqvist"
    assert e.published == "2024-03-14"
    assert e.url == "https://www.harbour-gazette.example/2024/03/new-quay-opens"
    assert e.outlet == "The Harbour Gazette"


def test_microdata_page_and_the_saved_from_url_comment() -> None:
    e = html_extractor.extract(makers.microdata_page())
    assert (e.title, e.author, e.published) == ("Reading tide tables without mistakes", "Jonas Berg", "2023-06-02")
    assert e.url == "https://blog.example.org/posts/tide-tables"  # no canonical URL: the browser's comment


def test_placeholder_authors_are_dropped() -> None:
    page = makers.NEWS_PAGE.replace('"name": "Maria Lindqvist"', '"name": "admin"').replace("By Maria Lindqvist", "")
    assert html_extractor.extract(page.encode("cp1252")).author is None


# --------------------------------------------------------------------------- DOCX


def test_word_file_text_metadata_and_table() -> None:
    e = docx_extractor.extract(makers.report_docx())
    assert (e.title, e.author, e.published) == ("Ferry Timetable Review", "Ingrid Solberg", "2024-11-05")
    assert e.pages == ()
    assert "Why the timetable changed\n\nThe winter timetable moved" in e.text
    assert "Departure | Passengers\n\n06:20 | 412" in e.text


def test_word_file_placeholder_author_is_dropped() -> None:
    assert docx_extractor.extract(makers.report_docx(author="python-docx")).author is None


def test_word_headings_become_sections(tmp_path: Path) -> None:
    makers.write(tmp_path, "review.docx", makers.report_docx())
    (doc,) = read_corpus(tmp_path).documents
    passages = Chunker(ChunkerConfig(max_tokens=40), window=FakeEmbedder()).chunk(doc)
    sections = {p.section for p in passages}
    assert {"Why the timetable changed", "What the survey found"} <= sections
    assert doc.title == "Ferry Timetable Review"


# --------------------------------------------------------------------------- reading a folder


def test_every_format_in_a_folder_with_metadata_and_sidecar(tmp_path: Path) -> None:
    makers.write(tmp_path, "report.pdf", makers.report_pdf())
    makers.write(tmp_path, "quay.html", makers.news_page())
    makers.write(tmp_path, "tides.htm", makers.microdata_page())
    makers.write(tmp_path, "review.docx", makers.report_docx())
    makers.write(tmp_path, "tides.meta.json", b'{"title": "Tide tables", "outlet": "Sailing Blog"}')
    corpus = read_corpus(tmp_path)
    docs: dict[str, Document] = {d.doc_id: d for d in corpus.documents}
    assert corpus.skipped == []
    assert {d.doc_id: d.format for d in corpus.documents} == {
        "quay": "html",
        "report": "pdf",
        "review": "docx",
        "tides": "html",
    }
    assert docs["quay"].author == "Maria Lindqvist"
    assert docs["quay"].outlet == "The Harbour Gazette"
    assert (docs["tides"].title, docs["tides"].outlet, docs["tides"].author) == (
        "Tide tables",
        "Sailing Blog",
        "Jonas Berg",
    )  # the sidecar overrides, the page's own metadata fills the rest
    assert docs["report"].pages
    assert not docs["review"].pages
    assert docs["report"].sha256 == hashlib.sha256((tmp_path / "report.pdf").read_bytes()).hexdigest()
    used = extractors_used(tmp_path)
    assert set(used) == {"html", "pdf", "docx"}
    assert used["pdf"]["name"] == "qa-pdf"
    assert "pypdfium2-" in used["pdf"]["version"]


# --------------------------------------------------------------------------- bad files


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"<w:document>" + b"\0" * (50 * 1024 * 1024) + b"</w:document>")
    return buffer.getvalue()


BAD_FILES = {
    "locked.pdf": (makers.encrypted_pdf, "encrypted"),
    "scan.pdf": (makers.scanned_pdf, "OCR is not done"),
    "cut.pdf": (lambda: makers.report_pdf()[:300], "damaged or truncated"),
    "cut.docx": (lambda: makers.report_docx()[:2000], "damaged or truncated"),
    "bomb.docx": (_zip_bomb, "zip bomb"),
    "notword.docx": (lambda: _zip_with("content.xml"), "not a Word document"),
    "page.pdf": (makers.news_page, "named as PDF but is an HTML page"),
    "report.docx": (makers.report_pdf, "named as DOCX but is a PDF"),
    "report.html": (makers.report_pdf, "named as HTML but is a PDF"),
    "report.txt": (makers.report_pdf, "named as text but is a PDF"),
    "empty.html": (lambda: b"<html><head><title>Nothing</title></head><body></body></html>", "no article text"),
    "cut.html": (lambda: makers.news_page()[:200], "no article text"),
}


def _zip_with(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, "<x/>")
    return buffer.getvalue()


def test_bad_files_are_skipped_with_their_reason_and_lose_nothing_else(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    for name, (make, _) in BAD_FILES.items():
        makers.write(tmp_path, name, make())
    makers.write(tmp_path, "good.pdf", makers.report_pdf())
    makers.write(tmp_path, "plain.txt", b"A plain article about the harbour, with a sentence or two in it. It is fine.")
    corpus = read_corpus(tmp_path)
    assert sorted(d.source for d in corpus.documents) == ["good.pdf", "plain.txt"]
    reasons = {s.source: s.reason for s in corpus.skipped}
    assert set(reasons) == set(BAD_FILES)
    for name, (_, reason) in BAD_FILES.items():
        assert reason in reasons[name], (name, reasons[name])
        assert any(name in r.getMessage() and reason in r.getMessage() for r in caplog.records), name


def test_a_50_mb_html_file_is_refused_before_parsing(tmp_path: Path) -> None:
    paragraph = b"<p>" + b"The harbour handled more ships than ever before this year. " * 20 + b"</p>\n"
    data = b"<html><body>" + paragraph * (50 * 1024 * 1024 // len(paragraph)) + b"</body></html>"
    assert len(data) >= 50 * 1e6
    with pytest.raises(ExtractionError, match="MB limit for HTML"):
        html_extractor.extract(data)


def test_every_extractor_names_its_library_and_rules() -> None:
    for fmt in ("html", "pdf", "docx"):
        extractor = extractor_for(fmt)
        assert extractor is not None
        assert extractor.describe()["name"] == f"qa-{fmt}"
        assert extractor.version.startswith(f"{extractor.rules}+{extractor.library}-")
    assert extractor_for("text") is None

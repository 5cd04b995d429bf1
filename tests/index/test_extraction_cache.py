"""Extractions are kept with the index: an unchanged file is not extracted again; a new extractor version rebuilds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from qa.index.embedded.store import EmbeddedStore
from qa.index.location import build_index, stale_reason
from qa.ingest.changes import corpus_fingerprint
from qa.ingest.chunking import ChunkerConfig
from qa.ingest.documents import read_corpus
from qa.ingest.extract import Extraction
from qa.ingest.extract import pdf as pdf_extractor
from tests.helpers import FakeEmbedder, all_passages
from tests.ingest import makers


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the PDF extractor's runs (the real extractor runs each time)."""
    counted: list[int] = []
    real: Callable[[bytes], Extraction] = pdf_extractor.extract

    def counting(data: bytes) -> Extraction:
        counted.append(len(data))
        return real(data)

    monkeypatch.setattr(pdf_extractor, "extract", counting)
    return counted


def test_an_unchanged_pdf_is_extracted_once_across_builds(tmp_path: Path, calls: list[int]) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    makers.write(corpus, "report.pdf", makers.report_pdf())
    makers.write(corpus, "note.txt", b"A short note about the harbour and its new quay. It opened in March.")
    config, embedder = ChunkerConfig(), FakeEmbedder()
    build_index(corpus, index_dir, embedder, config)
    assert len(calls) == 1
    first = _passage_ids(index_dir)
    (corpus / "note.txt").write_bytes(b"An edited note about the harbour. The quay opened in March, on time.")
    report = build_index(corpus, index_dir, embedder, config)
    assert len(calls) == 1, "the unchanged PDF was extracted again"
    second = _passage_ids(index_dir)
    assert {p for p in first if p.startswith("report:")} == {p for p in second if p.startswith("report:")}
    assert report.embedded < report.passages  # the PDF's passages came from the cache too
    (corpus / "report.pdf").write_bytes(makers.report_pdf(labels=False))
    build_index(corpus, index_dir, embedder, config)
    assert len(calls) == 2


def test_a_new_extractor_version_changes_the_fingerprint_and_extracts_again(
    tmp_path: Path, calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    makers.write(corpus, "report.pdf", makers.report_pdf())
    config, embedder = ChunkerConfig(), FakeEmbedder()
    build_index(corpus, index_dir, embedder, config)
    before = corpus_fingerprint(corpus)
    assert stale_reason(corpus, index_dir, embedder, config) is None
    monkeypatch.setattr(pdf_extractor, "RULES_VERSION", pdf_extractor.RULES_VERSION + 1)
    assert corpus_fingerprint(corpus) != before
    assert "changed" in (stale_reason(corpus, index_dir, embedder, config) or "")
    build_index(corpus, index_dir, embedder, config)
    assert len(calls) == 2


def test_a_library_failure_on_a_malformed_file_skips_only_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise IndexError("list index out of range")

    makers.write(tmp_path, "report.pdf", makers.report_pdf())
    makers.write(tmp_path, "quay.html", makers.news_page())
    monkeypatch.setattr(pdf_extractor, "_paragraphs", broken)  # a parser bug on some file, as the build sees it
    corpus = read_corpus(tmp_path)
    assert [d.source for d in corpus.documents] == ["quay.html"]
    (skipped,) = corpus.skipped
    assert skipped.source == "report.pdf"
    assert "pypdfium2 could not read the file (IndexError: list index out of range)" in skipped.reason


def _passage_ids(index_dir: Path) -> set[str]:
    index = EmbeddedStore.open(index_dir, expected=None)
    try:
        return {p.passage_id for p in all_passages(index)}
    finally:
        index.close()

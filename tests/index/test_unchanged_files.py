"""An unchanged file is neither opened to check staleness nor read and cleaned again by a rebuild
(a stat per file, qa.ingest.changes; documents kept in the embedded cache, qa.index.embedded.cache)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from qa.index.embedded.store import EmbeddedStore
from qa.index.location import build_index, stale_reason
from qa.ingest import documents as documents_module
from qa.ingest.chunking import ChunkerConfig
from qa.ingest.extract import Extraction
from qa.ingest.extract import html as html_extractor
from tests.helpers import FakeEmbedder, age, all_passages
from tests.ingest import makers

ARTICLES = {
    "quay.txt": "New Quay Opens\n\nThe harbour's new quay opened on Monday after two years of work. "
    "Fishing boats were the first to tie up there, officials said.\n",
    "wall.md": "# Sea Wall Repairs\n\nEngineers began repairing the old sea wall this week. "
    "The work will take at least two winters, the council said.\n",
    "sub/ferry.txt": "Ferry Timetable Changes\n\nThe island ferry will sail twice a day from June. "
    "Passengers asked for an earlier morning crossing.\n",
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    for name, text in ARTICLES.items():
        makers.write(folder, name, text.encode())
    makers.write(folder, "page.html", makers.news_page())
    makers.write(folder, "quay.meta.json", json.dumps({"outlet": "The Harbour Times"}).encode())
    age(folder)
    return folder


def passages(index_dir: Path) -> list[tuple[str, str]]:
    store = EmbeddedStore.open(index_dir, expected=None)
    try:
        return [(p.passage_id, p.text) for p in all_passages(store)]
    finally:
        store.close()


def outlet(index_dir: Path, doc_id: str) -> str | None:
    store = EmbeddedStore.open(index_dir, expected=None)
    try:
        record = store.document(doc_id)
        assert record is not None
        return record.outlet
    finally:
        store.close()


def test_an_unchanged_rebuild_and_staleness_check_open_no_file(
    corpus: Path, tmp_path: Path, opened: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir, embedder, config = tmp_path / "index", FakeEmbedder(), ChunkerConfig()
    build_index(corpus, index_dir, embedder, config)
    first = passages(index_dir)
    opened.clear()
    assert stale_reason(corpus, index_dir, embedder, config) is None
    assert opened == []
    cleaned: list[str] = []
    real = documents_module.analyse
    monkeypatch.setattr(documents_module, "analyse", lambda text: cleaned.append(text) or real(text))
    build_index(corpus, index_dir, embedder, config)
    assert opened == []
    assert cleaned == []
    assert passages(index_dir) == first
    assert outlet(index_dir, "quay") == "The Harbour Times"
    # The same ids and texts as a build from scratch.
    build_index(corpus, tmp_path / "scratch", embedder, config)
    assert passages(tmp_path / "scratch") == first


def test_an_edited_file_is_read_again_and_its_passages_change(corpus: Path, tmp_path: Path, opened: list[str]) -> None:
    index_dir, embedder, config = tmp_path / "index", FakeEmbedder(), ChunkerConfig()
    build_index(corpus, index_dir, embedder, config)
    before = passages(index_dir)
    edited = ARTICLES["wall.md"].replace("two winters", "three winters")
    makers.write(corpus, "wall.md", edited.encode())
    opened.clear()
    assert "changed" in (stale_reason(corpus, index_dir, embedder, config) or "")
    assert opened == ["wall.md"]
    build_index(corpus, index_dir, embedder, config)
    after = passages(index_dir)
    assert any("three winters" in text for _, text in after)
    assert [p for p in after if p[0].startswith("quay:")] == [p for p in before if p[0].startswith("quay:")]
    build_index(corpus, tmp_path / "scratch", embedder, config)
    assert passages(tmp_path / "scratch") == after


def test_a_racy_file_is_hashed_and_a_same_bytes_file_is_not_read_again(
    corpus: Path, tmp_path: Path, opened: list[str]
) -> None:
    index_dir, embedder, config = tmp_path / "index", FakeEmbedder(), ChunkerConfig()
    now = time.time_ns()
    os.utime(corpus / "wall.md", ns=(now, now))  # written just before the build reads the corpus
    build_index(corpus, index_dir, embedder, config)
    opened.clear()
    assert stale_reason(corpus, index_dir, embedder, config) is None
    assert opened == ["wall.md"]  # hashed, for it may have changed within its mtime's tick
    opened.clear()
    build_index(corpus, index_dir, embedder, config)
    assert opened == ["wall.md"]  # hashed once; its bytes are unchanged, so its document is the kept one


def test_a_sidecar_edit_changes_the_document(corpus: Path, tmp_path: Path) -> None:
    index_dir, embedder, config = tmp_path / "index", FakeEmbedder(), ChunkerConfig()
    build_index(corpus, index_dir, embedder, config)
    makers.write(corpus, "quay.meta.json", json.dumps({"outlet": "The Island Gazette"}).encode())
    assert stale_reason(corpus, index_dir, embedder, config) is not None
    build_index(corpus, index_dir, embedder, config)
    assert outlet(index_dir, "quay") == "The Island Gazette"
    (corpus / "quay.meta.json").unlink()
    assert stale_reason(corpus, index_dir, embedder, config) is not None
    build_index(corpus, index_dir, embedder, config)
    assert outlet(index_dir, "quay") is None


def test_added_and_deleted_files_are_noticed(corpus: Path, tmp_path: Path) -> None:
    index_dir, embedder, config = tmp_path / "index", FakeEmbedder(), ChunkerConfig()
    build_index(corpus, index_dir, embedder, config)
    (corpus / "sub" / "ferry.txt").unlink()
    assert stale_reason(corpus, index_dir, embedder, config) is not None
    build_index(corpus, index_dir, embedder, config)
    assert not any(pid.startswith("ferry:") for pid, _ in passages(index_dir))
    makers.write(corpus, "ferry.txt", ARTICLES["sub/ferry.txt"].encode())
    assert stale_reason(corpus, index_dir, embedder, config) is not None
    build_index(corpus, index_dir, embedder, config)
    assert any(pid.startswith("ferry:") for pid, _ in passages(index_dir))
    assert stale_reason(corpus, index_dir, embedder, config) is None


def test_a_reader_or_extractor_change_reads_every_file_again(
    corpus: Path, tmp_path: Path, opened: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir, embedder, config = tmp_path / "index", FakeEmbedder(), ChunkerConfig()
    build_index(corpus, index_dir, embedder, config)
    monkeypatch.setattr(documents_module, "code_digest", lambda *modules: "another reader")
    opened.clear()
    build_index(corpus, index_dir, embedder, config)
    assert sorted(set(opened)) == sorted([*ARTICLES, "page.html", "quay.meta.json"])
    monkeypatch.undo()  # the same reader, and a new HTML extractor
    extracted: list[int] = []
    real = html_extractor.extract

    def counting(data: bytes) -> Extraction:
        extracted.append(len(data))
        return real(data)

    monkeypatch.setattr(html_extractor, "extract", counting)
    monkeypatch.setattr(html_extractor, "RULES_VERSION", html_extractor.RULES_VERSION + 1)
    build_index(corpus, index_dir, embedder, config)
    assert len(extracted) == 1

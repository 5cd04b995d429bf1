"""Documents: reading a corpus folder, inferring titles and authors, sidecar metadata, fingerprints."""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa.errors import CorpusError, QAError
from qa.index.embedded.store import EmbeddedStore
from qa.index.location import build_index
from qa.ingest.changes import corpus_files, corpus_fingerprint
from qa.ingest.chunking import Chunker, ChunkerConfig
from qa.ingest.cleaning import analyse
from qa.ingest.documents import Document, decode, load_corpus, read_document
from tests.helpers import ROOT, FakeEmbedder

LOGGER = "qa.ingest.documents"

PARAGRAPH = (
    "Harbour authorities in three coastal cities have begun emergency repairs to sea walls damaged during "
    "last year's storms, officials said on Monday."
)
ARTICLE = f"Harbour Cities Race to Rebuild Sea Walls\n\nBy Jane Doe | March 3, 2024\n\n{PARAGRAPH}\n"


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))
    return path


def _by_id(docs: list[Document]) -> dict[str, Document]:
    return {d.doc_id: d for d in docs}


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "articles"
    folder.mkdir()
    return folder


# --------------------------------------------------------------------------- the seeds


def test_seeds_load_as_five_documents(corpus_dir: Path) -> None:
    docs = load_corpus(corpus_dir)
    paths = sorted(corpus_dir.glob("*.txt"))
    assert len(docs) == len(paths) == 5
    assert [d.source for d in docs] == sorted(d.source for d in docs)
    for doc, path in zip(docs, paths, strict=True):
        data = path.read_bytes()
        assert doc.doc_id == path.stem
        assert doc.source == path.name
        assert doc.sha256 == hashlib.sha256(data).hexdigest()
        assert doc.text == data.decode("utf-8")
        assert doc.encoding == "utf-8"
        assert doc.blocks == tuple(analyse(doc.text))
        assert (doc.url, doc.published, doc.outlet) == (None, None, None)


def test_seed_titles_and_authors(corpus_dir: Path) -> None:
    docs = {d.doc_id[:3]: d for d in load_corpus(corpus_dir)}
    assert (
        docs["001"].title
        == 'India Rejects Japan\'s "Asian NATO" Proposal to Counter China, Reaffirms Strategic Autonomy'
    )
    assert docs["003"].title == "Jaishankar Says India Does Not Share Japan’s Vision Of NATO-Like Alliance In Asia"
    # Line 1 of 004 is a site header; the headline is line 2.
    assert docs["004"].title == "A Japan-India Model to Unlock the Indo-Pacific’s Potential"
    # 000 and 002 open with a sentence: the title is its first words.
    assert docs["000"].title == "In recent years, geopolitics in the Indo-Pacific region has evolved at a…"
    assert docs["002"].title.startswith("India’s Foreign Minister, S. Jaishankar, has made it clear")
    for key in ("000", "002"):
        title = docs[key].title
        assert title.endswith("…")
        assert len(title.rstrip("…").split()) <= 12
        assert docs[key].text.startswith(title.rstrip("…"))
    assert docs["003"].author == "Ahmed Adel"
    assert docs["004"].author == "Professor Pema Gyalpo"
    assert [docs[k].author for k in ("000", "001", "002")] == [None, None, None]


# --------------------------------------------------------------------------- titles and authors


def test_headline_and_byline_of_a_written_article(corpus: Path) -> None:
    _write(corpus, "harbour.txt", ARTICLE)
    (doc,) = load_corpus(corpus)
    assert doc.title == "Harbour Cities Race to Rebuild Sea Walls"
    assert doc.author == "Jane Doe"


def test_markdown_headline_loses_its_markers(corpus: Path) -> None:
    _write(corpus, "orchard.md", f"# Orchard Growers Turn to **Drones**\n\n*By Lucia Moreno*\n\n{PARAGRAPH}\n")
    (doc,) = load_corpus(corpus)
    assert doc.title == "Orchard Growers Turn to Drones"
    assert doc.author == "Lucia Moreno"


def test_short_first_sentence_is_the_whole_title(corpus: Path) -> None:
    _write(corpus, "storm.txt", f"Rain closed the harbour on Monday. {PARAGRAPH}\n")
    (doc,) = load_corpus(corpus)
    assert doc.title == "Rain closed the harbour on Monday"


def test_long_first_sentence_is_cut_to_twelve_words(corpus: Path) -> None:
    _write(corpus, "storm.txt", f"{PARAGRAPH}\n")
    (doc,) = load_corpus(corpus)
    assert doc.title == "Harbour authorities in three coastal cities have begun emergency repairs to sea…"


@pytest.mark.parametrize(
    ("byline", "author"),
    [
        ("Written by Maria Keller, coastal engineer", "Maria Keller"),
        ("Author: Dr Tomas Lindqvist", "Dr Tomas Lindqvist"),
        ("By Jane Doe", "Jane Doe"),
    ],
)
def test_author_from_each_byline_form(corpus: Path, byline: str, author: str) -> None:
    _write(corpus, "a.txt", f"Harbour Repairs Begin\n{byline}\n{PARAGRAPH}\n")
    (doc,) = load_corpus(corpus)
    assert doc.author == author


def test_sentence_starting_with_by_is_not_an_author(corpus: Path) -> None:
    _write(
        corpus, "a.txt", f"Ports Sign a Pact\n\nBy joining forces, the two ports hope to cut costs.\n\n{PARAGRAPH}\n"
    )
    (doc,) = load_corpus(corpus)
    assert doc.author is None


def test_page_of_boilerplate_only_is_titled_by_its_stem(corpus: Path) -> None:
    _write(corpus, "widgets.txt", "Subscribe\nShare\n12 Comments\n")
    (doc,) = load_corpus(corpus)
    assert doc.title == "widgets"
    assert all(b.kind == "boilerplate" for b in doc.blocks)


# --------------------------------------------------------------------------- sidecars


def test_sidecar_overrides_title_and_author_and_adds_fields(corpus: Path) -> None:
    _write(corpus, "harbour.txt", ARTICLE)
    meta = {
        "title": "Sea Walls: The Race Against Winter",
        "author": "J. Doe",
        "url": "https://example.org/sea-walls",
        "published": "2024-03-03",
        "outlet": "Example Media",
    }
    _write(corpus, "harbour.meta.json", json.dumps(meta))
    (doc,) = load_corpus(corpus)
    assert (doc.title, doc.author, doc.url, doc.published, doc.outlet) == tuple(meta.values())
    assert doc.doc_id == "harbour"


def test_partial_sidecar_keeps_inferred_fields(corpus: Path) -> None:
    _write(corpus, "harbour.txt", ARTICLE)
    _write(corpus, "harbour.meta.json", json.dumps({"url": "https://example.org/x", "title": "  ", "author": None}))
    (doc,) = load_corpus(corpus)
    assert doc.title == "Harbour Cities Race to Rebuild Sea Walls"
    assert doc.author == "Jane Doe"
    assert doc.url == "https://example.org/x"


def test_sidecar_of_a_markdown_file_and_in_a_subfolder(corpus: Path) -> None:
    _write(corpus, "orchard.md", f"# Orchards\n\n{PARAGRAPH}\n")
    _write(corpus, "orchard.meta.json", json.dumps({"outlet": "Farm Weekly"}))
    _write(corpus, "sub/harbour.txt", ARTICLE)
    _write(corpus, "sub/harbour.meta.json", json.dumps({"published": "2024-03-03"}))
    docs = _by_id(load_corpus(corpus))
    assert docs["orchard"].outlet == "Farm Weekly"
    assert docs["harbour"].published == "2024-03-03"


def test_sidecar_numbers_become_strings_and_other_types_are_ignored(
    corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    _write(corpus, "harbour.txt", ARTICLE)
    _write(corpus, "harbour.meta.json", json.dumps({"published": 2024, "author": ["A", "B"], "title": True}))
    (doc,) = load_corpus(corpus)
    assert doc.published == "2024"
    assert doc.author == "Jane Doe"
    assert doc.title == "Harbour Cities Race to Rebuild Sea Walls"
    messages = _warnings(caplog)
    assert any("harbour.meta.json" in m and "author" in m for m in messages), messages
    assert any("harbour.meta.json" in m and "title" in m for m in messages), messages


def test_sidecar_with_a_utf8_bom_is_read(corpus: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    _write(corpus, "harbour.txt", ARTICLE)
    _write(corpus, "harbour.meta.json", b"\xef\xbb\xbf" + json.dumps({"outlet": "Caf\u00e9 Press"}).encode())
    (doc,) = load_corpus(corpus)
    assert doc.outlet == "Caf\u00e9 Press"
    assert not _warnings(caplog)


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'["a", "list"]', b'"a string"', b"\xff\xfe\x00garbage", b""],
    ids=["invalid", "list", "string", "not-utf8", "empty"],
)
def test_malformed_sidecar_is_ignored_with_a_warning(
    corpus: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    _write(corpus, "harbour.txt", ARTICLE)
    _write(corpus, "harbour.meta.json", content)
    (doc,) = load_corpus(corpus)
    assert doc.title == "Harbour Cities Race to Rebuild Sea Walls"
    assert doc.author == "Jane Doe"
    assert doc.url is None
    messages = _warnings(caplog)
    assert len(messages) == 1, messages
    assert "harbour.meta.json" in messages[0]


def test_unknown_sidecar_fields_warn(corpus: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    _write(corpus, "harbour.txt", ARTICLE)
    _write(corpus, "harbour.meta.json", json.dumps({"title": "Sea Walls", "tags": ["coast"], "Author": "x"}))
    (doc,) = load_corpus(corpus)
    assert doc.title == "Sea Walls"
    assert doc.author == "Jane Doe"  # field names are case-sensitive
    messages = _warnings(caplog)
    assert len(messages) == 1, messages
    assert "harbour.meta.json" in messages[0]
    assert "tags" in messages[0]
    assert "Author" in messages[0]


# --------------------------------------------------------------------------- which files


def test_only_article_suffixes_are_articles(corpus: Path) -> None:
    _write(corpus, "a.txt", ARTICLE)
    _write(corpus, "b.md", ARTICLE)
    _write(corpus, "C.TXT", ARTICLE)
    for name in ("d.doc", "e.rtf", "f.json", "g.txt.bak", "h", "a.meta.json", "i.markdown", "j.odt", "k.xhtml"):
        _write(corpus, name, ARTICLE)
    (corpus / "folder.txt").mkdir()  # a folder with an article suffix is not an article
    _write(corpus, "folder.txt/inner.txt", ARTICLE)
    docs = load_corpus(corpus)
    assert [d.source for d in docs] == ["C.TXT", "a.txt", "b.md", "folder.txt/inner.txt"]
    assert [d.doc_id for d in docs] == ["C", "a", "b", "inner"]
    assert [p.relative_to(corpus).as_posix() for p in corpus_files(corpus)] == [d.source for d in docs]


def test_hidden_files_and_folders_are_ignored(corpus: Path) -> None:
    _write(corpus, "a.txt", ARTICLE)
    _write(corpus, ".draft.txt", ARTICLE)
    _write(corpus, ".git/b.txt", ARTICLE)
    _write(corpus, "sub/.cache/c.md", ARTICLE)
    docs = load_corpus(corpus)
    assert [d.source for d in docs] == ["a.txt"]


def test_a_corpus_inside_a_hidden_folder_is_still_read(tmp_path: Path) -> None:
    folder = tmp_path / ".local" / "corpus"
    _write(folder, "a.txt", ARTICLE)
    assert [d.source for d in load_corpus(folder)] == ["a.txt"]


def test_nested_folders_are_read_in_source_order(corpus: Path) -> None:
    _write(corpus, "z.txt", ARTICLE)
    _write(corpus, "sub/x.txt", ARTICLE)
    _write(corpus, "sub/deeper/y.md", ARTICLE)
    _write(corpus, "sub-a/w.txt", ARTICLE)
    _write(corpus, "a.txt", ARTICLE)
    docs = load_corpus(corpus)
    sources = [d.source for d in docs]
    assert sources == sorted(sources)
    assert set(sources) == {"a.txt", "sub-a/w.txt", "sub/deeper/y.md", "sub/x.txt", "z.txt"}
    assert _by_id(docs)["x"].source == "sub/x.txt"
    assert _by_id(docs)["y"].source == "sub/deeper/y.md"


def test_duplicate_stem_keeps_the_first_and_warns(corpus: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    _write(corpus, "a/report.txt", ARTICLE)
    _write(corpus, "b/report.txt", "A Different Article\n\n" + PARAGRAPH)
    _write(corpus, "b/report.md", "Yet Another\n\n" + PARAGRAPH)
    docs = load_corpus(corpus)
    assert [(d.doc_id, d.source) for d in docs] == [("report", "a/report.txt")]
    messages = _warnings(caplog)
    assert len(messages) == 2, messages
    assert all("a/report.txt" in m for m in messages)
    assert any("b/report.txt" in m for m in messages)
    assert any("b/report.md" in m for m in messages)


@pytest.mark.parametrize("content", [b"", b"  \n\t\r\n", "\u00a0\n\u3000\n".encode(), b"\xef\xbb\xbf\n"])
def test_empty_and_blank_files_are_skipped_with_a_warning(
    corpus: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    _write(corpus, "a.txt", ARTICLE)
    _write(corpus, "blank.txt", content)
    assert [d.source for d in load_corpus(corpus)] == ["a.txt"]
    messages = _warnings(caplog)
    assert len(messages) == 1, messages
    assert "blank.txt" in messages[0]


def test_binary_file_is_skipped_with_a_warning(corpus: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    _write(corpus, "a.txt", ARTICLE)
    _write(corpus, "scan.txt", b"\x89PNG\r\n\x00\x01\x02binary\x00 data" * 10)
    assert [d.source for d in load_corpus(corpus)] == ["a.txt"]
    messages = _warnings(caplog)
    assert len(messages) == 1, messages
    assert "scan.txt" in messages[0]
    assert "binary" in messages[0]


def test_a_skipped_duplicate_does_not_block_a_later_readable_one(
    corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    _write(corpus, "a/report.txt", b"\x00\x00binary")
    _write(corpus, "b/report.txt", ARTICLE)
    assert [d.source for d in load_corpus(corpus)] == ["b/report.txt"]


# --------------------------------------------------------------------------- encodings


def test_windows_1252_smart_quotes(corpus: Path) -> None:
    data = b"Harbour Repairs Begin\r\n\r\n\x93We are buying time,\x94 said the engineer \x96 and she was right.\r\n"
    _write(corpus, "cp.txt", data)
    (doc,) = load_corpus(corpus)
    assert doc.encoding == "cp1252"
    assert doc.text == data.decode("cp1252")
    assert "\u201cWe are buying time,\u201d said the engineer \u2013 and" in doc.text
    assert "\r\n" in doc.text
    assert doc.sha256 == hashlib.sha256(data).hexdigest()
    assert doc.title == "Harbour Repairs Begin"


def test_latin1_text(corpus: Path) -> None:
    data = "Caf\u00e9 Owners in Z\u00fcrich Protest\n\nThe caf\u00e9 owners of Z\u00fcrich protested on Monday.\n"
    _write(corpus, "latin.txt", data.encode("latin-1"))
    (doc,) = load_corpus(corpus)
    assert doc.text == data
    # Windows-1252 agrees with Latin-1 on every printable character.
    assert doc.encoding in ("cp1252", "latin-1")
    assert doc.title == "Caf\u00e9 Owners in Z\u00fcrich Protest"


def test_latin1_bytes_that_windows_1252_cannot_read() -> None:
    data = "Caf\u00e9 \u0081 Z\u00fcrich".encode("latin-1")
    assert decode(data) == ("Caf\u00e9 \u0081 Z\u00fcrich", "latin-1")


def test_utf8_is_preferred_and_kept_exactly(corpus: Path) -> None:
    data = "\ufeffIndia\u2019s Reply\r\n\r\nBy Jane Doe\r\n\r\n" + PARAGRAPH + "\r"
    path = _write(corpus, "bom.txt", data)
    (doc,) = load_corpus(corpus)
    assert doc.encoding == "utf-8"
    assert doc.text == path.read_bytes().decode("utf-8") == data
    assert doc.title == "India\u2019s Reply"
    assert doc.author == "Jane Doe"
    for block in doc.blocks:
        assert doc.text[block.start : block.end] == block.text(doc.text)


def test_decode_rejects_nul_bytes() -> None:
    with pytest.raises(ValueError, match="binary"):
        decode(b"text\x00more")


# --------------------------------------------------------------------------- errors


def test_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")


def test_a_file_instead_of_a_folder_raises(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.txt", ARTICLE)
    with pytest.raises(CorpusError):
        load_corpus(path)


def test_folder_without_articles_raises(corpus: Path) -> None:
    _write(corpus, "notes.pdf", ARTICLE)
    _write(corpus, ".hidden.txt", ARTICLE)
    _write(corpus, "a.meta.json", "{}")
    with pytest.raises(CorpusError, match="no readable"):
        load_corpus(corpus)


def test_folder_with_only_unreadable_articles_raises(corpus: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    _write(corpus, "empty.txt", b"")
    _write(corpus, "binary.md", b"\x00\x01")
    with pytest.raises(CorpusError) as info:
        load_corpus(corpus)
    assert isinstance(info.value, QAError)
    assert len(_warnings(caplog)) == 2


def test_read_document_returns_none_for_blank_file(corpus: Path) -> None:
    path = _write(corpus, "blank.md", "\n\n")
    assert read_document(path, corpus) is None


# --------------------------------------------------------------------------- fingerprint


def test_fingerprint_is_stable_when_nothing_changes(corpus_dir: Path, tmp_path: Path) -> None:
    before = corpus_fingerprint(corpus_dir)
    assert corpus_fingerprint(corpus_dir) == before
    # Touching a file, and adding files that are not articles, change nothing.
    first = sorted(corpus_dir.glob("*.txt"))[0]
    first.write_bytes(first.read_bytes())
    _write(corpus_dir, "notes.doc", b"%PDF")
    _write(corpus_dir, "page.xhtml", "<p>x</p>")
    _write(corpus_dir, ".hidden.txt", ARTICLE)
    _write(corpus_dir, ".git/x.txt", ARTICLE)
    _write(corpus_dir, "orphan.meta.json", "{}")  # a sidecar with no article
    assert corpus_fingerprint(corpus_dir) == before
    # The same files in another folder give the same fingerprint.
    copy = tmp_path / "elsewhere"
    shutil.copytree(corpus_dir, copy)
    assert corpus_fingerprint(copy) == before
    assert len(before) == 64


def test_fingerprint_changes_when_bytes_change(corpus_dir: Path) -> None:
    before = corpus_fingerprint(corpus_dir)
    path = sorted(corpus_dir.glob("*.txt"))[2]
    original = path.read_bytes()
    path.write_bytes(original.replace(b"\n", b"\r\n", 1))
    changed = corpus_fingerprint(corpus_dir)
    assert changed != before
    path.write_bytes(original)
    assert corpus_fingerprint(corpus_dir) == before


def test_fingerprint_changes_when_a_sidecar_is_added_or_edited(corpus_dir: Path) -> None:
    before = corpus_fingerprint(corpus_dir)
    stem = sorted(corpus_dir.glob("*.txt"))[0].stem
    sidecar = _write(corpus_dir, f"{stem}.meta.json", json.dumps({"outlet": "A"}))
    with_sidecar = corpus_fingerprint(corpus_dir)
    assert with_sidecar != before
    sidecar.write_text(json.dumps({"outlet": "B"}))
    assert corpus_fingerprint(corpus_dir) not in (before, with_sidecar)
    sidecar.unlink()
    assert corpus_fingerprint(corpus_dir) == before


def test_fingerprint_changes_when_a_file_is_renamed_moved_added_or_removed(corpus_dir: Path) -> None:
    seen = {corpus_fingerprint(corpus_dir)}
    path = sorted(corpus_dir.glob("*.txt"))[1]
    renamed = path.rename(corpus_dir / "renamed.txt")
    seen.add(corpus_fingerprint(corpus_dir))
    (corpus_dir / "sub").mkdir()
    moved = renamed.rename(corpus_dir / "sub" / "renamed.txt")
    seen.add(corpus_fingerprint(corpus_dir))
    _write(corpus_dir, "new.md", ARTICLE)
    seen.add(corpus_fingerprint(corpus_dir))
    moved.unlink()
    seen.add(corpus_fingerprint(corpus_dir))
    assert len(seen) == 5


# --------------------------------------------------------------------------- hostile input


def test_mostly_control_characters_is_binary(corpus: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    _write(corpus, "a.txt", ARTICLE)
    _write(corpus, "dump.txt", bytes(range(1, 32)) * 40 + b"some text")
    assert [d.source for d in load_corpus(corpus)] == ["a.txt"]
    (message,) = _warnings(caplog)
    assert "dump.txt" in message
    assert "binary" in message
    assert "control characters" in message


def test_a_few_control_characters_are_still_text() -> None:
    data = ("Title Line\n\n\x0c" + PARAGRAPH + "\x1b\x07\n").encode()
    assert decode(data) == (data.decode(), "utf-8")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_with_a_byte_order_mark(corpus: Path, encoding: str) -> None:
    text = "India\u2019s Reply to Tokyo\r\n\r\nBy Jane Doe\r\n\r\n" + PARAGRAPH + " Caf\u00e9s closed.\r\n"
    _write(corpus, "wide.txt", "\ufeff".encode(encoding) + text.encode(encoding))
    (doc,) = load_corpus(corpus)
    assert doc.text == text
    assert doc.encoding == encoding[:6]
    assert doc.title == "India\u2019s Reply to Tokyo"
    assert doc.author == "Jane Doe"


def test_utf16_without_a_byte_order_mark_is_skipped_as_binary(corpus: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    _write(corpus, "a.txt", ARTICLE)
    _write(corpus, "wide.txt", ARTICLE.encode("utf-16-le"))
    assert [d.source for d in load_corpus(corpus)] == ["a.txt"]
    assert "wide.txt" in _warnings(caplog)[0]


def test_a_bad_byte_order_mark_is_skipped_with_a_warning(corpus: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    _write(corpus, "a.txt", ARTICLE)
    _write(corpus, "odd.txt", codecs.BOM_UTF16_LE + b"\x00\xd8")  # a lone surrogate
    assert [d.source for d in load_corpus(corpus)] == ["a.txt"]
    (message,) = _warnings(caplog)
    assert "odd.txt" in message
    assert "byte-order mark" in message


def test_utf8_with_stray_windows_1252_bytes(corpus: Path) -> None:
    data = (
        "India\u2019s Reply\n\n".encode()
        + b"\x93We are buying time,\x94 said the engineer \x96 and the caf\xe9 owners agreed. "
        + "Officials in Z\u00fcrich and S\u00e3o Paulo said the same \u2026 on Monday.\n".encode()
    )
    _write(corpus, "mixed.txt", data)
    (doc,) = load_corpus(corpus)
    assert doc.encoding == "utf-8+cp1252"
    assert doc.title == "India\u2019s Reply"
    assert "\u201cWe are buying time,\u201d said the engineer \u2013 and the caf\u00e9 owners" in doc.text
    assert "Z\u00fcrich and S\u00e3o Paulo said the same \u2026 on Monday" in doc.text
    assert doc.sha256 == hashlib.sha256(data).hexdigest()


def test_windows_1252_with_an_accidental_utf8_sequence_stays_windows_1252() -> None:
    text = "Caf\u00e9 cr\u00e8me \u00e0 la fran\u00e7aise, \u00c3\u00a9t\u00e9 \u201cquoted\u201d."
    assert decode(text.encode("cp1252")) == (text, "cp1252")


def test_undefined_windows_1252_bytes_in_utf8_fall_back_to_latin1() -> None:
    data = "\u2019quoted\u2019 ".encode() * 3 + b"\x81 and \x9d"
    assert decode(data) == ("\u2019quoted\u2019 " * 3 + "\x81 and \x9d", "utf-8+cp1252")


@pytest.mark.parametrize("newline", ["\r\n", "\r", "\n", "mixed"])
def test_line_endings_keep_offsets_exact_through_a_build(tmp_path: Path, newline: str) -> None:
    corpus = tmp_path / "corpus"
    lines = ["Harbour Cities Race to Rebuild Sea Walls", "", "By Jane Doe", "", PARAGRAPH, "", PARAGRAPH[::-1] + "."]
    lines += ["", "Second Section", "", "The second section has its own sentence about the harbour walls."]
    if newline == "mixed":
        text = "".join(line + ("\r\n", "\r", "\n")[i % 3] for i, line in enumerate(lines))
    else:
        text = newline.join(lines) + newline
    _write(corpus, "walls.txt", text.encode())
    (doc,) = load_corpus(corpus)
    assert doc.text == text
    assert doc.title == "Harbour Cities Race to Rebuild Sea Walls"
    assert doc.author == "Jane Doe"
    report = build_index(corpus, tmp_path / "index", FakeEmbedder(), ChunkerConfig())
    index = EmbeddedStore.open(tmp_path / "index", expected=None)
    try:
        stored = index.document_text("walls")
        assert stored is not None
        assert stored[0] == text
        passages = index.document_passages("walls")
        assert len(passages) == report.passages >= 2
        for p in passages:
            assert stored[0][p.start : p.end] == p.text
            assert p.text == p.text.strip()
        # The first passage runs over both paragraphs, keeping the file's own line breaks between them.
        second = PARAGRAPH[::-1] + "."
        between = text[text.index(PARAGRAPH) + len(PARAGRAPH) : text.index(second)]
        assert between.strip() == ""
        assert passages[0].text == PARAGRAPH + between + second
        assert passages[-1].section == "Second Section"
    finally:
        index.close()


def test_broken_links_fifos_and_link_loops_are_skipped_with_a_warning(
    corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    _write(corpus, "a.txt", ARTICLE)
    (corpus / "broken.txt").symlink_to(corpus / "nowhere.txt")
    os.mkfifo(corpus / "pipe.txt")
    (corpus / "loop.md").symlink_to(corpus / "loop.md")
    (corpus / "linked.txt").symlink_to(corpus / "a.txt")  # a working link is an article
    docs = load_corpus(corpus)
    assert [d.source for d in docs] == ["a.txt", "linked.txt"]
    messages = sorted(_warnings(caplog))
    assert len(messages) == 3, messages
    broken, loop, pipe = messages
    assert "broken.txt" in broken
    assert "broken symbolic link" in broken
    assert "loop.md" in loop
    assert "cannot be examined" in loop
    assert "pipe.txt" in pipe
    assert "FIFO" in pipe
    assert corpus_fingerprint(corpus) == corpus_fingerprint(corpus)


def test_an_unreadable_file_is_skipped_with_a_warning(
    corpus: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated: tests may run as root, where chmod 000 does not stop a read."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    _write(corpus, "a.txt", ARTICLE)
    locked = _write(corpus, "locked.txt", ARTICLE)
    real_read_bytes = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert [d.source for d in load_corpus(corpus)] == ["a.txt"]
    (message,) = _warnings(caplog)
    assert "locked.txt" in message
    assert "Permission denied" in message
    assert len(corpus_fingerprint(corpus)) == 64
    report = build_index(corpus, corpus.parent / "index", FakeEmbedder(), ChunkerConfig())
    assert report.documents == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_is_skipped(corpus: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    _write(corpus, "a.txt", ARTICLE)
    locked = _write(corpus, "locked.txt", ARTICLE)
    locked.chmod(0)
    try:
        assert [d.source for d in load_corpus(corpus)] == ["a.txt"]
        assert "locked.txt" in _warnings(caplog)[0]
    finally:
        locked.chmod(0o644)


def test_a_build_survives_a_corpus_of_bad_files_around_one_good_article(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    corpus = tmp_path / "corpus"
    _write(corpus, "good.txt", ARTICLE)
    _write(corpus, "good.meta.json", b"{broken")
    _write(corpus, "empty.txt", b"")
    _write(corpus, "binary.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    _write(corpus, "controls.txt", bytes(range(1, 9)) * 100)
    _write(corpus, "bad-bom.txt", codecs.BOM_UTF32_LE + b"\xff\xff\xff\xff")
    (corpus / "broken.txt").symlink_to(tmp_path / "gone.txt")
    os.mkfifo(corpus / "pipe.md")
    report = build_index(corpus, tmp_path / "index", FakeEmbedder(), ChunkerConfig())
    assert report.documents == 1
    skipped = " ".join(_warnings(caplog))
    for name in ("good.meta.json", "empty.txt", "binary.md", "controls.txt", "bad-bom.txt", "broken.txt", "pipe.md"):
        assert name in skipped, name


def test_a_malformed_sidecar_in_a_subfolder_is_named_by_its_path(
    corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    _write(corpus, "sub/harbour.txt", ARTICLE)
    _write(corpus, "sub/harbour.meta.json", b'{"title": ')
    (doc,) = load_corpus(corpus)
    assert doc.title == "Harbour Cities Race to Rebuild Sea Walls"
    (message,) = _warnings(caplog)
    assert "sub/harbour.meta.json" in message
    assert "malformed" in message


# --------------------------------------------------------------------------- very large articles

_WORDS = ["harbour", "engineers", "council", "storms", "barriers", "winters", "repairs", "district", "water"]


def _long_article(megabytes: float, paragraphs: bool = True) -> str:
    """Prose of distinct sentences, in paragraphs or as one line of many megabytes."""
    parts, size, n = [], 0, 0
    while size < megabytes * 1_000_000:
        words = " ".join(_WORDS[(n * 7 + k * 3) % len(_WORDS)] for k in range(16))
        part = " ".join(f"Sentence {n + i} says that the {words} were discussed." for i in range(5))
        parts.append(part)
        size += len(part) + 2
        n += 5
    return "A Very Long Article\n\n" + ("\n\n" if paragraphs else " ").join(parts) + "\n"


def _read_and_chunk_seconds(folder: Path, text: str) -> float:
    path = _write(folder, "long.txt", text)
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        doc = read_document(path, folder)
        assert doc is not None
        Chunker(ChunkerConfig(), window=FakeEmbedder()).chunk(doc)
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize("paragraphs", [True, False], ids=["paragraphs", "one-line"])
def test_reading_and_chunking_cost_grows_linearly(tmp_path: Path, paragraphs: bool) -> None:
    small = _read_and_chunk_seconds(tmp_path / "small", _long_article(0.25, paragraphs))
    large = _read_and_chunk_seconds(tmp_path / "large", _long_article(1.0, paragraphs))
    # Four times the text: linear is 4x, quadratic 16x. The margin absorbs a busy machine.
    assert large / small < 9, (small, large)


LARGE_ARTICLE_DRIVER = """
import resource, sys, time
from pathlib import Path
import numpy as np
from qa.ingest.chunking import ChunkerConfig
from qa.index.location import build_index
from qa.index.embedded.store import EmbeddedStore
from tests.helpers import FakeEmbedder
from tests.ingest.test_documents import _long_article

class CheapEmbedder(FakeEmbedder):
    def embed_batch(self, texts):
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        out[:, 0] = 1.0
        return out

corpus, index_dir = Path(sys.argv[1]), Path(sys.argv[2])
corpus.mkdir()
text = _long_article(50)
(corpus / "huge.txt").write_text(text, encoding="utf-8")
started = time.perf_counter()
report = build_index(corpus, index_dir, CheapEmbedder(), ChunkerConfig())
seconds = time.perf_counter() - started
index = EmbeddedStore.open(index_dir, expected=None)
stored = index.document_text("huge")[0]
passages = index.document_passages("huge")
assert stored == text
assert all(stored[p.start:p.end] == p.text for p in passages[:: max(1, len(passages) // 2000)])
assert passages[-1].end > len(text) - 1000
index.close()
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{len(text) / 1e6:.0f} MB, {report.passages} passages, {seconds:.0f} s, peak {peak_mb:.0f} MB")
"""


def test_a_50_mb_article_is_indexed_in_bounded_time_and_memory(tmp_path: Path) -> None:
    """In a subprocess with a time limit, so a superlinear step fails the test instead of hanging the run."""
    result = subprocess.run(
        [sys.executable, "-c", LARGE_ARTICLE_DRIVER, str(tmp_path / "corpus"), str(tmp_path / "index")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    print(result.stdout)
    peak_mb = float(result.stdout.split("peak ")[1].split()[0])
    assert peak_mb < 4000, result.stdout

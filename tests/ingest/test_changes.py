"""What changed in a corpus folder, found by a stat per file first (qa.ingest.changes)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from qa.ingest.changes import RACY_MARGIN_NS, corpus_files, corpus_fingerprint, scan_corpus
from qa.ingest.documents import Document, read_corpus
from tests.helpers import age
from tests.ingest import makers

ARTICLE = "Harbour Repairs Begin\n\nEngineers began repairing the old sea wall on Monday, officials said.\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    for i in range(4):
        write(folder, f"a{i}.txt", ARTICLE.replace("Monday", f"day {i}"))
    write(folder, "sub/b.md", ARTICLE)
    write(folder, "a1.meta.json", json.dumps({"outlet": "The Harbour Times"}))
    age(folder)
    return folder


def recorded(folder: Path) -> dict[str, Any]:
    """A corpus record as a build's manifest keeps it (through JSON, as it is read back)."""
    scan = scan_corpus(folder)
    return json.loads(json.dumps({"sha256": scan.fingerprint(), **scan.record()}))


def test_an_unchanged_folder_is_checked_without_opening_a_file(corpus: Path, opened: list[str]) -> None:
    record = recorded(corpus)
    assert len(opened) == 6  # the first scan hashes the five articles and the sidecar
    opened.clear()
    scan = scan_corpus(corpus, record)
    assert opened == []
    assert scan.hashed == 0
    assert scan.fingerprint() == record["sha256"] == corpus_fingerprint(corpus)


def test_the_fingerprint_is_the_one_builds_always_recorded(corpus: Path) -> None:
    """Paths and bytes hashed as before the scan existed: a build made then is not stale now."""
    digest = hashlib.sha256()
    for path in corpus_files(corpus):
        for part in (path, path.with_name(path.stem + ".meta.json")):
            if part.is_file():
                digest.update(part.relative_to(corpus).as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(part.read_bytes()).digest())
    assert corpus_fingerprint(corpus, recorded(corpus)) == digest.hexdigest()


def test_a_file_whose_size_or_mtime_changed_is_hashed(corpus: Path, opened: list[str]) -> None:
    record = recorded(corpus)
    write(corpus, "a2.txt", ARTICLE + "A sentence more.\n")  # another size
    same_size = corpus / "a3.txt"
    same_size.write_text(ARTICLE.replace("Monday", "day 9"), encoding="utf-8")  # same size, new mtime
    assert same_size.stat().st_size == int(record["files"]["a3.txt"].split()[0])
    opened.clear()
    scan = scan_corpus(corpus, record)
    assert sorted(opened) == ["a2.txt", "a3.txt"]
    assert scan.fingerprint() != record["sha256"]
    assert scan.fingerprint() == corpus_fingerprint(corpus)


def test_a_racy_file_is_hashed_even_when_its_stat_matches(corpus: Path, opened: list[str]) -> None:
    """A file written within the margin before the recording build read it may have changed unseen."""
    racy = corpus / "a0.txt"
    now = time.time_ns()
    os.utime(racy, ns=(now, now))
    record = recorded(corpus)
    opened.clear()
    scan = scan_corpus(corpus, record)
    assert opened == ["a0.txt"]
    assert scan.fingerprint() == record["sha256"]
    # Safely older than the recorded read: trusted by its stat.
    record["read_at_ns"] = now + RACY_MARGIN_NS + 1
    opened.clear()
    scan_corpus(corpus, record)
    assert opened == []


def test_what_a_stat_cannot_see(corpus: Path) -> None:
    """Same size and the mtime forced back to the recorded one: the old hash is kept (as git's index)."""
    record = recorded(corpus)
    path = corpus / "a3.txt"
    mtime = path.stat().st_mtime_ns
    path.write_text(ARTICLE.replace("Monday", "day 8"), encoding="utf-8")
    os.utime(path, ns=(mtime, mtime))
    assert corpus_fingerprint(corpus, record) == record["sha256"]
    assert corpus_fingerprint(corpus) != record["sha256"]  # read in full, the change shows


def test_sidecars_and_added_and_deleted_files_are_noticed(corpus: Path, opened: list[str]) -> None:
    record = recorded(corpus)
    seen = {record["sha256"]}
    write(corpus, "a1.meta.json", json.dumps({"outlet": "The Harbour Gazette"}))
    seen.add(corpus_fingerprint(corpus, record))
    write(corpus, "a0.meta.json", json.dumps({"title": "Repairs"}))
    seen.add(corpus_fingerprint(corpus, record))
    write(corpus, "new.txt", ARTICLE)
    seen.add(corpus_fingerprint(corpus, record))
    opened.clear()
    (corpus / "a2.txt").unlink()
    seen.add(corpus_fingerprint(corpus, record))
    assert len(seen) == 5
    assert sorted(opened) == ["a0.meta.json", "a1.meta.json", "new.txt"]  # what changed, nothing else
    assert corpus_fingerprint(corpus, record) == corpus_fingerprint(corpus)


def test_an_unreadable_file_counts_by_its_error(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = recorded(corpus)
    write(corpus, "a2.txt", ARTICLE + "More.\n")
    readable = corpus_fingerprint(corpus)
    real = Path.open

    def denied(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.name == "a2.txt":
            raise PermissionError(13, "Permission denied")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", denied)
    scan = scan_corpus(corpus, record)
    assert scan.unreadable == {"a2.txt": 13}
    assert "a2.txt" not in scan.record()["files"]  # hashed again next time, not trusted
    assert scan.fingerprint() not in (record["sha256"], readable)


@pytest.mark.parametrize(
    "damage",
    [{"files": None}, {"read_at_ns": "yesterday"}, {"files": {"a0.txt": "1 2"}}, {"files": {"a0.txt": [1, 2, "x"]}}],
)
def test_a_damaged_record_is_ignored(corpus: Path, opened: list[str], damage: dict[str, Any]) -> None:
    record = {**recorded(corpus), **damage}
    opened.clear()
    assert corpus_fingerprint(corpus, record) == recorded(corpus)["sha256"]
    assert "a0.txt" in opened


def test_the_record_is_compact(corpus: Path) -> None:
    """One short string per file: path, size, mtime_ns, sha256."""
    files = scan_corpus(corpus).record()["files"]
    assert set(files) == {"a0.txt", "a1.txt", "a1.meta.json", "a2.txt", "a3.txt", "sub/b.md"}
    size, mtime_ns, digest = files["a0.txt"].split(" ")
    assert (int(size), int(mtime_ns)) == ((corpus / "a0.txt").stat().st_size, (corpus / "a0.txt").stat().st_mtime_ns)
    assert digest == hashlib.sha256((corpus / "a0.txt").read_bytes()).hexdigest()


def test_a_document_kept_as_json_is_the_document_read(tmp_path: Path) -> None:
    """What the cache keeps gives back every field, the cleaned blocks and a PDF's pages exactly."""
    folder = tmp_path / "mixed"
    makers.write(folder, "report.pdf", makers.report_pdf())
    makers.write(folder, "quay.html", makers.news_page())
    makers.write(folder, "note.txt", "Caf\u00e9 Notes\r\n\r\nBy Ann Lee\n\nThe caf\u00e9 opened on Monday.\n".encode())
    write(folder, "note.meta.json", json.dumps({"url": "https://example.org/note"}))
    for doc in read_corpus(folder).documents:
        kept = Document.from_json(doc.to_json(), doc.doc_id, doc.source)
        assert kept == doc
        assert kept is not None
        assert kept.blocks == doc.blocks
        assert kept.pages == doc.pages
    assert Document.from_json('{"text": 3}', "x", "x.txt") is None
    assert Document.from_json("not json", "x", "x.txt") is None

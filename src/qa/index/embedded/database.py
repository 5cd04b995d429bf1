"""The SQLite side of a build: its schema, writing it, and opening it read-only with its checks.

A passage's ``rowid`` is its position in the build (1..n, documents in corpus order and
passages in reading order); it is also the passage's FAISS id. Neither leaves
:mod:`qa.index`: records carry it as :attr:`PassageRecord.position`, which any other store can
keep as a plain column.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from qa.embedding.base import Vectors
from qa.errors import IndexCorruptError, IndexStoreError
from qa.index.postings import fill_fts, write_postings
from qa.index.records import (
    DOCUMENT_TABLE_COLUMNS,
    PASSAGE_TABLE_COLUMNS,
    SENTENCE_TABLE_COLUMNS,
    encode_pages,
)
from qa.ingest.chunking import Passage
from qa.ingest.cleaning import cleaned_text
from qa.ingest.documents import Document

#: ``([(passage index from 0, start, end), ...], vectors)``: the sentences of a build's passages.
Sentences = tuple[Sequence[tuple[int, int, int]], Vectors]

SCHEMA = f"""
CREATE TABLE documents ({DOCUMENT_TABLE_COLUMNS}
);
CREATE TABLE passages (
    rowid      INTEGER PRIMARY KEY,{PASSAGE_TABLE_COLUMNS},
    UNIQUE (passage_id),
    UNIQUE (doc_id, ordinal),
    FOREIGN KEY (doc_id) REFERENCES documents(doc_id)
);
-- Each passage's sentences as [start, end) in its text, with the model's vector (float32).
CREATE TABLE sentences ({SENTENCE_TABLE_COLUMNS},
    vector     BLOB NOT NULL,
    PRIMARY KEY (position, start),
    FOREIGN KEY (position) REFERENCES passages(rowid)
) WITHOUT ROWID;
"""
PASSAGE_COLUMNS = 'rowid, passage_id, doc_id, ordinal, start, "end", section, n_tokens, text'
DOCUMENT_COLUMNS = "doc_id, source, title, author, url, published, outlet, sha256, encoding, format, pages"


_SQLITE_MAGIC = b"SQLite format 3\0"


#: Bytes of a build's database read through a memory map instead of ``read()`` into SQLite's own
#: page cache (SQLite clamps it to its compile-time limit, 2 GiB by default). A build's database is
#: never written once it is published, so the map cannot go stale. On SciFact the second stage's
#: read of 20 passages' sentences took 0.16 instead of 0.41 ms and 200 passages' ids 0.25 instead
#: of 0.37 ms (docs/benchmarks.md, issue 16 target 2).
READ_MAP_BYTES = 1 << 31


def open_database(path: Path, verify: bool = False) -> sqlite3.Connection:
    """A build's database, read-only and memory-mapped, after its header (and with ``verify``, SQLite's
    ``quick_check`` of every page: 0.08 s on SciFact's 277 MB, left to verification, not to opening)."""
    if not path.is_file():
        raise IndexCorruptError(f"{path} is missing: rebuild with `qa build`")
    check_sqlite_header(path)
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    except sqlite3.DatabaseError as exc:
        raise IndexCorruptError(f"{path} is unreadable ({exc}): rebuild with `qa build`") from None
    with closed_on_error(db, path):
        db.execute(f"PRAGMA mmap_size = {READ_MAP_BYTES}")
        problems = [row[0] for row in db.execute("PRAGMA quick_check(5)").fetchall()] if verify else ["ok"]
        if problems != ["ok"]:
            found = " ".join(" ".join(map(str, problems)).split())
            raise IndexCorruptError(f"{path} is corrupt (SQLite quick_check: {found[:200]}): rebuild with `qa build`")
        db.execute("SELECT COUNT(*) FROM documents").fetchone()
        db.execute("SELECT COUNT(*) FROM passages").fetchone()
    return db


@contextlib.contextmanager
def closed_on_error(db: sqlite3.Connection, path: Path) -> Iterator[None]:
    """Close ``db`` when the block fails; an SQLite error in it is :class:`IndexCorruptError` naming ``path``."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        db.close()
        raise IndexCorruptError(f"{path} is unreadable ({exc}): rebuild with `qa build`") from None
    except BaseException:
        db.close()
        raise


def check_sqlite_header(path: Path) -> None:
    """The 100-byte SQLite header: the magic string, and a file as long as its page count says."""
    with open(path, "rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise IndexCorruptError(f"{path} is not an SQLite database (bad header): rebuild with `qa build`")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count in the header is valid when the change counter matches "version-valid-for".
    if header[24:28] == header[92:96] and pages and path.stat().st_size < page_size * pages:
        raise IndexCorruptError(
            f"{path} is truncated: {path.stat().st_size:,} bytes, its header says {page_size * pages:,}. "
            "Rebuild with `qa build`."
        )


def write_database(
    path: Path, documents: Sequence[Document], passages: Sequence[Passage], sentences: Sentences | None = None
) -> None:
    db = sqlite3.connect(path)
    try:
        db.executescript(SCHEMA)
        if sentences is not None:
            spans, vectors = sentences
            if len(spans) != len(vectors):
                raise IndexStoreError(f"{len(spans)} sentences but {len(vectors)} sentence vectors")
            rows = np.ascontiguousarray(vectors, dtype=np.float32)
            db.executemany(
                "INSERT INTO sentences VALUES (?, ?, ?, ?)",
                [(i + 1, s, e, rows[n].tobytes()) for n, (i, s, e) in enumerate(spans)],
            )
        cleaned = [cleaned_text(d.text, list(d.blocks)) for d in documents]
        db.executemany(
            f"INSERT INTO documents ({DOCUMENT_COLUMNS}, text, cleaned) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    d.doc_id,
                    d.source,
                    d.title,
                    d.author,
                    d.url,
                    d.published,
                    d.outlet,
                    d.sha256,
                    d.encoding,
                    d.format,
                    encode_pages(d.pages),
                    d.text,
                    c,
                )
                for d, c in zip(documents, cleaned, strict=True)
            ],
        )
        db.executemany(
            f"INSERT INTO passages ({PASSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (rowid, p.passage_id, p.doc_id, p.ordinal, p.start, p.end, p.section, p.n_tokens, p.text)
                for rowid, p in enumerate(passages, start=1)
            ],
        )
        # Cut by FTS5 into its tables (kept as the derivation's input), then the postings read out of them.
        fill_fts(db, documents, cleaned, passages)
        write_postings(db, len(passages), len(documents))
        db.commit()
    finally:
        db.close()

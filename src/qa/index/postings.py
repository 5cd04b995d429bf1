"""The lexical side of a build: FTS5 cuts the text into terms, and each term's postings are read out of its index.

One tokenizer serves both stores, builds and questions alike: SQLite FTS5's own ``porter
unicode61`` (:data:`TOKENIZE`), run in the process through :mod:`sqlite3`. A build fills two
FTS5 tables (:data:`FTS_TABLES`): ``passages_fts`` (a row per passage: its document's title,
its text) and ``documents_fts`` (a row per document: its title, its cleaned text, or its text
where cleaning left nothing), rows numbered by position in the build (:func:`fill_fts`). Each
term FTS5 indexed is then read out of its index (an ``fts5vocab`` table) as the rows holding it,
positions ascending, with its count in the title and text columns, and each row's length in
tokens (:func:`term_lists`). The embedded build does this in its own database and keeps the
lists there (:func:`write_postings`, read back through :class:`StoredPostings`); the PostgreSQL
build does it in a temporary SQLite file and copies the lists into its schema
(:mod:`qa.index.postgres.loading`). A question's terms are cut by the same tokenizer
(:func:`fts5_tokens`), and :mod:`qa.index.bm25` scores the lists for both stores.

Why FTS5's own index and not a rewrite of its tokenizer: the rewrite this replaced (Python with
PyStemmer's Porter) stemmed "pathology" to "pathologi" where FTS5 has "patholog", which moved
17 of SciFact's 1,109 queries; here every term and count is FTS5's by construction.

The FTS5 tables stay in the embedded build's database as the input of the derivation (and the
reference the tests check the scores against); no question reads them.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from qa.ingest.chunking import Passage
from qa.ingest.documents import Document

#: How FTS5 cuts passages, documents and questions into terms (the ``tokenize`` option of its tables).
TOKENIZE = "porter unicode61"
#: The build's FTS5 tables: contentless (the text lives in the store's own tables), two columns each.
FTS_TABLES = f"""
CREATE VIRTUAL TABLE passages_fts USING fts5(title, text, content='', tokenize='{TOKENIZE}');
CREATE VIRTUAL TABLE documents_fts USING fts5(title, text, content='', tokenize='{TOKENIZE}');
"""
#: The names of the two sets of postings, in both stores: ``<name>`` holds the lists and
#: ``<name>_stats`` one row of statistics.
PASSAGES, DOCUMENTS = "postings", "document_postings"
#: Each set's FTS5 table.
SOURCES = {PASSAGES: "passages_fts", DOCUMENTS: "documents_fts"}
#: The embedded build's tables for one set (``{name}``).
SCHEMA = """
-- Each term FTS5 indexed: the positions of the rows holding it (int32, ascending) and its
-- count in their title and text columns (int32 each).
CREATE TABLE {name} (
    term       TEXT PRIMARY KEY,
    positions  BLOB NOT NULL,
    title_tf   BLOB NOT NULL,
    text_tf    BLOB NOT NULL
);
-- One row: the rows (passages or documents), their tokens in all, and each row's tokens
-- (int32, index = position, 0 unused).
CREATE TABLE {name}_stats (
    rows       INTEGER NOT NULL,
    tokens     INTEGER NOT NULL,
    lengths    BLOB NOT NULL
);
"""
#: Rows of the vocabulary read per fetch while a build derives the postings.
_FETCH = 65_536
#: Query terms whose FTS5 tokens are remembered: a question's words recur, and each new one
#: costs an insert into a scratch FTS5 table (about 0.05 ms); 65,536 short strings, a few MiB.
_TOKEN_CACHE = 65_536
_scratch = threading.local()


@functools.lru_cache(maxsize=_TOKEN_CACHE)
def fts5_tokens(term: str) -> tuple[str, ...]:
    """The tokens FTS5 (``tokenize`` :data:`TOKENIZE`) cuts ``term`` into, in order."""
    db: sqlite3.Connection | None = getattr(_scratch, "db", None)
    if db is None:
        db = sqlite3.connect(":memory:")
        db.execute(f"CREATE VIRTUAL TABLE scratch USING fts5(x, tokenize='{TOKENIZE}')")
        db.execute("CREATE VIRTUAL TABLE scratch_vocab USING fts5vocab(scratch, instance)")
        _scratch.db = db
    with db:
        db.execute("INSERT INTO scratch (rowid, x) VALUES (1, ?)", (term,))
        found = tuple(str(t) for (t,) in db.execute("SELECT term FROM scratch_vocab WHERE doc = 1 ORDER BY offset"))
        db.execute("DELETE FROM scratch WHERE rowid = 1")
    return found


def fill_fts(
    db: sqlite3.Connection, documents: Sequence[Document], cleaned: Sequence[str], passages: Sequence[Passage]
) -> None:
    """Create the FTS5 tables in ``db`` and cut the build's text into them, rows numbered 1..n in build
    order: each passage with its document's title, each document's title with ``cleaned`` (its cleaned
    text, in the same order) or its text where that is empty."""
    db.executescript(FTS_TABLES)
    titles = {d.doc_id: d.title for d in documents}
    db.executemany(
        "INSERT INTO passages_fts (rowid, title, text) VALUES (?, ?, ?)",
        ((n, titles.get(p.doc_id, ""), p.text) for n, p in enumerate(passages, start=1)),
    )
    db.executemany(
        "INSERT INTO documents_fts (rowid, title, text) VALUES (?, ?, ?)",
        ((n, d.title, c or d.text) for n, (d, c) in enumerate(zip(documents, cleaned, strict=True), start=1)),
    )


def term_lists(db: sqlite3.Connection, table: str, lengths: np.ndarray) -> Iterator[tuple[str, bytes, bytes, bytes]]:
    """Each term FTS5 indexed in ``table`` (of :data:`SOURCES`): ``(term, positions, title_tf, text_tf)``
    as int32 bytes, positions ascending; each row's tokens are added to ``lengths`` (index = rowid)
    on the way, so they are whole once the last list is out."""
    vocab = f"temp.{table}_vocab"
    db.execute(f"CREATE VIRTUAL TABLE {vocab} USING fts5vocab(main, {table}, instance)")
    # One row per token occurrence, ordered by term, then row, column and offset.
    reader = db.execute(f"SELECT term, doc, col = 'text' FROM {vocab}")  # noqa: S608
    term: str | None = None
    docs: list[int] = []
    in_text: list[int] = []
    while rows := reader.fetchmany(_FETCH):
        for found, doc, text in rows:
            if found != term:
                if term is not None:
                    yield _one_list(term, docs, in_text, lengths)
                term, docs, in_text = found, [], []
            docs.append(doc)
            in_text.append(text)
    if term is not None:
        yield _one_list(term, docs, in_text, lengths)
    db.execute(f"DROP TABLE {vocab}")


def _one_list(term: str, docs: list[int], in_text: list[int], lengths: np.ndarray) -> tuple[str, bytes, bytes, bytes]:
    """One term's list from its occurrences (row of each, and whether it is in the text column)."""
    rows = np.asarray(docs, dtype=np.int32)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(rows)) + 1))
    counts = np.diff(np.append(starts, len(rows))).astype(np.int32)
    text_tf = np.add.reduceat(np.asarray(in_text, dtype=np.int32), starts).astype(np.int32)
    positions = rows[starts]
    lengths[positions] += counts
    return term, positions.tobytes(), (counts - text_tf).tobytes(), text_tf.tobytes()


def statistics(rows: int, lengths: np.ndarray) -> tuple[int, int, bytes]:
    """A set's one row of statistics: its rows, their tokens in all, each row's tokens (int32 bytes)."""
    return rows, int(lengths.sum()), lengths.astype(np.int32).tobytes()


def write_postings(db: sqlite3.Connection, passages: int, documents: int) -> None:
    """Write the postings of ``db``'s FTS5 tables (``passages`` and ``documents`` rows) into its own tables."""
    for name, rows in ((PASSAGES, passages), (DOCUMENTS, documents)):
        db.executescript(SCHEMA.format(name=name))
        lengths = np.zeros(rows + 1, dtype=np.int32)
        db.executemany(f"INSERT INTO {name} VALUES (?, ?, ?, ?)", term_lists(db, SOURCES[name], lengths))  # noqa: S608
        db.execute(f"INSERT INTO {name}_stats VALUES (?, ?, ?)", statistics(rows, lengths))  # noqa: S608


class Reader(Protocol):
    """What the embedded build's postings are read through: :meth:`qa.index.embedded.queries.BuildDatabase.query`."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class StoredPostings:
    """One set of postings in an embedded build's database, as :class:`qa.index.bm25.PostingsReader` reads them."""

    def __init__(self, reader: Reader, name: str) -> None:
        if name not in SOURCES:
            raise ValueError(f"no postings named {name!r}")
        self._reader = reader
        self._name = name

    def statistics(self) -> tuple[int, int, bytes]:
        rows, tokens, lengths = self._reader.query(f"SELECT rows, tokens, lengths FROM {self._name}_stats")[0]  # noqa: S608
        return int(rows), int(tokens), bytes(lengths)

    def lists(self, tokens: Sequence[str]) -> Iterable[tuple[str, bytes, bytes, bytes]]:
        marks = ",".join("?" * len(tokens))
        sql = f"SELECT term, positions, title_tf, text_tf FROM {self._name} WHERE term IN ({marks})"  # noqa: S608
        return [(str(t), p, a, b) for t, p, a, b in self._reader.query(sql, list(tokens))]

"""The lexical side of a build: FTS5's tokenizer, and the postings read out of its index."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import numpy as np
import pytest

from qa.config import Settings
from qa.index.embedded.store import EmbeddedStore
from qa.index.postings import DOCUMENTS, PASSAGES, StoredPostings, fts5_tokens, term_lists
from tests.helpers import FakeEmbedder
from tests.helpers import open_index as _open


@pytest.fixture
def index(built: Settings, fake_embedder: FakeEmbedder) -> Iterator[EmbeddedStore]:
    """The seeds' build (closed after the test)."""
    opened = _open(built, fake_embedder)
    yield opened
    opened.close()


def test_fts5_stems_as_fts5_does_not_as_the_original_porter_algorithm() -> None:
    # Porter as FTS5 implements it ("patholog"); the original algorithm (PyStemmer) gives "pathologi".
    assert fts5_tokens("pathology") == ("patholog",)
    assert fts5_tokens("Elections") == ("elect",)
    assert fts5_tokens("elected") == ("elect",)


def test_fts5_folds_case_and_removes_diacritics() -> None:
    assert fts5_tokens("PATHOLOGY") == fts5_tokens("Pathology") == ("patholog",)
    assert fts5_tokens("Ánnwriter") == ("annwrit",)
    assert fts5_tokens("café") == ("cafe",)
    assert fts5_tokens("über") == ("uber",)


def test_fts5_stems_tokens_of_3_to_64_characters_only() -> None:
    # Porter would cut "as" to "a"; FTS5 passes a token under 3 characters through.
    assert fts5_tokens("as") == ("as",)
    assert fts5_tokens("ies") == ("ie",)
    assert fts5_tokens("x" * 63 + "s") == ("x" * 63,)
    assert fts5_tokens("x" * 64 + "s") == ("x" * 64 + "s",)


def test_fts5_splits_at_underscores_hyphens_and_dots() -> None:
    assert fts5_tokens("asian-nato") == ("asian", "nato")
    assert fts5_tokens("foo_bar") == ("foo", "bar")
    assert fts5_tokens("e.g") == ("e", "g")
    assert fts5_tokens("") == ()


def test_the_build_records_each_row_length_in_tokens_as_fts5_counts_them(index: EmbeddedStore) -> None:
    for name, table, rows in (
        (PASSAGES, "passages_fts", index.passage_count),
        (DOCUMENTS, "documents_fts", len(index.documents())),
    ):
        stored, total, lengths = StoredPostings(index._db, name).statistics()
        sizes = index._db.query(f"SELECT id, sz FROM {table}_docsize ORDER BY id")  # noqa: S608
        expected = np.array([0] + [sum(_varints(blob)) for _, blob in sizes], dtype=np.int32)
        assert stored == rows == len(sizes)
        assert np.array_equal(np.frombuffer(lengths, dtype=np.int32), expected)
        assert total == expected.sum()


def _varints(blob: bytes) -> list[int]:
    """SQLite's varints (7 bits a byte, most significant first; the high bit says more follow),
    as FTS5 stores each row's column sizes."""
    found, value = [], 0
    for byte in blob:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            found.append(value)
            value = 0
    return found


def test_each_list_holds_the_rows_and_counts_fts5_indexed() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE passages_fts USING fts5(title, text, content='', tokenize='porter unicode61')")
    rows = [("Elections", "The election was held; elections follow."), ("Quad", "An Asian NATO?"), ("", "")]
    db.executemany(
        "INSERT INTO passages_fts (rowid, title, text) VALUES (?, ?, ?)", [(n, *r) for n, r in enumerate(rows, 1)]
    )
    lengths = np.zeros(len(rows) + 1, dtype=np.int32)
    lists = {
        t: [np.frombuffer(b, dtype=np.int32).tolist() for b in x] for t, *x in term_lists(db, "passages_fts", lengths)
    }
    assert lists["elect"] == [[1], [1], [2]]
    assert lists["asian"] == [[2], [0], [1]]
    assert lists["the"] == [[1], [0], [1]]
    assert lengths.tolist() == [0, 7, 4, 0]
    # The vocabulary table is the derivation's own: it is gone afterwards.
    assert not db.execute("SELECT name FROM temp.sqlite_master WHERE name LIKE '%vocab%'").fetchall()

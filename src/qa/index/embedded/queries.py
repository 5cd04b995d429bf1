"""The SQL the embedded store reads a build with: passages, documents, sentences, filters.

Everything here speaks in passage positions (the rowids 1..n that are also the FAISS ids);
:class:`~qa.index.embedded.store.EmbeddedStore` turns them into passage ids before anything leaves the store.
BM25 is not SQL: the store scores the postings it reads (:mod:`qa.index.bm25`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from qa.embedding.base import Vectors
from qa.index.embedded.database import DOCUMENT_COLUMNS, PASSAGE_COLUMNS
from qa.index.filters import Filters, fold
from qa.index.records import DocumentRecord, PassageRecord

#: The SQL function filters compare author and outlet through (Python's case folding, which
#: SQLite's ASCII-only ``lower`` is not).
_FOLD = "qa_fold"
#: The passages of the documents a condition made by :func:`filter_condition` allows. The documents
#: are found first and their passages through the index on ``passages(doc_id, ordinal)``; a join
#: made SQLite scan every passage and test its document's condition once per passage (at 1M
#: passages, an author filter's allowed set took 0.89-0.96 s that way, 0.20-0.37 s this way).
_ALLOWED = "SELECT p.rowid FROM passages p WHERE p.doc_id IN (SELECT d.doc_id FROM documents d WHERE {condition})"


def filter_condition(filters: Filters) -> tuple[str, list[Any]]:
    """A condition on ``documents d`` that holds for the documents ``filters`` allow."""
    clauses: list[str] = []
    params: list[Any] = []
    if filters.doc_ids is not None:
        clauses.append(f"d.doc_id IN ({','.join('?' * len(filters.doc_ids))})" if filters.doc_ids else "0")
        params.extend(filters.doc_ids)
    if filters.author is not None and fold(filters.author):
        clauses.append(f"instr({_FOLD}(coalesce(d.author, '')), ?) > 0")
        params.append(fold(filters.author))
    if filters.outlet is not None:
        clauses.append(f"{_FOLD}(coalesce(d.outlet, '')) = ?")
        params.append(fold(filters.outlet))
    published = "substr(coalesce(d.published, ''), 1, 10)"
    if filters.published_from is not None or filters.published_to is not None:
        clauses.append(f"{published} <> ''")
    if filters.published_from is not None:
        clauses.append(f"{published} >= ?")
        params.append(filters.published_from)
    if filters.published_to is not None:
        clauses.append(f"{published} <= ?")
        params.append(filters.published_to)
    return " AND ".join(clauses) or "1", params


class BuildDatabase:
    """One build's ``passages.sqlite``, opened read-only and shared by request threads."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._lock = threading.Lock()
        db.create_function(_FOLD, 1, fold, deterministic=True)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- passages ----------------------------------------------------------------------------

    def passages(self, passage_ids: Sequence[str]) -> list[PassageRecord]:
        """Passages by id, in the order asked (unknown ids are left out)."""
        if not passage_ids:
            return []
        marks = ",".join("?" * len(passage_ids))
        rows = self.query(f"SELECT {PASSAGE_COLUMNS} FROM passages WHERE passage_id IN ({marks})", list(passage_ids))
        found = {record.passage_id: record for record in (PassageRecord(*row) for row in rows)}
        return [found[p] for p in passage_ids if p in found]

    def identify(self, positions: Sequence[int]) -> dict[int, tuple[str, str]]:
        """The passage id and document id at each of these positions."""
        if not positions:
            return {}
        marks = ",".join("?" * len(positions))
        rows = self.query(f"SELECT rowid, passage_id, doc_id FROM passages WHERE rowid IN ({marks})", list(positions))
        return {int(r): (str(p), str(d)) for r, p, d in rows}

    def positions(self, passage_ids: Sequence[str]) -> dict[str, int]:
        if not passage_ids:
            return {}
        marks = ",".join("?" * len(passage_ids))
        rows = self.query(f"SELECT passage_id, rowid FROM passages WHERE passage_id IN ({marks})", list(passage_ids))
        return {str(p): int(r) for p, r in rows}

    def allowed(self, filters: Filters) -> list[int]:
        """Positions of every passage of the documents ``filters`` allow."""
        condition, params = filter_condition(filters)
        sql = _ALLOWED.format(condition=condition)
        return [int(r) for (r,) in self.query(sql, params)]

    def neighbours(self, passage: PassageRecord) -> tuple[str | None, str | None]:
        rows = self.query(
            "SELECT ordinal, passage_id FROM passages WHERE doc_id = ? AND ordinal IN (?, ?)",
            [passage.doc_id, passage.ordinal - 1, passage.ordinal + 1],
        )
        found = dict(rows)
        return found.get(passage.ordinal - 1), found.get(passage.ordinal + 1)

    def sentences(self, positions: dict[str, int]) -> dict[str, tuple[list[tuple[int, int]], Vectors]]:
        """Each passage's sentences (offsets into its text, in order) and their stored vectors, for
        passages given as ``{passage_id: position}``."""
        out: dict[str, tuple[list[tuple[int, int]], Vectors]] = {}
        if not positions:
            return out
        marks = ",".join("?" * len(positions))
        rows = self.query(
            f'SELECT position, start, "end", vector FROM sentences WHERE position IN ({marks}) '
            "ORDER BY position, start",
            list(positions.values()),
        )
        ids = {position: passage_id for passage_id, position in positions.items()}
        grouped: dict[str, list[tuple[int, int, bytes]]] = {}
        for position, start, end, blob in rows:
            grouped.setdefault(ids[int(position)], []).append((int(start), int(end), blob))
        for passage_id, items in grouped.items():
            vectors = np.frombuffer(b"".join(blob for _, _, blob in items), dtype=np.float32)
            out[passage_id] = ([(s, e) for s, e, _ in items], vectors.reshape(len(items), -1))
        return out

    # -- documents -------------------------------------------------------------------------------

    def documents(self) -> dict[str, DocumentRecord]:
        rows = self.query(
            f"SELECT {DOCUMENT_COLUMNS}, (SELECT COUNT(*) FROM passages p WHERE p.doc_id = d.doc_id) "
            "FROM documents d ORDER BY source"
        )
        return {row[0]: DocumentRecord.from_row(row) for row in rows}

    def document_positions(self) -> dict[str, int]:
        """Each document's position (its rowid: 1..n in corpus order), the row its postings name."""
        return {str(d): int(r) for r, d in self.query("SELECT rowid, doc_id FROM documents")}

    def document_text(self, doc_id: str) -> tuple[str, str] | None:
        """A document's original text and its cleaned text."""
        rows = self.query("SELECT text, cleaned FROM documents WHERE doc_id = ?", [doc_id])
        return (rows[0][0], rows[0][1]) if rows else None

    def document_passages(self, doc_id: str) -> list[PassageRecord]:
        rows = self.query(f"SELECT {PASSAGE_COLUMNS} FROM passages WHERE doc_id = ? ORDER BY ordinal", [doc_id])
        return [PassageRecord(*row) for row in rows]

"""The embedded store: one build opened from disk, FAISS for vectors and SQLite for the rest.

:class:`EmbeddedStore` implements :class:`~qa.index.protocol.PassageStore`. Inside it a passage is
its position 1..n (the FAISS id and the SQLite rowid); everything it returns names passages
by id. Filters become SQL over the documents table, and the passages they allow become a
FAISS selector (see :func:`qa.index.embedded.vectors.search_vectors`) and a mask over the lexical
postings. Lexical scores, of passages and of whole documents, come from the postings the
build keeps in its database, scored by :mod:`qa.index.bm25` as the PostgreSQL store scores
its own copy; FTS5's ``bm25()`` is not asked.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.embedding.base import Vectors
from qa.errors import IndexCorruptError
from qa.index.bm25 import BuildBM25
from qa.index.embedded.database import closed_on_error, open_database
from qa.index.embedded.folder import current_build_id
from qa.index.embedded.integrity import check_files
from qa.index.embedded.layout import DATABASE, VECTORS
from qa.index.embedded.queries import BuildDatabase
from qa.index.embedded.vectors import (
    allowed_vectors,
    half_scan,
    id_bitmap,
    read_vectors,
    reconstruct,
    scored_exactly,
    search_vectors,
)
from qa.index.filters import Filters
from qa.index.manifest import (
    BuildIdentity,
    Manifest,
    check_compatible,
    check_manifest,
    read_manifest,
)
from qa.index.open_build import OpenBuild
from qa.index.postings import DOCUMENTS, PASSAGES, StoredPostings
from qa.index.protocol import ScoredPassage, SentenceVectors, Weights, best_first
from qa.index.records import DocumentRecord, PassageRecord

#: Passage positions remembered per request thread (:meth:`EmbeddedStore._positions`): a question's
#: candidates are at most a few hundred (both sides' fusion depth), so this holds the last
#: few questions' and costs well under a megabyte.
_KNOWN_POSITIONS = 4096
#: Filters whose allowed passages every request thread shares (:meth:`EmbeddedStore._allowed`): finding
#: them tests every document (a filter's first question took 0.25-0.4 s at 1M passages;
#: docs/scaling.md), which each of the server's worker threads (anyio's pool, up to 40) would
#: otherwise pay again for the same filter. A 20% filter of 1M takes about 8 MiB (estimated: a
#: list of 200,000 ints, a mask and a bitmap); a filter small enough to be scored exactly also
#: keeps its passages' vectors, at most 29 MiB (EXACT_FILTER_LIMIT x 384 floats).
_ALLOWED_CACHED = 4


class EmbeddedStore(OpenBuild):
    """One open build: vectors in FAISS, passages and documents in SQLite."""

    def __init__(self, path: Path, manifest: Manifest, db: sqlite3.Connection, vectors: Any) -> None:
        self.path = path
        self._manifest = manifest
        self._db = BuildDatabase(db)
        self._vectors = vectors
        self.vector_spec = manifest.vectors
        #: The fp16 copy a large flat index is scanned through (``None``: searched as it is).
        self._half = half_scan(vectors, self.vector_spec)
        self._documents = self._db.documents()
        #: The build's BM25 over its postings of passages and of whole documents (bounded by the query's terms).
        self._bm25 = BuildBM25(
            StoredPostings(self._db, PASSAGES), StoredPostings(self._db, DOCUMENTS), self._db.document_positions
        )
        #: Per request thread: the last filter's allowed positions and the positions of the
        #: passages the searches last returned (see :meth:`_positions`).
        self._recent = threading.local()
        #: The allowed passages of the last few filters, shared by the threads (see :meth:`_allowed`).
        self._allowed_by_filter: dict[Filters, _Allowed] = {}
        self._allowed_lock = threading.Lock()

    @classmethod
    def open(cls, index_dir: Path, expected: BuildIdentity | None) -> EmbeddedStore:
        """Open the build CURRENT names, refusing one made with another model or chunker.

        ``expected`` is required: the identity of the embedder that will query the build
        (invariant 6). ``None`` trusts the build and is only for a reader with no embedder
        at all (``qa verify`` reads text, never vectors).
        """
        return cls.open_build(index_dir / current_build_id(index_dir), expected)

    @classmethod
    def open_build(cls, build_dir: Path, expected: BuildIdentity | None) -> EmbeddedStore:
        """Open one build folder, checking that it is whole and was made the way ``expected`` says.

        Checked, each failure with a message naming the problem and the fix: the manifest
        (present, JSON, the fields a build writes), compatibility with ``expected``, both data
        files present with the size the build recorded, the SQLite header, the FAISS index type,
        dimension and ids, and that vectors, passages and the manifest agree on the count. Not every
        byte: the files' sha256 and ``PRAGMA quick_check`` are :meth:`IndexFolder.verify_commit`'s
        (:mod:`qa.index.embedded.integrity` says why opening leaves them out).
        """
        raw = read_manifest(build_dir)
        check_compatible(raw, expected, str(build_dir))
        check_manifest(build_dir, raw)
        check_files(build_dir, raw)
        db = open_database(build_dir / DATABASE)
        with closed_on_error(db, build_dir / DATABASE):
            vectors = read_vectors(build_dir / VECTORS, raw.get("vectors"))
            store = cls(build_dir, Manifest.from_json(raw, build_dir), db, vectors)
            store._check_counts()
        return store

    # -- build identity ------------------------------------------------------------------------

    @property
    def passage_count(self) -> int:
        return int(self._vectors.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._vectors.d)

    def close(self) -> None:
        self._db.close()

    # -- retrieval --------------------------------------------------------------------------

    def dense(self, query: Vectors, k: int, filters: Filters | None = None) -> list[ScoredPassage]:
        allowed = self._allowed(filters)
        if allowed is not None and not allowed.positions:
            return []
        if allowed is None:
            hits = search_vectors(self._vectors, self.vector_spec, query, k, None, self._half)
        elif scored_exactly(self.vector_spec, len(allowed.positions), self.passage_count):
            exact = allowed.vectors(self._vectors)
            hits = search_vectors(self._vectors, self.vector_spec, query, k, allowed.positions, exact=exact)
        else:
            bitmap = allowed.bitmap(self.passage_count)
            hits = search_vectors(self._vectors, self.vector_spec, query, k, allowed.positions, self._half, bitmap)
        # FAISS leaves equal scores in heap order; the protocol breaks ties by passage id.
        return best_first(self._scored(hits), k)

    def lexical(
        self, terms: Sequence[str], k: int, weights: Weights, filters: Filters | None = None
    ) -> list[ScoredPassage]:
        def mask() -> np.ndarray | None:
            allowed = self._allowed(filters)
            return None if allowed is None else allowed.mask(self.passage_count)

        return best_first(self._scored(self._bm25.top(terms, k, weights, mask)), k)

    # -- passages and documents -------------------------------------------------------------

    def passages(self, passage_ids: Sequence[str]) -> list[PassageRecord]:
        return self._db.passages(passage_ids)

    def neighbours(self, passage: PassageRecord) -> tuple[str | None, str | None]:
        return self._db.neighbours(passage)

    def sentences(self, passage_ids: Sequence[str]) -> dict[str, SentenceVectors]:
        return {p: SentenceVectors(*found) for p, found in self._db.sentences(self._positions(passage_ids)).items()}

    def documents(self) -> list[DocumentRecord]:
        return list(self._documents.values())

    def document(self, doc_id: str) -> DocumentRecord | None:
        return self._documents.get(doc_id)

    def document_text(self, doc_id: str) -> tuple[str, str] | None:
        return self._db.document_text(doc_id)

    def document_passages(self, doc_id: str) -> list[PassageRecord]:
        return self._db.document_passages(doc_id)

    # -- internals -----------------------------------------------------------------------

    def _located(self, passage_ids: Sequence[str], query: Vectors | None) -> tuple[dict[str, int], dict[str, float]]:
        positions = self._positions(passage_ids)
        ids = [p for p in dict.fromkeys(passage_ids) if p in positions]
        if query is None or not ids:
            return positions, {}
        values = reconstruct(self._vectors, [positions[p] for p in ids]) @ query
        return positions, {p: float(c) for p, c in zip(ids, values, strict=True)}

    def _allowed(self, filters: Filters | None) -> _Allowed | None:
        """The passages ``filters`` allow (``None``: no filter). The last few filters' answers are
        shared by the threads; each thread also keeps its last one."""
        if filters is None or not filters.active():
            return None
        last: _Allowed | None = getattr(self._recent, "allowed", None)
        if last is None or last.filters != filters:
            with self._allowed_lock:
                last = self._allowed_by_filter.get(filters)
            if last is None:
                positions = self._db.allowed(filters)
                last = _Allowed(filters, positions)
                with self._allowed_lock:
                    if len(self._allowed_by_filter) >= _ALLOWED_CACHED:
                        del self._allowed_by_filter[next(iter(self._allowed_by_filter))]
                    self._allowed_by_filter[filters] = last
            self._recent.allowed = last
        return last

    def _scored(self, hits: Sequence[tuple[int, float]]) -> list[ScoredPassage]:
        ids = self._db.identify([position for position, _ in hits])
        known = self._known()
        if len(known) > _KNOWN_POSITIONS:
            known.clear()
        known.update((ids[position][0], position) for position, _ in hits)
        return [ScoredPassage(*ids[position], position, score) for position, score in hits]

    def _known(self) -> dict[str, int]:
        known: dict[str, int] | None = getattr(self._recent, "positions", None)
        if known is None:
            known = self._recent.positions = {}
        return known

    def _positions(self, passage_ids: Sequence[str]) -> dict[str, int]:
        """Each passage's position: the searches just returned most of them (a build never changes,
        so a position remembered is never stale); the database is asked only for the rest."""
        known = self._known()
        found = {p: known[p] for p in passage_ids if p in known}
        missing = [p for p in passage_ids if p not in found]
        if missing:
            found.update(self._db.positions(missing))
        return found

    def _check_counts(self) -> None:
        stored, low, high = self._db.query("SELECT COUNT(*), MIN(rowid), MAX(rowid) FROM passages")[0]
        expected = self._manifest.passages
        if stored != self.passage_count or stored != expected:
            raise IndexCorruptError(
                f"{self.path} is inconsistent: {self.passage_count} vectors, {stored} passages in the "
                f"database, {expected} in the manifest. Rebuild with `qa build`."
            )
        if stored and (low, high) != (1, stored):
            raise IndexCorruptError(
                f"{self.path / DATABASE} numbers its passages {low}..{high}, not 1..{stored} as the vectors "
                "do. Rebuild with `qa build`."
            )
        if self._manifest.model.dimension != self.dimension:
            raise IndexCorruptError(
                f"{self.path / VECTORS} holds {self.dimension}-dimensional vectors but the manifest says "
                f"{self._manifest.model.dimension}. Rebuild with `qa build`."
            )


@dataclass(frozen=True)
class _Allowed:
    """The passages one filter allows: a list, and (made on first use) a mask for the lexical side,
    a bitmap for FAISS's selector, or, for a filter whose dense search scores its passages exactly,
    their stored vectors (at most EXACT_FILTER_LIMIT: 29 MiB)."""

    filters: Filters
    positions: list[int]
    _mask: list[np.ndarray] = field(default_factory=list, compare=False)
    _bitmap: list[np.ndarray] = field(default_factory=list, compare=False)
    _vectors: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list, compare=False)

    def mask(self, passages: int) -> np.ndarray:
        """The allowed positions as a mask indexed by position (0..passages), made once."""
        if not self._mask:
            mask = np.zeros(passages + 1, dtype=bool)
            mask[self.positions] = True
            self._mask.append(mask)
        return self._mask[0]

    def bitmap(self, passages: int) -> np.ndarray:
        """The allowed positions as FAISS's selector bitmap (made once; see ``id_bitmap``)."""
        if not self._bitmap:
            self._bitmap.append(id_bitmap(self.positions, passages))
        return self._bitmap[0]

    def vectors(self, index: Any) -> tuple[np.ndarray, np.ndarray]:
        """The allowed passages' stored vectors in ``index`` (read once; see ``allowed_vectors``)."""
        if not self._vectors:
            self._vectors.append(allowed_vectors(index, self.positions))
        return self._vectors[0]

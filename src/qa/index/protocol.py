"""What search, citations and the API need from a store of passages: :class:`PassageStore`.

The verbs are in the service's vocabulary (passages, documents, filters, terms), never an
engine's: no FAISS ids, no SQL, no FTS5 syntax cross this line. Two stores implement it: the
embedded FAISS + SQLite build (:class:`qa.index.embedded.store.EmbeddedStore`) and PostgreSQL +
pgvector (:class:`qa.index.postgres.store.PostgresStore`), each answering the same calls with its
own queries; what they answer alike is written once (:class:`qa.index.open_build.OpenBuild`).

Ties: lists a store returns best first break equal scores by passage id (:func:`best_first`),
and so does the searcher, so rankings are the same on every run, on both stores, and whatever
a passage's ``position`` (its place in its build, 1..n, which a segmented build or a merge moves).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from qa.embedding.base import Vectors
from qa.index.filters import Filters
from qa.index.manifest import Manifest
from qa.index.records import DocumentRecord, PassageRecord


@dataclass(frozen=True)
class ScoredPassage:
    """A passage a retriever found: its id, its document, its build position and its score."""

    passage_id: str
    doc_id: str
    position: int
    score: float


@dataclass(frozen=True)
class PassageScores:
    """Both scores of one passage; ``lexical`` is ``None`` when none of the terms occurs in it."""

    cosine: float | None = None
    lexical: float | None = None


@dataclass(frozen=True)
class SentenceVectors:
    """A passage's sentences as ``[start, end)`` in its text, in order, with their stored vectors."""

    spans: list[tuple[int, int]]
    vectors: Vectors


def best_first(found: Sequence[ScoredPassage], k: int) -> list[ScoredPassage]:
    """The ``k`` best of ``found``, best first, equal scores by passage id (ties never by position)."""
    return sorted(found, key=lambda p: (-p.score, p.passage_id))[:k]


#: BM25 weights of a passage's (title, text) or a document's (title, cleaned text).
Weights = tuple[float, float]


@runtime_checkable
class PassageStore(Protocol):
    """One open build of passages, their vectors and their documents."""

    # -- build identity -----------------------------------------------------------------------

    @property
    def manifest(self) -> Manifest:
        """The build's typed manifest: id, model identity, chunker, counts."""
        ...

    @property
    def build_id(self) -> str: ...

    @property
    def passage_count(self) -> int: ...

    # -- retrieval --------------------------------------------------------------------------

    def dense(self, query: Vectors, k: int, filters: Filters | None = None) -> list[ScoredPassage]:
        """The ``k`` passages whose vectors have the largest inner product with ``query``, best first.

        With ``filters``, only passages of the documents they allow are searched, before
        ranking: a filtered search still returns ``k`` passages when that many qualify.
        """
        ...

    def lexical(
        self, terms: Sequence[str], k: int, weights: Weights, filters: Filters | None = None
    ) -> list[ScoredPassage]:
        """The ``k`` passages with the best BM25 for any of ``terms`` (title and text weighted), best first.

        Scores are positive, higher is better; a passage holding none of the terms is not returned.
        """
        ...

    def scores(
        self,
        passage_ids: Sequence[str],
        query: Vectors | None = None,
        terms: Sequence[str] | None = None,
        weights: Weights = (1.0, 1.0),
    ) -> dict[str, PassageScores]:
        """The cosine to ``query`` and the BM25 for ``terms`` of these passages (what was asked).

        A passage gets the same scores here as from :meth:`dense` and :meth:`lexical`, so
        candidates found by one retriever can be scored by the other.
        """
        ...

    def document_scores(self, terms: Sequence[str], doc_ids: Sequence[str], weights: Weights) -> dict[str, float]:
        """BM25 of these whole documents (title and cleaned text) for ``terms``; absent when none occurs."""
        ...

    # -- passages and documents -------------------------------------------------------------

    def passages(self, passage_ids: Sequence[str]) -> list[PassageRecord]:
        """Passages by id, in the order asked; unknown ids are left out."""
        ...

    def neighbours(self, passage: PassageRecord) -> tuple[str | None, str | None]:
        """Ids of the passages just before and after this one in its document."""
        ...

    def sentences(self, passage_ids: Sequence[str]) -> dict[str, SentenceVectors]:
        """The sentences of these passages with the vectors the build stored for them."""
        ...

    def documents(self) -> list[DocumentRecord]:
        """Every document of the build, by source name."""
        ...

    def document(self, doc_id: str) -> DocumentRecord | None: ...

    def document_text(self, doc_id: str) -> tuple[str, str] | None:
        """A document's original text and its cleaned text."""
        ...

    def document_passages(self, doc_id: str) -> list[PassageRecord]:
        """A document's passages in reading order."""
        ...

    def close(self) -> None: ...

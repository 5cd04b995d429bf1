"""What both stores share over an open build: its identity, read from its manifest, and the lexical
scores of given passages and of whole documents, from :class:`~qa.index.bm25.BuildBM25` over the
postings each store fetches. A store answers where the two engines differ: where a passage is, and
its cosine to a question (:meth:`OpenBuild._located`).
"""

from __future__ import annotations

from collections.abc import Sequence

from qa.embedding.base import Vectors
from qa.index.bm25 import BuildBM25
from qa.index.manifest import Manifest
from qa.index.protocol import PassageScores, Weights


class OpenBuild:
    """The part of :class:`~qa.index.protocol.PassageStore` both stores answer alike (both derive from it)."""

    _manifest: Manifest
    _bm25: BuildBM25

    @property
    def manifest(self) -> Manifest:
        """The build's typed manifest: id, model identity, chunker, counts."""
        return self._manifest

    @property
    def build_id(self) -> str:
        return self._manifest.build_id

    def scores(
        self,
        passage_ids: Sequence[str],
        query: Vectors | None = None,
        terms: Sequence[str] | None = None,
        weights: Weights = (1.0, 1.0),
    ) -> dict[str, PassageScores]:
        positions, cosines = self._located(passage_ids, query)
        bm25 = self._bm25.scores(terms or (), list(positions.values()), weights)
        return {p: PassageScores(cosines.get(p), bm25.get(positions[p])) for p in passage_ids if p in positions}

    def document_scores(self, terms: Sequence[str], doc_ids: Sequence[str], weights: Weights) -> dict[str, float]:
        return self._bm25.document_scores(terms, doc_ids, weights)

    def _located(self, passage_ids: Sequence[str], query: Vectors | None) -> tuple[dict[str, int], dict[str, float]]:
        """The position of each passage the build holds, and its cosine to ``query`` when one is given."""
        raise NotImplementedError

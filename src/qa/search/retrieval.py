"""The online half: a question in, ranked and cited passages out.

Three retrievers share one candidate pipeline:

``dense``    cosine between the question's and each passage's vector.
``lexical``  BM25 of each passage (with its document's title) mixed with its whole document's.
``hybrid``   both scored on the union of their candidates and fused (see :class:`Fusion`).

Filters (document ids, author, outlet, published range) are handed to the store, which
searches only inside the documents they allow, so a filtered question still gets ``k``
passages. After ranking, near-duplicate passages from different documents are folded
into one result (``also_reported_in``), each result gets the sentences that best answer
the question (``highlights``), and the answer says whether any passage clears the
grounding threshold (``grounded``): see :mod:`qa.search.evidence`. The searcher talks to
the store only through :class:`~qa.index.protocol.PassageStore`, by passage id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from qa.citations.cite import Citation, cite
from qa.embedding.base import Embedder, Vectors, embed_soon
from qa.index.filters import Filters
from qa.index.protocol import PassageStore, ScoredPassage
from qa.index.records import PassageRecord
from qa.ingest.extract import PageSpan
from qa.search import evidence
from qa.search.evidence import (
    GROUNDED_THRESHOLD,
    Hit,
    Sentences,
    best_cosine,
    highlights,
    lookahead,
    sentence_evidence,
)
from qa.search.models import Answer, Corroboration, Mode, Result, check_mode, check_question
from qa.search.terms import query_terms, term_shares

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Fusion:
    """How lexical scores are made and how hybrid combines them with cosines.

    A passage's lexical score is ``(1 - document_weight) * p / max_p + document_weight * d / max_d``
    where ``p`` is the passage's own BM25 (its text, and its document's title as a column),
    ``d`` its whole document's BM25, and the maxima are taken over the candidates. Hybrid
    then ranks by ``dense_weight * cosine + (1 - dense_weight) * lexical / max_lexical``.
    Both scores are computed for every candidate, not only for the ones its own retriever
    found. Chosen on the SQuAD dev half and the seed questions (docs/benchmarks.md, "SQuAD").
    """

    #: 0.6 / 0.0 / 0.4 / 0.4 (with the sentence weights below): the best R@1 + R@3 on the SQuAD dev
    #: half (every 5th question) among the variants keeping the seeds' R@3 >= 0.95 and taking their
    #: top 3 from 2.05 articles, 2.00 with rerank_depth 20 (docs/benchmarks.md, "SQuAD"); was
    #: 0.7 / 0.5 / 0 / 0, chosen on SciFact.
    dense_weight: float = 0.6
    #: BM25 weights of the (title, text) columns of a passage.
    bm25_weights: tuple[float, float] = (1.0, 1.0)
    #: Share of a passage's lexical score that comes from its whole document's BM25: 0, since it
    #: lifts every passage of the best-matching article alike (SciFact's labels are per document).
    document_weight: float = 0.0
    #: Candidates each retriever contributes before fusion.
    depth: int = 100
    #: Hybrid's second stage: the best ``rerank_depth`` candidates of the first also score
    #: ``sentence_weight * best sentence cosine + term_weight * best sentence term share``
    #: (:mod:`qa.search.terms`) from the sentences the build stored; both are >= 0, so a
    #: candidate below them never overtakes one of them. 20: on every 5th SQuAD dev-half question
    #: R@1 / R@3 / answer-sentence@1 0.763 / 0.909 / 0.712 against 0.764 / 0.912 / 0.715 over 50,
    #: for Searcher.ask p50 +13% instead of +40% over the one-stage fusion.
    sentence_weight: float = 0.4
    term_weight: float = 0.4
    rerank_depth: int = 20


DEFAULT_FUSION = Fusion()
#: BM25 weights of a whole document's (title, cleaned text) in the document evidence.
DOCUMENT_BM25_WEIGHTS = (1.0, 1.0)


class Searcher:
    """Answers questions from one open store with one embedder."""

    def __init__(self, store: PassageStore, embedder: Embedder, fusion: Fusion = DEFAULT_FUSION) -> None:
        self.store = store
        self.embedder = embedder
        self.fusion = fusion

    def ask(
        self,
        question: str,
        k: int = 5,
        mode: str = "hybrid",
        filters: Filters | None = None,
        group: bool = True,
    ) -> Answer:
        text = check_question(question, k)
        chosen = check_mode(mode)
        if filters is not None:
            filters.check()
        depth = lookahead(k) if group else k
        # The lexical side needs only the words: it runs while the model encodes the question.
        query, lexical = self._while_encoding(text, lambda: self._lexical(text, chosen, depth, filters))
        hits = self.rank(text, query, chosen, depth, filters, lexical)
        records = {h.passage_id: h.record for h in hits if h.record is not None}
        records.update((p.passage_id, p) for p in self.store.passages([h.passage_id for h in hits if h.record is None]))
        passages = [records[h.passage_id] for h in hits]
        stored = {h.passage_id: h.sentences for h in hits if h.sentences is not None}
        stored.update(self.store.sentences([h.passage_id for h in hits if h.sentences is None]))
        sentences = sentence_evidence(text, query, passages, stored, self.embedder.dimension)
        if group:
            hits = evidence.group(hits, records, sentences, k)
        results = [self._result(rank, hit, records, sentences) for rank, hit in enumerate(hits, start=1)]
        # The best sentence cosine among the results (highlights are chosen with term shares too).
        best = best_cosine(sentences, [h.passage_id for h in hits])
        return Answer(
            question=text,
            k=k,
            mode=chosen,
            grounded=best is not None and best >= GROUNDED_THRESHOLD,
            grounding_score=None if best is None else round(best, 6),
            results=results,
            build_id=self.store.build_id,
            model=self.store.manifest.model.name,
        )

    def _result(
        self, rank: int, hit: Hit, records: dict[str, PassageRecord], sentences: dict[str, Sentences]
    ) -> Result:
        passage = records[hit.passage_id]
        citation = self._cite(passage)
        return Result(
            rank=rank,
            score=round(hit.score, 6),
            dense_score=None if hit.dense is None else round(hit.dense, 6),
            lexical_score=None if hit.lexical is None else round(hit.lexical, 6),
            passage_id=passage.passage_id,
            text=passage.text,
            section=passage.section,
            citation=citation,
            highlights=highlights(passage, sentences[hit.passage_id], self._pages(passage)),
            also_reported_in=[
                Corroboration(
                    passage_id=records[other].passage_id,
                    text=records[other].text,
                    similarity=round(similarity, 6),
                    citation=self._cite(records[other]),
                )
                for other, similarity in hit.grouped
            ],
        )

    # -- ranking ---------------------------------------------------------------------------

    def rank(
        self,
        text: str,
        query: Vectors,
        mode: Mode,
        depth: int,
        filters: Filters | None = None,
        lexical: list[ScoredPassage] | None = None,
    ) -> list[Hit]:
        """Candidate passages for a question, best first, scored by ``mode``; at most ``depth``.

        ``lexical``: the lexical side's candidates when already searched (:meth:`_lexical`).
        """
        terms = query_terms(text)
        hits: dict[str, Hit] = {}
        if mode in ("dense", "hybrid"):
            for found in self.store.dense(query, self._pool(mode, depth), filters):
                hits[found.passage_id] = Hit(found.passage_id, found.doc_id, found.position, dense=found.score)
        if lexical is None:
            lexical = self._lexical(text, mode, depth, filters)
        for found in lexical:
            hit = hits.setdefault(found.passage_id, Hit(found.passage_id, found.doc_id, found.position))
            hit.lexical = found.score
        if mode == "hybrid":
            self._complete(hits, query, terms)
        if mode != "dense" and terms and self.fusion.document_weight > 0:
            self._add_document_evidence(hits, terms)
        top = max((h.lexical or 0.0 for h in hits.values()), default=0.0)
        for hit in hits.values():
            hit.score = self._score(hit, mode, top)
        ranked = sorted(hits.values(), key=lambda h: (-h.score, h.passage_id))
        if mode == "hybrid" and (self.fusion.sentence_weight or self.fusion.term_weight):
            self._add_sentence_evidence(text, query, ranked[: self.fusion.rerank_depth])
            ranked.sort(key=lambda h: (-h.score, h.passage_id))
        return ranked[:depth]

    def _pool(self, mode: Mode, depth: int) -> int:
        """Candidates each side searches: fusion sees at least fusion.depth from each, however few are asked for."""
        return max(depth, self.fusion.depth) if mode == "hybrid" else depth

    def _lexical(self, text: str, mode: Mode, depth: int, filters: Filters | None) -> list[ScoredPassage]:
        """The lexical side's candidates for ``mode`` (none for dense, or for a question without terms)."""
        terms = query_terms(text)
        if mode not in ("lexical", "hybrid") or not terms:
            return []
        return self.store.lexical(terms, self._pool(mode, depth), self.fusion.bm25_weights, filters)

    def _while_encoding(self, text: str, work: Callable[[], T]) -> tuple[Vectors, T]:
        """The question's vector and ``work()``'s result, ``work`` running on this thread while the
        model's own thread encodes (:func:`~qa.embedding.base.embed_soon`: no thread hop added).

        The store's per-thread state (the last filter's positions, the question's postings)
        stays with the request's thread, where the rest of the answer reads it.
        """
        vectors = embed_soon(self.embedder, [text])
        try:
            done = work()
        finally:
            query = vectors()[0]
        return query, done

    def _add_sentence_evidence(self, text: str, query: Vectors, hits: list[Hit]) -> None:
        """Add each hit's best stored sentence cosine and best sentence term share, weighted, to its score."""
        passage_ids = [h.passage_id for h in hits]
        stored = self.store.sentences(passage_ids)
        records = {p.passage_id: p for p in self.store.passages(passage_ids)}
        spans = [stored[p].spans if p in stored else [] for p in passage_ids]
        shares = term_shares(text, [(records[p].text, s) for p, s in zip(passage_ids, spans, strict=True)])
        for hit, share in zip(hits, shares, strict=True):
            found = stored.get(hit.passage_id)
            hit.record, hit.sentences = records[hit.passage_id], found
            vectors = None if found is None else found.vectors
            cosine = float((vectors @ query).max()) if vectors is not None and len(vectors) else 0.0
            terms = float(share.max()) if len(share) else 0.0
            hit.score += self.fusion.sentence_weight * max(cosine, 0.0) + self.fusion.term_weight * terms

    def _complete(self, hits: dict[str, Hit], query: Vectors, terms: list[str]) -> None:
        """Give every candidate both scores, so fusion never guesses a missing one.

        A candidate the store gives no lexical score has no query term.
        """
        need_dense = [h.passage_id for h in hits.values() if h.dense is None]
        if need_dense:
            for passage_id, scores in self.store.scores(need_dense, query=query).items():
                hits[passage_id].dense = scores.cosine
        need_lexical = [h.passage_id for h in hits.values() if h.lexical is None]
        if need_lexical and terms:
            found = self.store.scores(need_lexical, terms=terms, weights=self.fusion.bm25_weights)
            for passage_id, scores in found.items():
                hits[passage_id].lexical = scores.lexical

    def _add_document_evidence(self, hits: dict[str, Hit], terms: list[str]) -> None:
        """Mix each passage's BM25 with its whole document's: ``(1 - a) * p / max_p + a * d / max_d``."""
        a = self.fusion.document_weight
        doc_ids = list({h.doc_id for h in hits.values()})
        scores = self.store.document_scores(terms, doc_ids, DOCUMENT_BM25_WEIGHTS)
        top_p = max((h.lexical or 0.0 for h in hits.values()), default=0.0) or 1.0
        top_d = max(scores.values(), default=0.0) or 1.0
        for hit in hits.values():
            passage = (hit.lexical or 0.0) / top_p
            document = scores.get(hit.doc_id, 0.0) / top_d
            mixed = (1 - a) * passage + a * document
            hit.lexical = mixed if mixed > 0 else None

    def _score(self, hit: Hit, mode: Mode, top: float) -> float:
        """The ranking score; ``top`` is the best lexical score among the candidates."""
        if mode == "dense":
            return hit.dense or 0.0
        if mode == "lexical":
            return hit.lexical or 0.0
        lexical = (hit.lexical or 0.0) / top if top > 0 else 0.0
        w = self.fusion.dense_weight
        return w * (hit.dense or 0.0) + (1 - w) * lexical

    def _pages(self, passage: PassageRecord) -> tuple[PageSpan, ...]:
        document = self.store.document(passage.doc_id)
        return document.pages if document is not None else ()

    def _cite(self, passage: PassageRecord) -> Citation:
        document = self.store.document(passage.doc_id)
        if document is None:  # pragma: no cover - the schema's foreign key prevents it
            raise LookupError(passage.doc_id)
        return cite(passage, document)

"""Evidence for an answer from the sentences a build stored: highlights, grouping and grounding.

All three compare the question's vector with the sentence vectors of the build, so
answering encodes only the question; highlights also weigh each sentence's share of the
question's terms (:func:`qa.search.terms.term_shares`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from qa.citations.cite import pages_of
from qa.embedding.base import Vectors
from qa.index.protocol import SentenceVectors
from qa.index.records import PassageRecord
from qa.ingest.extract import PageSpan
from qa.search.models import Highlight
from qa.search.terms import term_shares
from qa.text import content_words

#: Two passages of different documents report the same statement when some sentence of
#: one and some sentence of the other have at least this cosine similarity and share at
#: least GROUP_OVERLAP of the shorter one's content words. Chosen on hand-labelled seed
#: pairs (docs/benchmarks.md, "Corroboration"): precision 0.86, recall 0.55 there.
GROUP_COSINE = 0.76
GROUP_OVERLAP = 0.5
#: An answer is grounded when its best passage's best sentence has at least this cosine
#: to the question. 0.45: on half the SQuAD dev articles built and every 5th question of all
#: 24 asked, the best F1 of ``grounded`` among the thresholds that keep every answerable seed
#: question grounded (0.50 drops the lowest, 0.463): grounded recall 0.985, abstention recall
#: 0.849 on questions whose article is absent (0.995 / 0.703 at the former 0.40, chosen on the
#: seeds' two unanswerable questions); docs/benchmarks.md, "Abstention".
GROUNDED_THRESHOLD = 0.45
#: Sentences within this much of a passage's best one are highlighted with it.
HIGHLIGHT_MARGIN = 0.05
#: A sentence's highlight score is its cosine plus this much of its share of the question's
#: terms (:func:`qa.search.terms.term_shares`); 1.0 was the best of 0, 0.25, 0.5 and 1.0 for
#: answer-sentence@1 on the SQuAD dev half (docs/benchmarks.md, "SQuAD").
HIGHLIGHT_TERM_WEIGHT = 1.0


#: Grouping ranks more candidates than the ``k`` results asked, so that results folded into a
#: better one are replaced from further down: twice ``k``, and at least this many more than ``k``
#: (for small ``k``, where twice is too few to replace two or three folded results).
LOOKAHEAD_MIN_EXTRA = 5


def lookahead(k: int) -> int:
    """How many ranked candidates grouping looks at to fill ``k`` results."""
    return max(2 * k, k + LOOKAHEAD_MIN_EXTRA)


@dataclass
class Hit:
    """A candidate passage and its scores; equal scores are ordered by passage id."""

    passage_id: str
    doc_id: str
    position: int
    dense: float | None = None
    lexical: float | None = None
    score: float = 0.0
    grouped: list[tuple[str, float]] = field(default_factory=list)
    #: The passage and its stored sentences, once ranking has read them (hybrid's second
    #: stage does), so that answering does not read them again.
    record: PassageRecord | None = None
    sentences: SentenceVectors | None = None


@dataclass(frozen=True)
class Sentences:
    """A passage's sentences as ``[start, end)`` in its text, their vectors, and their cosine to the question."""

    spans: list[tuple[int, int]]
    vectors: Vectors
    cosines: Vectors
    #: Each sentence's share of the question's terms (:func:`qa.search.terms.term_shares`).
    terms: Vectors


def group(hits: list[Hit], records: dict[str, PassageRecord], sentences: dict[str, Sentences], k: int) -> list[Hit]:
    """The best ``k`` hits; a passage of another document that reports the same statement as a
    better one is folded into it (``Hit.grouped``) instead of taking a place of its own."""
    cached: dict[tuple[str, int], frozenset[str]] = {}

    def words(passage_id: str) -> Callable[[int], frozenset[str]]:
        """A sentence's content words, read only for the pairs that pass the cosine test."""

        def of(i: int) -> frozenset[str]:
            if (passage_id, i) not in cached:
                start, end = sentences[passage_id].spans[i]
                cached[passage_id, i] = content_words(records[passage_id].text[start:end])
            return cached[passage_id, i]

        return of

    doc_of = {h.passage_id: h.doc_id for h in hits}
    kept: list[Hit] = []
    for hit in hits:
        for owner in kept:
            if owner.doc_id == hit.doc_id or any(doc_of[r] == hit.doc_id for r, _ in owner.grouped):
                continue
            similarity = _same_statement(
                sentences[owner.passage_id],
                words(owner.passage_id),
                sentences[hit.passage_id],
                words(hit.passage_id),
            )
            if similarity is not None:
                owner.grouped.append((hit.passage_id, similarity))
                break
        else:
            if len(kept) < k:
                kept.append(hit)
    return kept


def _same_statement(
    a: Sentences, a_words: Callable[[int], frozenset[str]], b: Sentences, b_words: Callable[[int], frozenset[str]]
) -> float | None:
    """The cosine of the closest sentence pair of ``a`` and ``b`` that says the same thing, or ``None``."""
    if not a.spans or not b.spans:
        return None
    sims = a.vectors @ b.vectors.T
    best: float | None = None
    for i, j in zip(*np.nonzero(sims >= GROUP_COSINE), strict=True):
        x, y = a_words(int(i)), b_words(int(j))
        if x and y and len(x & y) / min(len(x), len(y)) >= GROUP_OVERLAP:
            best = max(best or 0.0, float(sims[i, j]))
    return best


def highlights(passage: PassageRecord, sentences: Sentences, pages: Sequence[PageSpan] = ()) -> list[Highlight]:
    """The passage's sentences within HIGHLIGHT_MARGIN of its best one, with passage and source offsets,
    and for a PDF (``pages``, its document's page map) the page each sentence starts on.

    A sentence scores its cosine plus HIGHLIGHT_TERM_WEIGHT times its share of the question's
    terms; a highlight's ``score`` is its cosine.
    """
    if not sentences.spans:
        return []
    chosen = sentences.cosines + HIGHLIGHT_TERM_WEIGHT * sentences.terms
    top = float(chosen.max())
    return [
        Highlight(
            start=s,
            end=e,
            source_start=passage.start + s,
            source_end=passage.start + e,
            score=round(float(c), 6),
            page=next(iter(pages_of(pages, passage.start + s, passage.start + e)), None),
        )
        for (s, e), c, v in zip(sentences.spans, sentences.cosines, chosen, strict=True)
        if float(v) >= top - HIGHLIGHT_MARGIN
    ]


def best_cosine(sentences: dict[str, Sentences], passage_ids: list[str]) -> float | None:
    """The best sentence cosine among these passages (the grounding score), or ``None`` without sentences."""
    return max(
        (float(sentences[p].cosines.max()) for p in passage_ids if sentences[p].spans),
        default=None,
    )


def sentence_evidence(
    question: str, query: Vectors, passages: list[PassageRecord], stored: dict[str, SentenceVectors], dimension: int
) -> dict[str, Sentences]:
    """Each passage's stored sentences with their cosine to the question and their share of its
    terms (no model call)."""
    none = np.zeros((0, dimension), dtype=np.float32)
    found = [stored.get(p.passage_id) for p in passages]
    pairs = [(f.spans, f.vectors) if f is not None else ([], none) for f in found]
    shares = term_shares(question, [(p.text, spans) for p, (spans, _) in zip(passages, pairs, strict=True)])
    out: dict[str, Sentences] = {}
    for p, (spans, vectors), share in zip(passages, pairs, shares, strict=True):
        out[p.passage_id] = Sentences(spans, vectors, vectors @ query if len(spans) else none[:, 0], share)
    return out

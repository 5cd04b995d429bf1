"""The online half: a question in, ranked and cited passages out.

Three retrievers share one candidate pipeline:

``dense``    cosine between the question's and each passage's vector (FAISS, exact).
``lexical``  BM25 from SQLite FTS5: each passage (with its document's title) mixed with
             its whole document's.
``hybrid``   both scored on the union of their candidates and fused (see :class:`Fusion`).

Filters (document ids, author, outlet, published range) choose the documents first;
both retrievers then search only inside them, so a filtered question still gets ``k``
passages. After ranking, near-duplicate passages from different documents are folded
into one result (``also_reported_in``), each result gets the sentences that best answer
the question (``highlights``), and the answer says whether any passage clears the
grounding threshold (``grounded``). All three compare the question's vector with the
sentence vectors the build stored, so answering encodes only the question.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from qa.citations.cite import Citation, cite
from qa.config import MAX_K, MAX_QUESTION_CHARS
from qa.embedding.base import Embedder, Vectors
from qa.errors import InvalidQueryError
from qa.index.store import DocumentRecord, Index, PassageRecord

log = logging.getLogger(__name__)

Mode = Literal["dense", "lexical", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "lexical", "hybrid")

#: Lucene's English stop words (the list Pyserini's BM25 baselines use), dropped from
#: lexical queries: they cost time on every posting list and add nothing to BM25.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)
_TERM_RE = re.compile(r"[^\W_]+")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Fusion:
    """How lexical scores are made and how hybrid combines them with cosines.

    A passage's lexical score is ``(1 - document_weight) * p / max_p + document_weight * d / max_d``
    where ``p`` is the passage's own BM25 (its text, and its document's title as a column),
    ``d`` its whole document's BM25, and the maxima are taken over the candidates. Hybrid
    then ranks by ``dense_weight * cosine + (1 - dense_weight) * lexical / max_lexical``.
    Both scores are computed for every candidate, not only for the ones its own retriever
    found. Chosen on SciFact's train queries and the seed questions (docs/benchmarks.md).
    """

    dense_weight: float = 0.7
    #: BM25 weights of the (title, text) columns of a passage.
    bm25_weights: tuple[float, float] = (1.0, 1.0)
    #: Share of a passage's lexical score that comes from its whole document's BM25.
    document_weight: float = 0.5
    #: Candidates each retriever contributes before fusion.
    depth: int = 100


DEFAULT_FUSION = Fusion()
#: Two passages of different documents report the same statement when some sentence of
#: one and some sentence of the other have at least this cosine similarity and share at
#: least GROUP_OVERLAP of the shorter one's content words. Chosen on hand-labelled seed
#: pairs (docs/benchmarks.md, "Corroboration"): precision 0.86, recall 0.55 there.
GROUP_COSINE = 0.76
GROUP_OVERLAP = 0.5
#: An answer is grounded when its best passage's best sentence has at least this cosine
#: to the question; calibrated on the seed questions (docs/benchmarks.md, "Abstention").
GROUNDED_THRESHOLD = 0.4
#: Sentences within this much of a passage's best one are highlighted with it.
HIGHLIGHT_MARGIN = 0.05


class Highlight(BaseModel):
    """A sentence of the passage that answers the question: ``[start, end)`` in the passage and in the source."""

    start: int = Field(description="Offset of the sentence in the passage text.")
    end: int
    source_start: int = Field(description="Offset of the sentence in the source text.")
    source_end: int
    score: float = Field(description="Cosine similarity between the question and the sentence.")


class Corroboration(BaseModel):
    """A passage of another document that says nearly the same as the result it is listed under."""

    passage_id: str
    text: str
    similarity: float = Field(description="Cosine similarity to the result's passage.")
    citation: Citation


class Result(BaseModel):
    """One ranked passage: a verbatim span of one article, with its citation."""

    rank: int = Field(description="1 for the best passage.")
    score: float = Field(description="The ranking score of the mode asked (fused score for hybrid).")
    dense_score: float | None = Field(None, description="Cosine similarity between question and passage.")
    lexical_score: float | None = Field(
        None,
        description=(
            "Lexical score in [0, 1]: the passage's BM25 mixed with its document's, each relative to the best "
            "candidate (None when no query term occurs)."
        ),
    )
    passage_id: str
    text: str
    section: str | None = Field(description="The heading the passage sits under, if any.")
    citation: Citation
    highlights: list[Highlight] = Field(default_factory=list)
    also_reported_in: list[Corroboration] = Field(default_factory=list)


class Answer(BaseModel):
    """The ranked passages for a question, and the build that answered it."""

    question: str
    k: int
    mode: Mode = "hybrid"
    grounded: bool = Field(True, description="Whether any passage clears the calibrated answer threshold.")
    grounding_score: float | None = Field(None, description="The best highlighted sentence's cosine.")
    results: list[Result]
    build_id: str
    model: str


@dataclass(frozen=True)
class Filters:
    """Which documents a question may be answered from; ``None`` fields do not filter."""

    doc_ids: tuple[str, ...] | None = None
    author: str | None = None
    outlet: str | None = None
    published_from: str | None = None
    published_to: str | None = None

    def check(self) -> None:
        """Raise :class:`InvalidQueryError` for a date that is not ``YYYY-MM-DD`` or an empty value."""
        for name in ("published_from", "published_to"):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                if not _DATE_RE.fullmatch(value):
                    raise ValueError(value)
                date.fromisoformat(value)  # a day of the calendar: not 2024-13-45
            except ValueError:
                raise InvalidQueryError(f"{name} must be a date as YYYY-MM-DD, not {value!r}") from None
        for name in ("author", "outlet"):
            value = getattr(self, name)
            if value is not None and not value.strip():
                raise InvalidQueryError(f"{name} must not be empty")
        if self.doc_ids is not None and not all(d.strip() for d in self.doc_ids):
            raise InvalidQueryError("doc_id must not be empty")

    def active(self) -> bool:
        return any(
            v is not None for v in (self.doc_ids, self.author, self.outlet, self.published_from, self.published_to)
        )

    def matches(self, document: DocumentRecord) -> bool:
        if self.doc_ids is not None and document.doc_id not in self.doc_ids:
            return False
        if self.author is not None and _fold(self.author) not in _fold(document.author or ""):
            return False
        if self.outlet is not None and _fold(self.outlet) != _fold(document.outlet or ""):
            return False
        if self.published_from is not None or self.published_to is not None:
            published = (document.published or "")[:10]
            if not published:
                return False
            if self.published_from is not None and published < self.published_from:
                return False
            if self.published_to is not None and published > self.published_to:
                return False
        return True


@dataclass
class Hit:
    """A candidate passage and its scores."""

    rowid: int
    dense: float | None = None
    lexical: float | None = None
    score: float = 0.0
    doc_id: str = ""
    grouped: list[tuple[int, float]] = field(default_factory=list)


def check_question(question: str, k: int) -> str:
    """The question with surrounding space removed, or :class:`InvalidQueryError`."""
    text = question.strip()
    if not any(c.isprintable() and not c.isspace() for c in text):  # blank, or control characters only
        raise InvalidQueryError("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidQueryError(f"the question is {len(text)} characters long; the limit is {MAX_QUESTION_CHARS}")
    if not 1 <= k <= MAX_K:
        raise InvalidQueryError(f"k must be between 1 and {MAX_K}, not {k}")
    return text


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise InvalidQueryError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def match_expression(question: str) -> str | None:
    """The FTS5 query for a question: its distinct non-stop-word terms, each quoted, joined by OR.

    Quoting makes every term a plain string to FTS5 (no operators, columns or prefixes
    can be smuggled in); ``None`` when nothing searchable is left.
    """
    terms = dict.fromkeys(t for t in _TERM_RE.findall(question.casefold()) if t not in STOPWORDS)
    return " OR ".join(f'"{t}"' for t in terms) or None


class Searcher:
    """Answers questions from one open index with one embedder."""

    def __init__(self, index: Index, embedder: Embedder, fusion: Fusion = DEFAULT_FUSION) -> None:
        self.index = index
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
        query = self.embedder.embed_batch([text])[0]
        # Grouping looks further down the ranking, so that folded results are replaced.
        hits = self.rank(text, query, chosen, max(2 * k, k + 5) if group else k, filters)
        records = {p.rowid: p for p in self.index.passages([h.rowid for h in hits])}
        sentences = self._sentences(query, [records[h.rowid] for h in hits])
        if group:
            hits = _group(hits, records, sentences, k)
        results = []
        for rank, hit in enumerate(hits, start=1):
            passage = records[hit.rowid]
            results.append(
                Result(
                    rank=rank,
                    score=round(hit.score, 6),
                    dense_score=None if hit.dense is None else round(hit.dense, 6),
                    lexical_score=None if hit.lexical is None else round(hit.lexical, 6),
                    passage_id=passage.passage_id,
                    text=passage.text,
                    section=passage.section,
                    citation=self._cite(passage),
                    highlights=_highlights(passage, sentences[hit.rowid]),
                    also_reported_in=[
                        Corroboration(
                            passage_id=records[r].passage_id,
                            text=records[r].text,
                            similarity=round(similarity, 6),
                            citation=self._cite(records[r]),
                        )
                        for r, similarity in hit.grouped
                    ],
                )
            )
        best = max((h.score for r in results for h in r.highlights), default=None)
        return Answer(
            question=text,
            k=k,
            mode=chosen,
            grounded=best is not None and best >= GROUNDED_THRESHOLD,
            grounding_score=None if best is None else round(best, 6),
            results=results,
            build_id=self.index.build_id,
            model=str(self.index.manifest["model"]["name"]),
        )

    # -- ranking ---------------------------------------------------------------------------

    def rank(self, text: str, query: Vectors, mode: Mode, depth: int, filters: Filters | None = None) -> list[Hit]:
        """Candidate passages for a question, best first, scored by ``mode``; at most ``depth``."""
        allowed_docs: list[str] | None = None
        allowed: list[int] | None = None
        if filters is not None and filters.active():
            allowed_docs = [d.doc_id for d in self.index.documents() if filters.matches(d)]
            allowed = self.index.passage_rowids(allowed_docs)
            if not allowed:
                return []
        match = match_expression(text)
        # Fusion sees at least fusion.depth candidates from each side, however few are asked for.
        pool = max(depth, self.fusion.depth) if mode == "hybrid" else depth
        hits: dict[int, Hit] = {}
        if mode in ("dense", "hybrid"):
            for rowid, score in self.index.search(query, pool, allowed):
                hits[rowid] = Hit(rowid, dense=score)
        lexical: dict[int, float] = {}
        if mode in ("lexical", "hybrid") and match is not None:
            lexical = dict(self.index.lexical_search(match, self.fusion.bm25_weights, allowed_docs))
            for rowid, score in list(lexical.items())[:pool]:
                hits.setdefault(rowid, Hit(rowid)).lexical = score
        if mode == "hybrid":
            self._complete(hits, query, lexical)
        docs = self.index.passage_docs(list(hits))
        for hit in hits.values():
            hit.doc_id = docs.get(hit.rowid, "")
        if mode != "dense" and match is not None and self.fusion.document_weight > 0:
            self._add_document_evidence(hits, match)
        top = max((h.lexical or 0.0 for h in hits.values()), default=0.0)
        for hit in hits.values():
            hit.score = self._score(hit, mode, top)
        ranked = sorted(hits.values(), key=lambda h: (-h.score, h.rowid))
        return ranked[:depth]

    def _complete(self, hits: dict[int, Hit], query: Vectors, lexical: dict[int, float]) -> None:
        """Give every candidate both scores, so fusion never guesses a missing one.

        ``lexical`` holds the BM25 of every matching passage; a candidate absent from it
        has no query term.
        """
        need_dense = [h.rowid for h in hits.values() if h.dense is None]
        if need_dense:
            cosines = self.index.vectors(need_dense) @ query
            for rowid, cosine in zip(need_dense, cosines, strict=True):
                hits[rowid].dense = float(cosine)
        for hit in hits.values():
            if hit.lexical is None:
                hit.lexical = lexical.get(hit.rowid)

    def _add_document_evidence(self, hits: dict[int, Hit], match: str) -> None:
        """Mix each passage's BM25 with its whole document's: ``(1 - a) * p / max_p + a * d / max_d``."""
        a = self.fusion.document_weight
        scores = self.index.lexical_document_scores(match, list({h.doc_id for h in hits.values()}), (1.0, 1.0))
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

    # -- presentation ------------------------------------------------------------------------

    def _sentences(self, query: Vectors, passages: Sequence[PassageRecord]) -> dict[int, Sentences]:
        """Each passage's sentences, their stored vectors and their cosine to the question (no model call)."""
        stored = self.index.sentences([p.rowid for p in passages])
        none = np.zeros((0, self.embedder.dimension), dtype=np.float32)
        out: dict[int, Sentences] = {}
        for p in passages:
            spans, vectors = stored.get(p.rowid, ([], none))
            out[p.rowid] = Sentences(spans, vectors, vectors @ query if len(spans) else none[:, 0])
        return out

    def _cite(self, passage: PassageRecord) -> Citation:
        document = self.index.document(passage.doc_id)
        if document is None:  # pragma: no cover - the schema's foreign key prevents it
            raise LookupError(passage.doc_id)
        return cite(passage, document)


@dataclass(frozen=True)
class Sentences:
    """A passage's sentences as ``[start, end)`` in its text, their vectors, and their cosine to the question."""

    spans: list[tuple[int, int]]
    vectors: Vectors
    cosines: Vectors


def _group(hits: list[Hit], records: dict[int, PassageRecord], sentences: dict[int, Sentences], k: int) -> list[Hit]:
    """The best ``k`` hits; a passage of another document that reports the same statement as a
    better one is folded into it (``Hit.grouped``) instead of taking a place of its own."""
    cached: dict[tuple[int, int], frozenset[str]] = {}

    def words(rowid: int) -> Callable[[int], frozenset[str]]:
        """A sentence's content words, read only for the pairs that pass the cosine test."""

        def of(i: int) -> frozenset[str]:
            if (rowid, i) not in cached:
                start, end = sentences[rowid].spans[i]
                cached[rowid, i] = content_words(records[rowid].text[start:end])
            return cached[rowid, i]

        return of

    doc_of = {h.rowid: h.doc_id for h in hits}
    kept: list[Hit] = []
    for hit in hits:
        for owner in kept:
            if owner.doc_id == hit.doc_id or any(doc_of[r] == hit.doc_id for r, _ in owner.grouped):
                continue
            similarity = _same_statement(
                sentences[owner.rowid], words(owner.rowid), sentences[hit.rowid], words(hit.rowid)
            )
            if similarity is not None:
                owner.grouped.append((hit.rowid, similarity))
                break
        else:
            if len(kept) < k:
                kept.append(hit)
    return kept


def content_words(text: str) -> frozenset[str]:
    """Lower-cased words of three letters or more that are not stop words."""
    return frozenset(w for w in _TERM_RE.findall(text.casefold()) if len(w) > 2 and w not in STOPWORDS)


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


def _highlights(passage: PassageRecord, sentences: Sentences) -> list[Highlight]:
    """The passage's sentences within HIGHLIGHT_MARGIN of its best one, with passage and source offsets."""
    if not sentences.spans:
        return []
    top = float(sentences.cosines.max())
    return [
        Highlight(
            start=s, end=e, source_start=passage.start + s, source_end=passage.start + e, score=round(float(c), 6)
        )
        for (s, e), c in zip(sentences.spans, sentences.cosines, strict=True)
        if float(c) >= top - HIGHLIGHT_MARGIN
    ]


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())

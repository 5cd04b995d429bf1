"""Retrieval quality on a question file: which questions find their evidence, and how high.

A question file is JSON Lines; each line has ``id``, ``question`` and either ``evidence``
(strings a correct passage contains), ``answers`` with ``doc`` (answer spans
``{text, start, end}`` in that document's text, as in ../shared/bench/squad) or
``"answerable": false``. With evidence strings, a passage answers a question when it
contains one of them after folding quotes, dashes, case and whitespace
(:func:`qa.text.normalize`). With answer spans, it answers when it is a passage
of ``doc`` whose ``[start, end)`` covers some answer's ``[start, end)``: scored by place, not
by string, because an answer's words often occur elsewhere in the article too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytrec_eval

from qa.embedding.base import Embedder, Vectors
from qa.errors import IndexStoreError, QAError
from qa.evaluation.beir import Benchmark, Qrels, load_benchmark
from qa.index.lifecycle import StoreLocation
from qa.index.location import locate
from qa.index.manifest import BuildIdentity, compatibility_problems
from qa.index.prepare import Progress
from qa.index.protocol import PassageStore
from qa.ingest.chunking import ChunkerConfig
from qa.search.models import MODES, Answer, Mode, Result
from qa.search.retrieval import Searcher
from qa.service import open_searcher, open_store
from qa.text import normalize

#: The cut-offs ``qa eval --questions`` reports; MRR is taken over the deepest one.
QUESTION_KS = (1, 3, 5, 10)


@dataclass(frozen=True)
class Span:
    """An answer as ``[start, end)`` in its document's text."""

    start: int
    end: int

    def within(self, start: int, end: int) -> bool:
        return start <= self.start and self.end <= end


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    evidence: tuple[str, ...] = ()
    answerable: bool = True
    #: With ``answers``: the document (its id, the file's stem) the answers are offsets into.
    doc: str | None = None
    answers: tuple[Span, ...] = ()

    def found_in(self, doc_id: str, start: int, end: int, text: str) -> bool:
        """Whether the span ``[start, end)`` of ``doc_id`` (whose text is ``text``) answers this question."""
        if self.answers:
            return doc_id == self.doc and any(a.within(start, end) for a in self.answers)
        return contains_evidence(text, self.evidence)


@dataclass
class QuestionReport:
    """Recall@k and MRR over the answerable questions, where each one was found, and abstention.

    ``grounded`` says, for every question, whether the answer cleared the grounding
    threshold. Abstention is scored as a detector of unanswerable questions: precision
    is the share of not-grounded answers whose question was unanswerable, recall the
    share of unanswerable questions answered not grounded.
    """

    ks: tuple[int, ...]
    recall: dict[int, float]
    mrr: float
    ranks: dict[str, int | None] = field(default_factory=dict)
    grounded: dict[str, bool] = field(default_factory=dict)
    grounding_scores: dict[str, float | None] = field(default_factory=dict)
    answerable: dict[str, bool] = field(default_factory=dict)
    #: Per answerable question with answer spans: whether the top passage's first highlight covers an answer.
    answer_sentence: dict[str, bool] = field(default_factory=dict)
    #: Per answerable question: how many documents the top 3 passages come from.
    distinct_docs: dict[str, int] = field(default_factory=dict)
    #: Lengths in characters of every passage returned (all ranks, all questions).
    passage_chars: list[int] = field(default_factory=list)

    @property
    def answer_sentence_at_1(self) -> float | None:
        values = self.answer_sentence.values()
        return sum(values) / len(values) if values else None

    @property
    def distinct_docs_at_3(self) -> float | None:
        values = self.distinct_docs.values()
        return sum(values) / len(values) if values else None

    @property
    def mean_passage_chars(self) -> float | None:
        return sum(self.passage_chars) / len(self.passage_chars) if self.passage_chars else None

    @property
    def abstention_precision(self) -> float | None:
        flagged = [q for q, g in self.grounded.items() if not g]
        return sum(not self.answerable[q] for q in flagged) / len(flagged) if flagged else None

    @property
    def abstention_recall(self) -> float | None:
        unanswerable = [q for q, a in self.answerable.items() if not a]
        return sum(not self.grounded[q] for q in unanswerable) / len(unanswerable) if unanswerable else None

    @property
    def answered_rate(self) -> float | None:
        """Share of answerable questions whose answer is grounded."""
        answerable = [q for q, a in self.answerable.items() if a]
        return sum(self.grounded[q] for q in answerable) / len(answerable) if answerable else None

    def misses(self, k: int) -> list[str]:
        return [qid for qid, rank in self.ranks.items() if rank is None or rank > k]


def load_questions(path: Path, sample: int = 1) -> list[Question]:
    """The questions of a file; with ``sample`` n, every n-th (the 1st, the (n+1)-th, ...), a fixed subset."""
    if sample < 1:
        raise QAError(f"sample must be at least 1, not {sample}")
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            questions.append(_question(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise QAError(f"{path}:{number}: not a question line ({exc})") from None
    return questions[::sample]


def _question(raw: dict[str, Any]) -> Question:
    answers = tuple(Span(int(a["start"]), int(a["end"])) for a in raw.get("answers", ()))
    if answers and not raw.get("doc"):
        raise ValueError("answers given as offsets need the doc they are offsets into")
    if any(a.end <= a.start for a in answers):
        raise ValueError("an answer span is empty")
    return Question(
        id=str(raw["id"]),
        question=str(raw["question"]),
        evidence=tuple(str(e) for e in raw.get("evidence", ())),
        answerable=bool(raw.get("answerable", True)),
        doc=str(raw["doc"]) if answers else None,
        answers=answers,
    )


def contains_evidence(text: str, evidence: Sequence[str]) -> bool:
    folded = normalize(text)
    return any(normalize(e) in folded for e in evidence)


def first_hit_rank(answer: Answer, question: Question) -> int | None:
    """Rank of the first result whose passage (or a corroborating one listed under it) answers ``question``."""
    for r in answer.results:
        found = (
            question.found_in(c.doc_id, c.start, c.end, text)
            for c, text in [(r.citation, r.text), *((o.citation, o.text) for o in r.also_reported_in)]
        )
        if any(found):
            return r.rank
    return None


def answer_sentence_hit(top: Result, question: Question) -> bool:
    """Whether the first highlighted sentence of the top passage covers one of the question's answer spans."""
    if not top.highlights:
        return False
    first = top.highlights[0]
    return question.found_in(top.citation.doc_id, first.source_start, first.source_end, "")


def evaluate_questions(
    searcher: Searcher,
    questions: Sequence[Question],
    ks: tuple[int, ...] = QUESTION_KS,
    mode: str = "hybrid",
    group: bool = True,
) -> QuestionReport:
    depth = max(ks)
    report = QuestionReport(ks=ks, recall={}, mrr=0.0, answerable={q.id: q.answerable for q in questions})
    for q in questions:
        answer = searcher.ask(q.question, depth, mode=mode, group=group)
        report.grounded[q.id] = answer.grounded
        report.grounding_scores[q.id] = answer.grounding_score
        report.passage_chars.extend(len(r.text) for r in answer.results)
        if not q.answerable:
            continue
        report.ranks[q.id] = first_hit_rank(answer, q)
        report.distinct_docs[q.id] = len({r.citation.doc_id for r in answer.results[:3]})
        if q.answers:
            report.answer_sentence[q.id] = bool(answer.results) and answer_sentence_hit(answer.results[0], q)
    n = max(1, len(report.ranks))
    report.recall = {k: sum(1 for r in report.ranks.values() if r is not None and r <= k) / n for k in ks}
    report.mrr = sum(1.0 / r for r in report.ranks.values() if r is not None) / n
    return report


# -- BEIR ---------------------------------------------------------------------------------

#: ``run[query_id][doc_id] = score``, the shape pytrec_eval takes.
Run = dict[str, dict[str, float]]
#: What ``qa eval --beir`` reports, by the names used in the BEIR paper.
BEIR_MEASURES = ("nDCG@10", "Recall@100", "MRR@10")
#: Documents scored per query: Recall@100, the deepest measure, reads no further.
BEIR_DOCS = 100
#: Passages taken from each retriever per query: ten per document scored, enough for
#: BEIR_DOCS distinct documents when a document has several passages among the best.
BEIR_DEPTH = 10 * BEIR_DOCS


def beir_run(
    searcher: Searcher,
    benchmark: Benchmark,
    mode: Mode,
    vectors: Vectors,
    depth: int = BEIR_DEPTH,
    docs: int = BEIR_DOCS,
) -> Run:
    """Each query's ``docs`` best documents; a document scores its best passage's score.

    ``vectors`` are the queries' embeddings, in the order of ``benchmark.queries``;
    ``depth`` passages are taken from each retriever, enough for ``docs`` distinct documents.
    """
    run: Run = {}
    for (qid, text), vector in zip(benchmark.queries.items(), vectors, strict=True):
        best: dict[str, float] = {}
        for hit in searcher.rank(text, vector, mode, depth):
            if hit.doc_id not in best:
                best[hit.doc_id] = hit.score
            if len(best) == docs:
                break
        run[qid] = best
    return run


def score_run(qrels: Qrels, run: Run) -> dict[str, float]:
    """Mean nDCG@10, Recall@100 and MRR@10 of a run over every judged query, computed by pytrec_eval.

    These are trec_eval's own measures, as BEIR reports them (nDCG with linear gains).
    MRR@10 is trec_eval's reciprocal rank on each query's ten best documents. A judged
    query that the run has no documents for scores 0 (trec_eval's ``-c``).
    """
    judged = {q: r for q, r in qrels.items() if r}
    if not judged:
        raise QAError("there are no relevance judgements to score against")
    full = pytrec_eval.RelevanceEvaluator(judged, {"ndcg_cut.10", "recall.100"}).evaluate(run)
    top10 = {q: dict(sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))[:10]) for q, docs in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"}).evaluate(top10)
    n = len(judged)
    # A query the run has nothing for scores 0, as trec_eval -c does.
    return {
        "nDCG@10": sum(full.get(q, {}).get("ndcg_cut_10", 0.0) for q in judged) / n,
        "Recall@100": sum(full.get(q, {}).get("recall_100", 0.0) for q in judged) / n,
        "MRR@10": sum(rr.get(q, {}).get("recip_rank", 0.0) for q in judged) / n,
    }


def evaluate_beir(
    searcher: Searcher, benchmark: Benchmark, modes: Sequence[Mode] = MODES, depth: int = BEIR_DEPTH
) -> dict[str, dict[str, float]]:
    """``{mode: {measure: value}}`` for each retrieval mode on a benchmark."""
    vectors = searcher.embedder.embed_batch(list(benchmark.queries.values()))
    return {mode: score_run(benchmark.qrels, beir_run(searcher, benchmark, mode, vectors, depth)) for mode in modes}


def open_beir_index(
    benchmark: Benchmark,
    where: Path | StoreLocation,
    embedder: Embedder,
    config: ChunkerConfig,
    progress: Progress | None = None,
) -> PassageStore:
    """The index of a benchmark's corpus, built first unless ``where`` already holds it.

    The corpus is chunked and embedded as the service is configured (``config``), so the
    figures describe what is served: titles are embedded only when ``embed_title`` is on
    (it is off by default; on SQuAD it bought nothing: docs/benchmarks.md, "SQuAD").
    Vectors already embedded for the same text are reused from the folder's cache.
    """
    return open_store(where, _beir_build(benchmark, where, embedder, config, progress))


def _beir_build(
    benchmark: Benchmark,
    where: Path | StoreLocation,
    embedder: Embedder,
    config: ChunkerConfig,
    progress: Progress | None,
) -> BuildIdentity:
    """Build the benchmark's corpus into ``where`` (a folder or a database) unless it holds it already;
    what opening it expects."""
    corpus = {"path": str(benchmark.path.resolve()), "sha256": benchmark.fingerprint()}
    expected = BuildIdentity.of(embedder, config)
    location = locate(where)
    try:
        manifest = location.live_manifest()
        fresh = not compatibility_problems(manifest, expected) and manifest.get("corpus") == corpus
    except IndexStoreError:
        fresh = False
    if not fresh:
        location.build(benchmark.documents, embedder, config, corpus, progress)
    return expected


def run_beir(
    path: Path,
    split: str,
    where: Path | StoreLocation,
    embedder: Embedder,
    config: ChunkerConfig,
    modes: Sequence[Mode] = MODES,
    progress: Progress | None = None,
    query_embedder: Embedder | None = None,
) -> dict[str, Any]:
    """``qa eval --beir``: index the benchmark's corpus (unless ``where`` already holds it) and score it.

    ``embedder`` builds the index; ``query_embedder`` (default: the same) encodes the queries.
    """
    benchmark = load_benchmark(path, split)
    expected = _beir_build(benchmark, where, embedder, config, progress)
    searcher = open_searcher(where, query_embedder or embedder, expected)
    store = searcher.store
    try:
        scores = evaluate_beir(searcher, benchmark, modes)
        return {
            "benchmark": path.resolve().name,
            "split": split,
            "queries": len(benchmark.queries),
            "documents": len(benchmark.documents),
            "passages": store.passage_count,
            "build_id": store.build_id,
            "modes": scores,
        }
    finally:
        store.close()


def run_questions(
    path: Path,
    where: Path | StoreLocation,
    embedder: Embedder,
    config: ChunkerConfig,
    modes: Sequence[Mode] = MODES,
    sample: int = 1,
) -> dict[str, Any]:
    """``qa eval --questions``: Recall@1/3/5/10, MRR@10, answer-sentence@1, distinct documents in the
    top 3, mean passage length and abstention for each mode over the built index (every
    ``sample``-th question)."""
    questions = load_questions(path, sample)
    searcher = open_searcher(where, embedder, BuildIdentity.of(embedder, config))
    store = searcher.store
    try:
        figures: dict[str, Any] = {}
        for mode in modes:
            report = evaluate_questions(searcher, questions, mode=mode)
            figures[mode] = {
                **{f"recall@{k}": v for k, v in report.recall.items()},
                "mrr": report.mrr,
                "answer_sentence@1": report.answer_sentence_at_1,
                "distinct_docs@3": report.distinct_docs_at_3,
                "passage_chars": report.mean_passage_chars,
                "abstention_precision": report.abstention_precision,
                "abstention_recall": report.abstention_recall,
                "answered_rate": report.answered_rate,
                "misses@3": report.misses(3),
                "grounding_scores": report.grounding_scores,
            }
        return {
            "questions": len(questions),
            "unanswerable": sum(not q.answerable for q in questions),
            "build_id": store.build_id,
            "modes": figures,
        }
    finally:
        store.close()

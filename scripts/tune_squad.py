"""Tune passage ranking on the SQuAD dev half (and the seed questions) from cached candidate features.

Retrieves every question's candidates once per build (the dense top ``--depth`` and the
lexical top ``--depth``, as hybrid does) with all the scores a ranking could use, caches
them beside the index, then re-ranks in NumPy for each variant, so a sweep costs seconds::

    python scripts/tune_squad.py --index bench-results/index-squad --sample 5
    python scripts/tune_squad.py --index bench-results/index-seeds --questions ../shared/eval/questions.jsonl

Features of each candidate: the passage cosine, the best stored-sentence cosine (and the
best sentence plus its neighbours), the passage's FTS5 BM25 and its whole document's; for
the variants that did not win (docs/benchmarks.md, "Where the rest is lost"): each
sentence's share of the question's bigrams and whether it holds the answer type the
question asks for, the whole passage's term share, and a linear ranker learned on three
quarters of the articles and scored on the rest (``--learn``). A hit
is scored as ``qa eval`` does (answer spans by place, evidence strings by text); folding of
near-duplicates across articles is not simulated (``qa eval`` checks the chosen variant).
Prints, per variant: R@1/3/5/10, MRR@10, answer-sentence@1, distinct documents in the top 3.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.embedding.factory import make_encoder
from qa.evaluation.questions import Question, load_questions
from qa.index.protocol import PassageStore
from qa.search.evidence import HIGHLIGHT_MARGIN, HIGHLIGHT_TERM_WEIGHT
from qa.search.terms import STEM, query_terms, term_shares
from qa.service import open_store
from qa.text import STOPWORDS
from qa.text import terms as words_of

#: How far down each retriever's list candidates come from: Fusion.depth, what hybrid uses.
DEPTH = 100
KS = (1, 3, 5, 10)
#: Hybrid's second stage looks at this many first-stage candidates (Fusion.rerank_depth).
RERANK = 20


@dataclass
class Candidates:
    """One question's candidates (arrays aligned by candidate) and which of them answer it."""

    question: str
    #: Each candidate's place in the build (what breaks score ties, as in the searcher).
    position: np.ndarray
    doc: np.ndarray
    texts: list[str]
    #: Each candidate's sentences as ``[start, end)`` in its text.
    sentence_spans: list[list[tuple[int, int]]]
    length: np.ndarray
    cosine: np.ndarray
    bm25: np.ndarray
    doc_bm25: np.ndarray
    sentence_cosines: list[np.ndarray]
    sentence_hits: list[np.ndarray]
    hit: np.ndarray
    dense_rank: np.ndarray
    lexical_rank: np.ndarray
    #: Derived once (see :func:`prepare`): best sentence cosine, best sentence in its context,
    #: the lexical side for each document weight tried, the first highlighted sentence's hit.
    best: np.ndarray | None = None
    window: np.ndarray | None = None
    first_sentence_hit: np.ndarray | None = None
    sentence_lexical: list[np.ndarray] | None = None
    best_lexical: np.ndarray | None = None
    #: Per sentence: share of the question's bigrams, and whether it holds the answer type asked.
    sentence_bigrams: list[np.ndarray] | None = None
    sentence_types: list[np.ndarray] | None = None
    passage_share: np.ndarray | None = None


def collect(index: PassageStore, embedder: object, questions: list[Question], depth: int) -> list[Candidates]:
    texts = [q.question for q in questions]
    vectors = embedder.embed_batch(texts)  # type: ignore[attr-defined]
    return [candidates(index, q, query, depth) for q, query in zip(questions, vectors, strict=True)]


def candidates(index: PassageStore, q: Question, query: np.ndarray, depth: int) -> Candidates:
    """One question's candidates: the dense and the lexical top ``depth``, each with both scores."""
    dense = index.dense(query, depth)
    terms = query_terms(q.question)
    found = index.lexical(terms, depth, (1.0, 1.0)) if terms else []
    ids = list(dict.fromkeys([h.passage_id for h in dense] + [h.passage_id for h in found]))
    scores = index.scores(ids, query=query, terms=terms or None, weights=(1.0, 1.0))
    records = {p.passage_id: p for p in index.passages(ids)}
    docs = [records[i].doc_id for i in ids]
    doc_scores = index.document_scores(terms, list(set(docs)), (1.0, 1.0)) if terms else {}
    stored = index.sentences(ids)
    sentence_cosines, sentence_hits, sentence_spans = [], [], []
    for i in ids:
        sentences = stored.get(i)
        spans = sentences.spans if sentences is not None else []
        p = records[i]
        sentence_spans.append(spans)
        sentence_cosines.append(
            sentences.vectors @ query if sentences is not None and spans else np.zeros(0, dtype=np.float32)
        )
        sentence_hits.append(np.array([q.found_in(p.doc_id, p.start + s, p.start + e, "") for s, e in spans]))
    dense_order = {h.passage_id: n for n, h in enumerate(dense)}
    lexical_order = {h.passage_id: n for n, h in enumerate(found)}
    return Candidates(
        question=q.question,
        position=np.array([records[i].position for i in ids]),
        doc=np.array(docs),
        texts=[records[i].text for i in ids],
        sentence_spans=sentence_spans,
        length=np.array([len(records[i].text) for i in ids]),
        cosine=np.array([scores[i].cosine or 0.0 for i in ids]),
        bm25=np.array([scores[i].lexical or 0.0 for i in ids]),
        doc_bm25=np.array([doc_scores.get(d, 0.0) for d in docs]),
        sentence_cosines=sentence_cosines,
        sentence_hits=sentence_hits,
        hit=np.array([q.found_in(records[i].doc_id, records[i].start, records[i].end, records[i].text) for i in ids]),
        dense_rank=np.array([dense_order.get(i, 10**6) for i in ids]),
        lexical_rank=np.array([lexical_order.get(i, 10**6) for i in ids]),
    )


def load_or_collect(args: argparse.Namespace) -> list[Candidates]:
    index = open_store(args.index, None)  # reads only what the build stored; the questions are encoded here
    try:
        name = f"{index.build_id}-{args.questions.stem}-{args.sample}-{args.depth}-v3.pickle"
        cache = args.cache / name
        if cache.exists():
            return pickle.loads(cache.read_bytes())  # noqa: S301 - a cache this script wrote
        questions = [q for q in load_questions(args.questions, args.sample) if q.answerable]
        embedder = make_encoder(None, args.encoder)
        candidates = collect(index, embedder, questions, args.depth)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps(candidates))
        return candidates
    finally:
        index.close()


# -- features and variants ------------------------------------------------------------------


def unit(x: np.ndarray) -> np.ndarray:
    """``x`` divided by its maximum over the candidates (0 when nothing scores)."""
    top = float(x.max()) if len(x) else 0.0
    return x / top if top > 0 else np.zeros_like(x, dtype=float)


def sentence_lexical(c: Candidates) -> list[np.ndarray]:
    """Per sentence, its share of the question's terms (the library's own, IDF over all candidates)."""
    return term_shares(c.question, list(zip(c.texts, c.sentence_spans, strict=True)), STOPWORDS)


def prepare(c: Candidates) -> Candidates:
    c.sentence_lexical = sentence_lexical(c)
    c.best_lexical = np.array([float(x.max()) if len(x) else 0.0 for x in c.sentence_lexical])
    c.best = best_sentence(c)
    c.window = sentence_window(c)
    first = []
    for cos, terms, found in zip(c.sentence_cosines, c.sentence_lexical, c.sentence_hits, strict=True):
        chosen = cos + HIGHLIGHT_TERM_WEIGHT * terms
        at = int(np.nonzero(chosen >= chosen.max() - HIGHLIGHT_MARGIN)[0][0]) if len(cos) else None
        first.append(bool(at is not None and found[at]))
    c.first_sentence_hit = np.array(first)
    c.sentence_bigrams, c.sentence_types = sentence_extras(c)
    c.passage_share = np.array([float(x[0]) for x in term_shares(c.question, [(t, [(0, len(t))]) for t in c.texts])])
    return c


#: Questions asking for a number or a date, and for a person.
NUMBER_QUESTION = re.compile(
    r"\b(how (many|much|long|old|far)|when|what (year|percentage|date|decade|century))\b", re.I
)
PERSON_QUESTION = re.compile(r"\b(who|whom|whose)\b", re.I)
#: A capitalised word that does not start a sentence.
NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][a-z]+")


def bigrams(text: str) -> set[tuple[str, str]]:
    """Adjacent words cut to STEM letters, except pairs of two stop words."""
    return {
        (a[:STEM], b[:STEM]) for a, b in itertools.pairwise(words_of(text)) if not (a in STOPWORDS and b in STOPWORDS)
    }


def answer_type(question: str, sentence: str) -> float:
    """1 when the sentence holds what the question asks for (a number, a name not in the question)."""
    if NUMBER_QUESTION.search(question):
        return float(any(ch.isdigit() for ch in sentence))
    if PERSON_QUESTION.search(question):
        asked = set(words_of(question))
        return float(any(m.group(0).lower() not in asked for m in NAME.finditer(sentence)))
    return 0.0


def sentence_extras(c: Candidates) -> tuple[list[np.ndarray], list[np.ndarray]]:
    asked = bigrams(c.question)
    shares, types = [], []
    for text, spans in zip(c.texts, c.sentence_spans, strict=True):
        said = [text[s:e] for s, e in spans]
        shares.append(np.array([len(asked & bigrams(x)) / len(asked) if asked else 0.0 for x in said]))
        types.append(np.array([answer_type(c.question, x) for x in said]))
    return shares, types


def best_sentence(c: Candidates) -> np.ndarray:
    pairs = zip(c.sentence_cosines, c.cosine, strict=True)
    return np.array([float(s.max()) if len(s) else float(cos) for s, cos in pairs])


def sentence_window(c: Candidates) -> np.ndarray:
    """The best sentence's cosine plus half its neighbours' mean: a sentence read in its context."""
    out = []
    for s, cos in zip(c.sentence_cosines, c.cosine, strict=True):
        if not len(s):
            out.append(float(cos))
            continue
        padded = np.concatenate([[s[0]], s, [s[-1]]])
        out.append(float(np.max(s + 0.5 * (padded[:-2] + padded[2:]) / 2)) / 1.5)
    return np.array(out)


def lexical(c: Candidates, document_weight: float) -> np.ndarray:
    mixed = (1 - document_weight) * unit(c.bm25) + document_weight * unit(c.doc_bm25)
    return unit(mixed)


Scorer = Callable[[Candidates], np.ndarray]


def convex(dense: float, sentence: float, document_weight: float, window: bool = False) -> Scorer:
    """``dense * cosine + sentence * best sentence + (1 - dense - sentence) * lexical``."""

    def score(c: Candidates) -> np.ndarray:
        s = c.window if window else c.best
        return dense * c.cosine + sentence * s + (1 - dense - sentence) * lexical(c, document_weight)

    return score


def two_stage(dense: float, document_weight: float, sentence: float, terms: float, depth: int = RERANK) -> Scorer:
    """What hybrid does: ``dense * cosine + (1 - dense) * lexical``, then for the best ``depth``
    of those ``+ sentence * best sentence cosine + terms * best sentence term share``."""

    def score(c: Candidates) -> np.ndarray:
        first = dense * c.cosine + (1 - dense) * lexical(c, document_weight)
        top = np.lexsort((c.position, -first))[:depth]
        extra = sentence * np.maximum(c.best, 0.0) + terms * c.best_lexical  # type: ignore[operator]
        out = first.copy()
        out[top] += extra[top]
        return out

    return score


def extended(bigram: float, answer: float, passage: float, joint: bool = False) -> Scorer:
    """The chosen two-stage ranking plus bigram share, answer type and passage term share.

    ``joint`` scores one sentence on all its signals (the best such sentence) instead of
    adding each signal's best sentence."""

    def score(c: Candidates) -> np.ndarray:
        first = 0.6 * c.cosine + 0.4 * lexical(c, 0.0)
        top = np.lexsort((c.position, -first))[:RERANK]
        out = first.copy()
        for i in top:
            cos, share = c.sentence_cosines[i], c.sentence_lexical[i]  # type: ignore[index]
            pairs, kinds = c.sentence_bigrams[i], c.sentence_types[i]  # type: ignore[index]
            out[i] += passage * c.passage_share[i]  # type: ignore[index]
            if not len(cos):
                continue
            if joint:
                out[i] += float((0.4 * np.maximum(cos, 0) + 0.4 * share + bigram * pairs + answer * kinds).max())
            else:
                out[i] += 0.4 * max(float(cos.max()), 0.0) + 0.4 * float(share.max())
                out[i] += bigram * float(pairs.max()) + answer * float(kinds.max())
        return out

    return score


def second_stage_features(c: Candidates) -> tuple[np.ndarray, np.ndarray]:
    """The first stage's best RERANK candidates and their features, one row each."""
    first = 0.6 * c.cosine + 0.4 * lexical(c, 0.0)
    top = np.lexsort((c.position, -first))[:RERANK]
    rows = []
    for i in top:
        cos, share, pairs = c.sentence_cosines[i], c.sentence_lexical[i], c.sentence_bigrams[i]  # type: ignore[index]
        some = len(cos) > 0
        rows.append(
            [
                c.cosine[i],
                lexical(c, 0.0)[i],
                max(float(cos.max()), 0.0) if some else 0.0,
                float(share.max()) if some else 0.0,
                float(pairs.max()) if some else 0.0,
                float((cos + share).max()) if some else 0.0,
                unit(c.doc_bm25)[i],
            ]
        )
    return top, np.array(rows)


#: Gradient steps and rate of the learned ranker, and its L2 penalty: enough for the
#: training loss to settle on the dev half (it moves under 0.1% over the last 100 steps).
LEARN_STEPS, LEARN_RATE, LEARN_L2 = 300, 0.5, 1e-3


def learned(cands: list[Candidates], folds: int = 4) -> dict[str, float]:
    """A listwise linear ranker over :func:`second_stage_features`, trained on the questions of
    ``folds - 1`` parts of the articles and scored on the rest, for each part: R@1 and R@3."""
    data = []
    for c in cands:
        top, features = second_stage_features(c)
        article = str(c.doc[np.nonzero(c.hit)[0][0]]) if c.hit.any() else ""
        data.append((c, top, features, c.hit[top], article))
    articles = sorted({d[4] for d in data})
    hits = {1: 0, 3: 0}
    for part in range(folds):
        held = set(articles[part::folds])
        w = np.zeros(data[0][2].shape[1])
        train = [d for d in data if d[4] not in held and d[3].any() and not d[3].all()]
        for _ in range(LEARN_STEPS):
            grad = np.zeros_like(w)
            for _c, _top, x, y, _a in train:
                s = x @ w
                p = np.exp(s - s.max())
                grad += x.T @ (p / p.sum() - y / y.sum())
            w -= LEARN_RATE * (grad / len(train) + LEARN_L2 * w)
        for c, top, x, y, a in data:
            if a in held:
                ranked = np.lexsort((c.position[top], -(x @ w)))
                hits[1] += bool(y[ranked[0]])
                hits[3] += bool(y[ranked[:3]].any())
    return {"R@1": hits[1] / len(cands), "R@3": hits[3] / len(cands)}


def rrf(c: Candidates, k: int = 60) -> np.ndarray:
    return 1.0 / (k + c.dense_rank + 1) + 1.0 / (k + c.lexical_rank + 1)


def order(c: Candidates, score: np.ndarray, same_doc_penalty: float = 0.0) -> np.ndarray:
    """Candidates best first; with a penalty, each further passage of an article already listed loses it."""
    ranked = np.lexsort((c.position, -score))
    if same_doc_penalty <= 0:
        return ranked
    chosen: list[int] = []
    seen: dict[str, int] = {}
    remaining = list(ranked[:30])
    while remaining and len(chosen) < 10:
        adjusted = [score[i] - same_doc_penalty * seen.get(c.doc[i], 0) for i in remaining]
        pick = remaining.pop(int(np.argmax(adjusted)))
        chosen.append(pick)
        seen[c.doc[pick]] = seen.get(c.doc[pick], 0) + 1
    return np.array(chosen)


def measure(cands: list[Candidates], scorer: Scorer, penalty: float = 0.0) -> dict[str, float]:
    ranks, sentence, docs, chars = [], [], [], []
    for c in cands:
        ranked = order(c, scorer(c), penalty)[:10]
        hits = np.nonzero(c.hit[ranked])[0]
        ranks.append(int(hits[0]) + 1 if len(hits) else None)
        sentence.append(bool(c.first_sentence_hit[ranked[0]]))  # type: ignore[index]
        docs.append(len(set(c.doc[ranked[:3]])))
        chars.extend(c.length[ranked])
    n = len(cands)
    figures = {f"R@{k}": sum(1 for r in ranks if r is not None and r <= k) / n for k in KS}
    figures["MRR@10"] = sum(1 / r for r in ranks if r is not None) / n
    figures["sent@1"] = sum(sentence) / n
    figures["docs@3"] = sum(docs) / n
    figures["chars"] = float(np.mean(chars))
    return figures


def variants(args: argparse.Namespace) -> dict[str, tuple[Scorer, float]]:
    out: dict[str, tuple[Scorer, float]] = {
        "today (0.7 cos + 0.3 lex, document 0.5)": (convex(0.7, 0.0, 0.5), 0.0),
        "dense": (lambda c: c.cosine, 0.0),
        "lexical (document 0.5)": (lambda c: lexical(c, 0.5), 0.0),
        "lexical (passage only)": (lambda c: lexical(c, 0.0), 0.0),
        "rrf k=60": (rrf, 0.0),
        "issue: 0.35 cos + 0.65 passage BM25": (convex(0.35, 0.0, 0.0), 0.0),
    }
    for a in (0.0, 0.1, 0.2, 0.3, 0.5):
        for w in (0.2, 0.3, 0.4, 0.5, 0.6):
            out[f"convex cos {w}, document {a}"] = (convex(w, 0.0, a), 0.0)
            for s in (0.1, 0.2, 0.3):
                if w + s < 0.95:
                    out[f"convex cos {w}, sentence {s}, document {a}"] = (convex(w, s, a), 0.0)
                    out[f"convex cos {w}, window {s}, document {a}"] = (convex(w, s, a, window=True), 0.0)
    for d in (0.3, 0.4, 0.5, 0.6, 0.7):
        for a in (0.0, 0.2, 0.3, 0.5):
            for sw in (0.0, 0.2, 0.4):
                for x in (0.0, 0.1, 0.2, 0.3, 0.4):
                    out[f"two-stage cos {d}, document {a}, sentence {sw}, terms {x}"] = (two_stage(d, a, sw, x), 0.0)
    for penalty in args.penalties:
        out[f"chosen + same-article penalty {penalty}"] = (two_stage(*args.chosen), penalty)
    for joint in (False, True):
        for b in (0.0, 0.1, 0.2, 0.4):
            for t in (0.0, 0.05, 0.1, 0.2):
                out[f"extra bigram {b}, answer type {t}{', joint' if joint else ''}"] = (
                    extended(b, t, 0.0, joint),
                    0.0,
                )
    for p in (0.1, 0.2, 0.4, 0.6):
        out[f"extra passage term share {p}"] = (extended(0.0, 0.0, p), 0.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path("bench-results/index-squad"))
    parser.add_argument("--questions", type=Path, default=Path("../shared/bench/squad/questions.jsonl"))
    parser.add_argument("--sample", type=int, default=5, help="Every N-th question (5: 1,080 of 5,397).")
    parser.add_argument("--depth", type=int, default=DEPTH)
    parser.add_argument("--encoder", default="onnx", help="What encodes the questions (the service's default).")
    parser.add_argument("--cache", type=Path, default=Path("bench-results/tune-squad"))
    parser.add_argument(
        "--chosen", type=float, nargs=4, default=(0.5, 0.3, 0.2, 0.2), metavar=("COS", "DOC", "SENT", "TERMS")
    )
    parser.add_argument("--penalties", type=float, nargs="*", default=(0.0, 0.02, 0.05, 0.1))
    parser.add_argument("--top", type=int, default=25, help="Variants printed, best R@1 first (all in --out).")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--learn", action="store_true", help="Also fit and score the learned ranker (minutes).")
    args = parser.parse_args()
    cands = [prepare(c) for c in load_or_collect(args)]
    found = sum(bool(c.hit.any()) for c in cands) / len(cands)
    print(f"{len(cands)} questions; an answering passage among the candidates for {found:.3f}")
    results = {name: measure(cands, scorer, penalty) for name, (scorer, penalty) in variants(args).items()}
    swept = ("convex", "two-stage", "extra")
    fixed = [n for n in results if not n.startswith(swept)]
    best = sorted((n for n in results if n.startswith(swept)), key=lambda n: -results[n]["R@1"])[: args.top]
    columns = list(next(iter(results.values())))
    print(f"{'variant':<60} " + " ".join(f"{c:>7}" for c in columns))
    for name in [*fixed, *best]:
        print(f"{name:<60} " + " ".join(f"{results[name][c]:>7.3f}" for c in columns))
    if args.learn:
        results["learned (4 folds by article)"] = learned(cands)
        print("learned linear ranker, 4 folds by article:", results["learned (4 folds by article)"])
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

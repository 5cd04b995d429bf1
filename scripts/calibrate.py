"""Measure the two thresholds of qa.search.evidence: corroboration grouping and grounding (abstention).

    python scripts/calibrate.py                       # seeds only
    python scripts/calibrate.py --beir ../shared/bench/scifact --beir-index bench-results/index-scifact

Grouping: eval/corroboration_pairs.jsonl holds the 51 closest cross-article sentence
pairs of the seeds (by the model's cosine), each labelled by hand: do the two sentences
report the same statement? The script builds the seeds (sentence vectors made as
QA_SENTENCE_VECTORS says), takes the vectors the build stores for the two sentences,
sweeps the cosine and word-overlap thresholds and prints precision and recall of
"same statement" for each.

Grounding: the grounding score of an answer is the best highlighted sentence's cosine
to the question. Positives are the answerable seed questions; negatives are the seed
questions marked unanswerable, plus SciFact train queries asked of the seeds (questions
the corpus cannot answer). With --beir-index, SciFact train queries asked of SciFact
show how often answerable questions of another corpus clear the threshold.

With --squad, grounding is measured at scale: the SQuAD dev-half articles are split in two
(every other file), one half is built, and every --sample-th question of both halves is
asked of it. Questions whose article was built should be grounded, the others should not:
the script prints precision and recall of ``grounded`` for each threshold::

    python scripts/calibrate.py --squad ../shared/bench/squad --squad-index bench-results/index-squad-half
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.embedding.base import SentenceTransformerEmbedder
from qa.evaluation.beir import load_benchmark
from qa.evaluation.questions import load_questions, open_beir_index
from qa.index.embedded.store import EmbeddedStore
from qa.index.location import build_index
from qa.index.manifest import BuildIdentity
from qa.ingest.chunking import ChunkerConfig
from qa.search.evidence import GROUNDED_THRESHOLD, GROUP_COSINE, GROUP_OVERLAP
from qa.search.retrieval import Searcher
from qa.text import content_words

ROOT = Path(__file__).resolve().parents[1]


def stored_sentence_vectors(embedder: SentenceTransformerEmbedder, texts: list[str]) -> np.ndarray:
    """The vectors a seeds build (made as the settings say: QA_SENTENCE_VECTORS) stores for these sentences."""
    config = ChunkerConfig.from_settings(Settings())
    found: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        build_index(ROOT / "seeds", Path(tmp), embedder, config)
        index = EmbeddedStore.open(Path(tmp), BuildIdentity.of(embedder, config))
        records = [p for d in index.documents() for p in index.document_passages(d.doc_id)]
        stored = index.sentences([p.passage_id for p in records])
        for p in records:
            for (start, end), vector in zip(stored[p.passage_id].spans, stored[p.passage_id].vectors, strict=True):
                found.setdefault(p.text[start:end], vector)
        index.close()
    missing = [t for t in texts if t not in found]
    if missing:
        raise SystemExit(f"{len(missing)} labelled sentences are not sentences of the seeds build: {missing[:2]}")
    return np.vstack([found[t] for t in texts])


def grouping(embedder: SentenceTransformerEmbedder) -> None:
    pairs = [json.loads(line) for line in (ROOT / "eval" / "corroboration_pairs.jsonl").read_text().splitlines()]
    vectors = stored_sentence_vectors(embedder, [p["a"] for p in pairs] + [p["b"] for p in pairs])
    a, b = vectors[: len(pairs)], vectors[len(pairs) :]
    cosine = (a * b).sum(axis=1)
    overlap = []
    for p in pairs:
        x, y = content_words(p["a"]), content_words(p["b"])
        overlap.append(len(x & y) / min(len(x), len(y)) if x and y else 0.0)
    label = np.array([p["same_statement"] for p in pairs])
    print(f"grouping: {len(pairs)} labelled pairs, {label.sum()} report the same statement")
    print(f"{'cosine':>7} {'overlap':>8} {'P':>6} {'R':>6} {'F1':>6}")
    for c in (0.70, 0.74, 0.76, 0.78, 0.80):
        for o in (0.0, 0.3, 0.4, 0.5):
            pred = (cosine >= c) & (np.array(overlap) >= o)
            tp = int((pred & label).sum())
            fp = int((pred & ~label).sum())
            fn = int((~pred & label).sum())
            mark = "  <- qa.search.evidence" if (c, o) == (GROUP_COSINE, GROUP_OVERLAP) else ""
            precision = tp / (tp + fp) if tp + fp else 1.0
            recall, f1 = tp / (tp + fn), 2 * tp / (2 * tp + fp + fn)
            print(f"{c:>7.2f} {o:>8.2f} {precision:>6.3f} {recall:>6.3f} {f1:>6.3f}{mark}")


def grounding(embedder: SentenceTransformerEmbedder, beir: Path, beir_index: Path | None, n: int) -> None:
    settings = Settings()
    config = ChunkerConfig.from_settings(settings)
    with tempfile.TemporaryDirectory() as tmp:
        build_index(ROOT / "seeds", Path(tmp), embedder, config)
        index = EmbeddedStore.open(Path(tmp), BuildIdentity.of(embedder, config))
        seeds = Searcher(index, embedder)
        questions = load_questions(ROOT.parent / "shared" / "eval" / "questions.jsonl")
        scores = {q.id: seeds.ask(q.question, 5).grounding_score or 0.0 for q in questions}
        positive = [scores[q.id] for q in questions if q.answerable]
        negative = [scores[q.id] for q in questions if not q.answerable]
        train = load_benchmark(beir, "train")
        offtopic = [seeds.ask(t, 5).grounding_score or 0.0 for t in list(train.queries.values())[:n]]
        index.close()
    other: list[float] = []
    if beir_index is not None:
        index = open_beir_index(train, beir_index, embedder, config)
        scifact = Searcher(index, embedder)
        other = [scifact.ask(t, 5).grounding_score or 0.0 for t in list(train.queries.values())[:n]]
        index.close()
    print(f"\ngrounding scores: answerable seed questions min {min(positive):.3f} median {np.median(positive):.3f}")
    print(f"  unanswerable seed questions: {', '.join(f'{s:.3f}' for s in negative)}")
    print(f"  {len(offtopic)} SciFact train queries asked of the seeds: max {max(offtopic):.3f}")
    if other:
        print(
            f"  {len(other)} SciFact train queries asked of SciFact: min {min(other):.3f} median {np.median(other):.3f}"
        )
    print(
        f"{'threshold':>9} {'seed answered':>14} {'seed abst.R':>12} {'off-topic abst.R':>17} {'SciFact answered':>17}"
    )
    for t in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5):
        answered = np.mean([s >= t for s in positive])
        abstained = np.mean([s < t for s in negative])
        offtopic_abstained = np.mean([s < t for s in offtopic])
        scifact_answered = f"{np.mean([s >= t for s in other]):>17.3f}" if other else f"{'-':>17}"
        mark = "  <- qa.search.evidence" if t == GROUNDED_THRESHOLD else ""
        print(f"{t:>9.2f} {answered:>14.3f} {abstained:>12.3f} {offtopic_abstained:>17.3f} {scifact_answered}{mark}")


#: Thresholds swept for the SQuAD split: the grounding score is a cosine, and answerable
#: questions' scores sit between about 0.2 and 0.9 (printed with the sweep).
SQUAD_THRESHOLDS = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55)


def squad_split(embedder: SentenceTransformerEmbedder, squad: Path, index_dir: Path, sample: int) -> None:
    """Build every other SQuAD article, ask the questions of both halves, sweep the grounding threshold."""
    articles = sorted((squad / "articles").glob("*.txt"))
    built = {a.stem for a in articles[::2]}
    config = ChunkerConfig.from_settings(Settings())
    if not (index_dir / "CURRENT").exists():
        with tempfile.TemporaryDirectory() as tmp:
            for article in articles[::2]:
                shutil.copy(article, Path(tmp) / article.name)
            build_index(Path(tmp), index_dir, embedder, config)
    index = EmbeddedStore.open(index_dir, BuildIdentity.of(embedder, config))
    searcher = Searcher(index, embedder)
    questions = load_questions(squad / "questions.jsonl", sample)
    scores = {q.id: searcher.ask(q.question, 5).grounding_score or 0.0 for q in questions}
    index.close()
    inside = np.array([scores[q.id] for q in questions if q.doc in built])
    outside = np.array([scores[q.id] for q in questions if q.doc not in built])
    print(f"\nSQuAD split: {len(built)} of {len(articles)} articles built; every {sample}th question")
    for name, values in (("article built", inside), ("article absent", outside)):
        low, mid, high = np.percentile(values, [10, 50, 90])
        print(f"  {len(values)} questions, {name}: grounding score p10 {low:.3f} median {mid:.3f} p90 {high:.3f}")
    print(f"{'threshold':>9} {'grounded P':>11} {'grounded R':>11} {'abstention P':>13} {'abstention R':>13} {'F1':>6}")
    for t in SQUAD_THRESHOLDS:
        tp, fp = int((inside >= t).sum()), int((outside >= t).sum())
        tn, fn = int((outside < t).sum()), int((inside < t).sum())
        precision, recall = tp / (tp + fp) if tp + fp else 1.0, tp / len(inside)
        abstention_p = tn / (tn + fn) if tn + fn else 1.0
        f1 = 2 * tp / (2 * tp + fp + fn)
        mark = "  <- qa.search.evidence" if t == GROUNDED_THRESHOLD else ""
        print(
            f"{t:>9.2f} {precision:>11.3f} {recall:>11.3f} {abstention_p:>13.3f} {tn / len(outside):>13.3f} {f1:>6.3f}"
            f"{mark}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=ROOT.parent / "shared" / "bench" / "scifact")
    parser.add_argument("--beir-index", type=Path, default=None)
    parser.add_argument("--queries", type=int, default=300, help="SciFact train queries to use.")
    parser.add_argument("--squad", type=Path, default=None, help="A SQuAD folder: measure grounding on a split build.")
    parser.add_argument("--squad-index", type=Path, default=ROOT / "bench-results" / "index-squad-half")
    parser.add_argument("--sample", type=int, default=5, help="Every N-th SQuAD question (5: 1,080 of 5,397).")
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder()
    if args.squad is not None:
        squad_split(embedder, args.squad, args.squad_index, args.sample)
        return
    grouping(embedder)
    grounding(embedder, args.beir, args.beir_index, args.queries)


if __name__ == "__main__":
    main()

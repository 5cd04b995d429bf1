#!/usr/bin/env python
"""Measure retrieval on a question file for several passage budgets and overlaps.

    python scripts/tune_chunking.py --corpus seeds --questions ../shared/eval/questions.jsonl

Builds each configuration into a temporary folder with the real model (loaded once)
and prints Recall@1/3/5, MRR and the passage count per configuration.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from qa.embedding.base import SentenceTransformerEmbedder
from qa.evaluation.questions import evaluate_questions, load_questions
from qa.index.embedded.store import EmbeddedStore
from qa.index.location import build_index
from qa.index.manifest import BuildIdentity
from qa.ingest.chunking import ChunkerConfig
from qa.search.retrieval import Searcher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("seeds"))
    parser.add_argument("--questions", type=Path, default=Path("../shared/eval/questions.jsonl"))
    parser.add_argument("--budgets", default="48,64,96,128,160,200,256")
    parser.add_argument("--overlaps", default="0,1")
    parser.add_argument("--json", type=Path, help="Also write the rows here.")
    args = parser.parse_args()

    questions = load_questions(args.questions)
    embedder = SentenceTransformerEmbedder()
    rows = []
    print(f"{'budget':>6} {'overlap':>7} {'passages':>8} {'R@1':>5} {'R@3':>5} {'R@5':>5} {'MRR':>6}  misses@3")
    for budget in [int(b) for b in args.budgets.split(",")]:
        for overlap in [int(o) for o in args.overlaps.split(",")]:
            config = ChunkerConfig(budget, overlap)
            with tempfile.TemporaryDirectory() as tmp:
                report = build_index(args.corpus, Path(tmp), embedder, config)
                index = EmbeddedStore.open(Path(tmp), BuildIdentity.of(embedder, config))
                result = evaluate_questions(Searcher(index, embedder), questions)
                index.close()
            row = {
                "max_tokens": budget,
                "overlap_sentences": overlap,
                "passages": report.passages,
                **{f"recall@{k}": v for k, v in result.recall.items()},
                "mrr": result.mrr,
                "misses@3": result.misses(3),
            }
            rows.append(row)
            print(
                f"{budget:>6} {overlap:>7} {report.passages:>8} {result.recall[1]:>5.2f} {result.recall[3]:>5.2f} "
                f"{result.recall[5]:>5.2f} {result.mrr:>6.3f}  {' '.join(result.misses(3))}"
            )
    embedder.close()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

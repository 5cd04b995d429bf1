"""Choose the hybrid fusion on SciFact's *train* queries (never the test queries).

Scores every candidate once (dense cosine and BM25, both for every candidate), then
re-ranks in NumPy for each setting, so a sweep costs one retrieval per query::

    python scripts/tune_fusion.py --beir ../shared/bench/scifact --index bench-results/index-scifact

Prints nDCG@10 / Recall@100 / MRR@10 on the train split for:
  * convex fusion ``w * cosine + (1 - w) * lexical / max_lexical`` for a grid of ``w``;
  * reciprocal rank fusion (k = 60) of the same two candidate lists;
  * the lexical side's settings: the share of a passage's lexical score taken from its
    whole document's BM25 (``--document-weights``) and the title column's BM25 weight.
The index must already hold the corpus (``qa eval --beir`` builds it).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.embedding.base import SentenceTransformerEmbedder
from qa.evaluation.beir import load_benchmark
from qa.evaluation.questions import Run, open_beir_index, score_run
from qa.ingest.chunking import ChunkerConfig
from qa.search.retrieval import DEFAULT_FUSION, Searcher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=Path("../shared/bench/scifact"))
    parser.add_argument("--index", type=Path, default=Path("bench-results/index-scifact"))
    parser.add_argument("--split", default="train")
    parser.add_argument("--depth", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("bench-results/tune_fusion.json"))
    parser.add_argument(
        "--document-weights",
        default="0,0.3,0.5,0.7",
        help="Shares of the lexical score taken from the whole document's BM25 (comma-separated).",
    )
    parser.add_argument("--title-weights", default="1,2", help="BM25 weights of the title column (comma-separated).")
    args = parser.parse_args()

    benchmark = load_benchmark(args.beir, args.split)
    embedder = SentenceTransformerEmbedder()
    index = open_beir_index(benchmark, args.index, embedder, ChunkerConfig.from_settings(Settings()))
    vectors = embedder.embed_batch(list(benchmark.queries.values()))
    results: dict[str, dict[str, float]] = {}

    grid = [(float(a), float(t)) for a in args.document_weights.split(",") for t in args.title_weights.split(",")]
    for document_weight, title_weight in grid:
        fusion = replace(
            DEFAULT_FUSION, bm25_weights=(title_weight, 1.0), document_weight=document_weight, depth=args.depth
        )
        searcher = Searcher(index, embedder, fusion)
        # One retrieval per query: every candidate with both of its scores.
        candidates = []
        for (qid, text), vector in zip(benchmark.queries.items(), vectors, strict=True):
            hits = searcher.rank(text, vector, "hybrid", 2 * args.depth)
            docs = [h.doc_id for h in hits]
            dense = np.array([h.dense or 0.0 for h in hits])
            lexical = np.array([h.lexical or 0.0 for h in hits])
            candidates.append((qid, docs, dense, lexical))

        def run_of(scorer: object, candidates: list[tuple[str, list[str], np.ndarray, np.ndarray]] = candidates) -> Run:
            run: Run = {}
            for qid, docs, dense, lexical in candidates:
                scores = scorer(dense, lexical)  # type: ignore[operator]
                best: dict[str, float] = {}
                for i in np.argsort(-scores, kind="stable"):
                    if docs[i] not in best:
                        best[docs[i]] = float(scores[i])
                    if len(best) == 100:
                        break
                run[qid] = best
            return run

        def convex(w: float):  # type: ignore[no-untyped-def]
            return lambda d, x: w * d + (1 - w) * (x / x.max() if x.max() > 0 else x)

        def rrf(d: np.ndarray, x: np.ndarray) -> np.ndarray:
            rd = np.argsort(np.argsort(-d, kind="stable"), kind="stable")
            rx = np.argsort(np.argsort(-x, kind="stable"), kind="stable")
            return 1 / (60 + rd) + np.where(x > 0, 1 / (60 + rx), 0.0)

        tag = f"document={document_weight} title={title_weight}"
        settings = {f"lexical {tag}": lambda d, x: x}
        if (document_weight, title_weight) == grid[0]:
            settings["dense"] = lambda d, x: d
        settings[f"rrf {tag}"] = rrf
        for w in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
            settings[f"convex w={w} {tag}"] = convex(w)
        for name, scorer in settings.items():
            results[name] = score_run(benchmark.qrels, run_of(scorer))
            figures = results[name]
            print(f"{name:<28} " + " ".join(f"{k}={v:.4f}" for k, v in figures.items()), flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    best = max((n for n in results if n.startswith("convex")), key=lambda n: results[n]["nDCG@10"])
    print(f"best convex setting on {args.split}: {best} {results[best]}")


if __name__ == "__main__":
    main()

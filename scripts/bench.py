#!/usr/bin/env python
"""Measure qa against the raw sentence-transformers call, as ratios within one run.

    python scripts/bench.py                       # the seeds
    python scripts/bench.py --scifact 1000        # plus 1,000 SciFact abstracts as articles

(a) The median time of ``SentenceTransformer.encode`` for one question against the
    median time of a full ``GET /ask`` answered in-process (FastAPI TestClient), the two
    interleaved so that machine noise hits both alike. Target: ratio <= 1.5.
(b) Passages per second of ``qa build`` (read, clean, chunk, embed, write, switch; the
    model already loaded) against raw ``encode`` throughput on the same passage texts.
    Target: ratio >= 0.8.

Prints a table and writes the figures as JSON (``--out``, default bench-results/bench.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from fastapi.testclient import TestClient
from sentence_transformers import SentenceTransformer

from qa.api import create_app
from qa.chunking import ChunkerConfig
from qa.config import Settings
from qa.embedding import SentenceTransformerEmbedder, bundled_model_path
from qa.indexing import build_index
from qa.store import Index

QUESTIONS = [
    "Why did India reject an Asian NATO?",
    "Who proposed creating an Asian NATO?",
    "What did Jaishankar say about strategic architecture?",
    "Which firm's data showed Russia as India's largest crude supplier?",
]


def bench_ask(
    settings: Settings, embedder: SentenceTransformerEmbedder, raw: SentenceTransformer, rounds: int
) -> dict[str, Any]:
    raw_times: list[float] = []
    ask_times: list[float] = []
    with TestClient(create_app(settings, embedder=embedder)) as client:
        for question in QUESTIONS:  # warm both paths
            raw.encode([question], normalize_embeddings=True)
            client.get("/ask", params={"q": question, "k": 5}).raise_for_status()
        for i in range(rounds):
            question = QUESTIONS[i % len(QUESTIONS)]
            t0 = time.perf_counter()
            raw.encode([question], normalize_embeddings=True)
            t1 = time.perf_counter()
            response = client.get("/ask", params={"q": question, "k": 5})
            t2 = time.perf_counter()
            response.raise_for_status()
            raw_times.append(t1 - t0)
            ask_times.append(t2 - t1)
    raw_ms = statistics.median(raw_times) * 1000
    ask_ms = statistics.median(ask_times) * 1000
    return {"rounds": rounds, "raw_encode_ms": raw_ms, "ask_ms": ask_ms, "ratio": ask_ms / raw_ms, "target": "<= 1.5"}


def bench_build(
    corpus: Path, config: ChunkerConfig, embedder: SentenceTransformerEmbedder, raw: SentenceTransformer, repeats: int
) -> dict[str, Any]:
    build_times: list[float] = []
    raw_times: list[float] = []
    passages = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            index_dir = Path(tmp) / f"index{i}"
            t0 = time.perf_counter()
            report = build_index(corpus, index_dir, embedder, config)
            build_times.append(time.perf_counter() - t0)
            passages = report.passages
            index = Index.open(index_dir)
            texts = [p.text for p in index.passages(list(range(1, index.passage_count + 1)))]
            index.close()
            t0 = time.perf_counter()
            raw.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True)
            raw_times.append(time.perf_counter() - t0)
    build_rate = passages / statistics.median(build_times)
    raw_rate = passages / statistics.median(raw_times)
    return {
        "corpus": str(corpus),
        "passages": passages,
        "repeats": repeats,
        "build_passages_per_s": build_rate,
        "raw_encode_passages_per_s": raw_rate,
        "ratio": build_rate / raw_rate,
        "target": ">= 0.8",
    }


def scifact_corpus(source: Path, n: int, folder: Path) -> Path:
    """The first ``n`` SciFact abstracts as article files (title line, then the abstract)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (source / "corpus.jsonl").open(encoding="utf-8") as lines:
        for i, line in enumerate(lines):
            if i >= n:
                break
            doc = json.loads(line)
            (folder / f"{doc['_id']}.txt").write_text(f"{doc['title']}\n\n{doc['text']}\n", encoding="utf-8")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("seeds"))
    parser.add_argument("--rounds", type=int, default=200, help="Interleaved /ask and encode calls.")
    parser.add_argument("--repeats", type=int, default=3, help="Builds (and raw encodes) per corpus.")
    parser.add_argument("--scifact", type=int, default=0, help="Also time a build of this many SciFact abstracts.")
    parser.add_argument("--scifact-dir", type=Path, default=Path("../shared/bench/scifact"))
    parser.add_argument("--out", type=Path, default=Path("bench-results/bench.json"))
    args = parser.parse_args()

    settings = Settings(corpus_dir=args.corpus)
    config = ChunkerConfig.from_settings(settings)
    embedder = SentenceTransformerEmbedder(settings.model, settings.batch_size)
    embedder.load()
    raw = SentenceTransformer(str(bundled_model_path()) if settings.model is None else settings.model, device="cpu")

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(corpus_dir=args.corpus, index_dir=Path(tmp) / "index")
        build_index(settings.corpus_dir, settings.index_dir, embedder, config)
        results["ask"] = bench_ask(settings, embedder, raw, args.rounds)
        results["build"] = bench_build(args.corpus, config, embedder, raw, args.repeats)
        if args.scifact:
            corpus = scifact_corpus(args.scifact_dir, args.scifact, Path(tmp) / "scifact")
            results["build_scifact"] = bench_build(corpus, config, embedder, raw, args.repeats)
    embedder.close()

    ask = results["ask"]
    print(
        f"(a) /ask median {ask['ask_ms']:.2f} ms vs raw encode {ask['raw_encode_ms']:.2f} ms: "
        f"ratio {ask['ratio']:.2f} (target <= 1.5)"
    )
    for key in ("build", "build_scifact"):
        if key in results:
            b = results[key]
            print(
                f"(b) build {b['build_passages_per_s']:.1f} passages/s "
                f"vs raw encode {b['raw_encode_passages_per_s']:.1f}/s "
                f"on {b['passages']} passages of {b['corpus']}: ratio {b['ratio']:.2f} (target >= 0.8)"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

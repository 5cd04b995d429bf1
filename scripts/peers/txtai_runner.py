"""txtai on a BEIR-like corpus, for scripts/bench_peers.py: runs in its own venv, never imported by qa.

    python txtai_runner.py build --mode dense --docs docs.jsonl --model DIR --index OUT
    python txtai_runner.py query --mode hybrid --queries queries.jsonl --model DIR --index OUT --k 10

build   ``Embeddings(path=DIR)`` with txtai's defaults: the FAISS backend, whose index type txtai
        picks by the collection's size (flat here for 1,000 abstracts; issue 16 saw IVF on all 5,183), content
        storage off; for ``--mode hybrid``, ``hybrid=True`` (txtai's own BM25 term index beside the
        vectors, scores fused). Indexes every document and saves the index. Prints one JSON line.
query   loads the saved index (and so the model) in this new process, answers the first
        ``--warm`` questions untimed, then times each ``Embeddings.search(question, k)``
        in-process, one at a time. Prints one JSON line: per-question seconds and ranked ids.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from runner import main, read_jsonl, timed_queries


def build(args: argparse.Namespace) -> dict[str, Any]:
    from txtai import Embeddings

    embeddings = Embeddings(path=str(args.model), hybrid=args.mode == "hybrid")
    embeddings.index([(d["id"], d["text"], None) for d in read_jsonl(args.docs)])
    embeddings.save(str(args.index))
    pooling = getattr(getattr(embeddings, "model", None), "model", None)
    max_length = getattr(pooling, "maxlength", None)
    settings = (embeddings.config.get("build") or {}).get("settings") or {}
    return {
        "documents": embeddings.count(),
        "max_length": max_length,
        "faiss_index": settings.get("components"),  # txtai picks the index type by the collection size
        "config": {k: str(v) for k, v in embeddings.config.items()},
    }


def query(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    from txtai import Embeddings

    embeddings = Embeddings()
    embeddings.load(str(args.index))
    load_s = time.perf_counter() - t0

    def search(text: str) -> list[str]:
        return [str(uid) for uid, _ in embeddings.search(text, args.k)]

    return timed_queries(args, load_s, search)


if __name__ == "__main__":
    main(__doc__, "mode", ["dense", "hybrid"], build, query)

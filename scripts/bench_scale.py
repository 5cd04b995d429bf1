#!/usr/bin/env python
"""How the vector index behaves at 10k to 1M passages: build time, memory, latency, recall.

    HF_HUB_OFFLINE=1 nohup .venv/bin/python scripts/bench_scale.py > bench-results/scale.log 2>&1 &
    .venv/bin/python scripts/bench_scale.py --embed-only      # just make bench-results/scale-base.npy
    .venv/bin/python scripts/bench_scale.py --quick           # 10k and 30k only, to try the script
    .venv/bin/python scripts/bench_scale.py --sizes 50000,1000000 --only flat,hnsw,hnsw-efc160 \
        --ef 128,256,512 --extra-efc 160 --json bench-results/scale-followup.json
    .venv/bin/python scripts/bench_scale.py --filtered 1000000 --json bench-results/scale-filtered.json

Real vectors first: every SciFact abstract (bench/scifact/corpus.jsonl) and every seed
article is chunked by the service's own chunker with the default settings, and each
passage is embedded with the bundled all-MiniLM-L6-v2, once; the array is cached in
bench-results/scale-base.npy. Larger collections are grown from it: each extra vector is
a randomly chosen real vector plus Gaussian noise of standard deviation ``--noise`` per
dimension, re-normalised. The log reports how close a copy stays to its source (mean
cosine) and how often its nearest real vector is still its source, so the noise is known
to make copies that are neighbours of their source without being duplicates of it.

Queries: the 300 SciFact test questions embedded by the same model, and 300 held-out
noisy vectors (grown like the collection, not added to it). Every index is made by
:func:`qa.index.embedded.vectors.build_vector_index`, written and read back by the store's own reader
(which checks it against the manifest entry and sets efSearch), and searched with
:func:`qa.index.embedded.vectors.search_vectors`, the function behind ``Index.dense``: what is measured
is what the service would open and run. Latency is one query per call, as the service
searches, with FAISS on one OpenMP thread (a single query runs on one thread anyway);
``k=10`` and ``k=100`` (hybrid mode asks the dense side for fusion.depth = 100). Recall
is against exact flat search of the same vectors. Memory is the index file's size and
the growth of the process's resident memory when the file is read.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qa.config import Settings
from qa.embedding.base import SentenceTransformerEmbedder, offline_hub
from qa.evaluation.beir import load_benchmark
from qa.index.embedded.vectors import build_vector_index, read_vectors, search_vectors
from qa.index.vector_index import HNSW_THRESHOLD, VectorIndexSpec, choose_vector_index
from qa.ingest.chunking import Chunker, ChunkerConfig
from qa.ingest.documents import load_corpus

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "bench" / "scifact"
SEEDS = ROOT / "seeds"
OUT = ROOT / "bench-results"
BASE = OUT / "scale-base.npy"
QUERIES = OUT / "scale-queries.npy"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- real vectors --------------------------------------------------------------------------


def real_vectors() -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Passage vectors of SciFact and the seeds, and SciFact test query vectors (cached)."""
    if BASE.is_file() and QUERIES.is_file():
        base, queries = np.load(BASE), np.load(QUERIES)
        log(f"cached real vectors: {base.shape} passages, {queries.shape} queries")
        return base, queries, json.loads((OUT / "scale-base.json").read_text())
    started = time.perf_counter()
    bench = load_benchmark(SCIFACT)
    documents = bench.documents + load_corpus(SEEDS)
    embedder = SentenceTransformerEmbedder()
    embedder.load()
    chunker = Chunker(ChunkerConfig.from_settings(Settings()), window=embedder)
    texts: list[str] = []
    for doc in documents:
        texts.extend(chunker.embedding_texts(doc, chunker.chunk(doc)))
    log(f"{len(documents)} documents -> {len(texts)} passages; embedding")
    base = np.vstack([embedder.embed_batch(texts[i : i + 1024]) for i in range(0, len(texts), 1024)])
    queries = embedder.embed_batch(list(bench.queries.values()))
    embedder.close()
    about = {
        "documents": len(documents),
        "passages": len(texts),
        "queries": len(queries),
        "embed_seconds": round(time.perf_counter() - started, 1),
    }
    OUT.mkdir(exist_ok=True)
    np.save(BASE, base.astype(np.float32))
    np.save(QUERIES, queries.astype(np.float32))
    (OUT / "scale-base.json").write_text(json.dumps(about))
    log(f"embedded in {about['embed_seconds']} s")
    return base.astype(np.float32), queries.astype(np.float32), about


def noisy_copies(base: np.ndarray, n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` noisy copies of randomly chosen rows of ``base``, unit length, and their sources."""
    sources = rng.integers(0, len(base), size=n)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):  # in slices: the noise of 1M rows at once would be another 1.5 GB
        stop = min(start + 100_000, n)
        block = base[sources[start:stop]] + rng.normal(0.0, noise, (stop - start, base.shape[1])).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out, sources


def collection(base: np.ndarray, size: int, noise: float, seed: int) -> np.ndarray:
    """The real vectors, then noisy copies up to ``size`` (or a random subset when ``size`` is smaller)."""
    rng = np.random.default_rng(seed)
    if size <= len(base):
        return base[np.sort(rng.choice(len(base), size, replace=False))].copy()
    extra, _ = noisy_copies(base, size - len(base), noise, rng)
    return np.vstack([base, extra])


def noise_report(base: np.ndarray, noise: float) -> dict[str, Any]:
    """How far copies drift: mean cosine to the source, and how often the source is still nearest."""
    rng = np.random.default_rng(7)
    copies, sources = noisy_copies(base, 2000, noise, rng)
    cos_source = np.einsum("ij,ij->i", copies, base[sources])
    sims = copies @ base.T
    nearest = sims.argmax(axis=1)
    sims[np.arange(len(sims)), sources] = -1
    # The nearest real passage to a real passage, for comparison with how close a copy stays.
    sample = base[rng.choice(len(base), 2000, replace=False)]
    real = sample @ base.T
    real[real > 0.9999] = -1
    return {
        "noise_sigma": noise,
        "mean_cosine_copy_source": round(float(cos_source.mean()), 4),
        "source_is_nearest_real": round(float((nearest == sources).mean()), 4),
        "mean_cosine_copy_to_next_real": round(float(sims.max(axis=1).mean()), 4),
        "mean_cosine_real_to_nearest_other_real": round(float(real.max(axis=1).mean()), 4),
    }


# -- measuring one index -------------------------------------------------------------------


def truth(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k ids (1..n, as the store numbers them) by inner product, batched on all threads."""
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    _, ids = flat.search(queries, k)
    del flat
    faiss.omp_set_num_threads(1)
    return ids + 1


def timed_searches(index: Any, spec: VectorIndexSpec, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[float]]:
    ids = np.full((len(queries), k), -1, dtype=np.int64)
    times = []
    for i, q in enumerate(queries):
        t = time.perf_counter()
        hits = search_vectors(index, spec, q, k)
        times.append((time.perf_counter() - t) * 1000)
        ids[i, : len(hits)] = [h[0] for h in hits]
    return ids, times


def recall(found: np.ndarray, exact: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(f[:k]) & set(e[:k])) / k for f, e in zip(found, exact, strict=True)]))


def measure(
    vectors: np.ndarray,
    spec: VectorIndexSpec,
    queries: dict[str, np.ndarray],
    exact: dict[str, np.ndarray],
    ef_values: list[int],
    label: str,
    max_timed: int,
) -> dict[str, Any]:
    """Build, write, read back and search one index; free it before returning."""
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building uses both cores, as `qa build` would
    gc.collect()
    t = time.perf_counter()
    index = build_vector_index(vectors, spec)
    build_s = time.perf_counter() - t
    path = OUT / "scale-tmp.faiss"
    faiss.write_index(index, str(path))
    del index
    gc.collect()
    file_bytes = path.stat().st_size
    before = rss_bytes()
    t = time.perf_counter()
    index = read_vectors(path, spec.describe())
    load_s = time.perf_counter() - t
    rss_delta = rss_bytes() - before
    path.unlink()
    faiss.omp_set_num_threads(1)
    result: dict[str, Any] = {
        "label": label,
        "n": len(vectors),
        "spec": spec.describe(),
        "build_s": round(build_s, 2),
        "loadavg_at_build": os.getloadavg()[0],
        "load_s": round(load_s, 2),
        "file_bytes": file_bytes,
        "rss_delta_bytes": rss_delta,
        "searches": [],
    }
    log(
        f"{label} n={len(vectors):,}: built in {build_s:.1f} s, {file_bytes / 2**20:.0f} MiB file, "
        f"RSS +{rss_delta / 2**20:.0f} MiB on read"
    )
    for ef in ef_values if spec.type == "hnsw" else [0]:
        run_spec = replace(spec, ef_search=ef) if spec.type == "hnsw" else spec
        for kind, qs in queries.items():
            qs = qs[:max_timed]
            for k in (10, 100):
                ids, times = timed_searches(index, run_spec, qs, k)
                row = {
                    "ef_search": ef or None,
                    "queries": kind,
                    "n_queries": len(qs),
                    "k": k,
                    "p50_ms": round(float(np.percentile(times, 50)), 3),
                    "p99_ms": round(float(np.percentile(times, 99)), 3),
                    "mean_ms": round(float(np.mean(times)), 3),
                    "recall_at_10": round(recall(ids, exact[kind][: len(qs)], 10), 4),
                }
                if k == 100:
                    row["recall_at_100"] = round(recall(ids, exact[kind][: len(qs)], 100), 4)
                result["searches"].append(row)
                log(
                    f"  ef={ef or '-'} {kind} k={k}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
                    f"recall@10 {row['recall_at_10']}" + (f", recall@100 {row['recall_at_100']}" if k == 100 else "")
                )
    del index
    gc.collect()
    result["loadavg_after"] = os.getloadavg()[0]
    return result


def measure_filtered(vectors: np.ndarray, queries: np.ndarray, allowed_sizes: list[int]) -> list[dict[str, Any]]:
    """Filtered HNSW search: exact over the allowed set against the graph walk with a selector.

    Both paths are :func:`qa.index.embedded.vectors.search_vectors`, with ``EXACT_FILTER_LIMIT`` set to
    force one or the other (and ``EXACT_FILTER_SHARE`` lifted); this is what chose those limits.
    k = 100, as hybrid asks.
    """
    from qa.index import vectors as store

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    spec = store.choose_vector_index(len(vectors), "hnsw")
    index = build_vector_index(vectors, spec)
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(5)
    rows = []
    saved = store.EXACT_FILTER_LIMIT, store.EXACT_FILTER_SHARE
    store.EXACT_FILTER_SHARE = 1.0
    try:
        for m in allowed_sizes:
            allowed = np.sort(rng.choice(np.arange(1, len(vectors) + 1), m, replace=False)).tolist()
            row: dict[str, Any] = {"n": len(vectors), "allowed": m, "k": 100}
            for path, limit in (("exact", 10**12), ("graph", 0)):
                store.EXACT_FILTER_LIMIT = limit
                times = []
                for q in queries[:100]:
                    t = time.perf_counter()
                    hits = search_vectors(index, spec, q, 100, allowed)
                    times.append((time.perf_counter() - t) * 1000)
                    assert len(hits) == min(100, m), "a filtered search came back short"
                row[f"{path}_p50_ms"] = round(float(np.percentile(times, 50)), 3)
                row[f"{path}_p99_ms"] = round(float(np.percentile(times, 99)), 3)
            rows.append(row)
            log(f"filtered n={len(vectors):,} allowed={m:,}: {row}")
    finally:
        store.EXACT_FILTER_LIMIT, store.EXACT_FILTER_SHARE = saved
    return rows


# -- the run -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embed-only", action="store_true")
    parser.add_argument("--quick", action="store_true", help="10k and 30k only")
    parser.add_argument("--noise", type=float, default=0.03, help="per-dimension standard deviation of copies")
    parser.add_argument("--sizes", default="10000,30000,100000,300000,1000000")
    parser.add_argument("--json", type=Path, default=OUT / "scale.json")
    parser.add_argument("--only", help="comma-separated labels to run (flat, hnsw, hnsw-fp16, hnsw-M16, hnsw-efcN)")
    parser.add_argument("--ef", help="comma-separated efSearch values for every HNSW index")
    parser.add_argument("--extra-efc", type=int, help="also an HNSW index built with this efConstruction")
    parser.add_argument("--filtered", type=int, help="only time filtered HNSW search on this many vectors")
    args = parser.parse_args()
    offline_hub()
    OUT.mkdir(exist_ok=True)
    base, scifact_queries, about = real_vectors()
    if args.embed_only:
        return
    sizes = [10_000, 30_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    noise = noise_report(base, args.noise)
    log(f"noise: {noise}")
    held_out, _ = noisy_copies(base, 300, args.noise, np.random.default_rng(11))
    queries = {"scifact": scifact_queries, "noisy": held_out}
    default_hnsw = choose_vector_index(HNSW_THRESHOLD + 1)  # float32 storage; fp16 is measured beside it
    if args.filtered:
        vectors = collection(base, args.filtered, args.noise, seed=args.filtered)
        sizes_allowed = [1_000, 5_000, 10_000, 20_000, 50_000, 100_000]
        rows = measure_filtered(vectors, scifact_queries, [m for m in sizes_allowed if m <= args.filtered])
        args.json.write_text(json.dumps({"noise": noise, "filtered": rows}, indent=2) + "\n")
        return
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "faiss": faiss.__version__,
            "platform": platform.platform(),
        },
        "base": about,
        "noise": noise,
        "threshold": HNSW_THRESHOLD,
        "default_hnsw": default_hnsw.describe(),
        "runs": [],
    }

    def save() -> None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")

    for size in sizes:
        vectors = collection(base, size, args.noise, seed=size)
        exact = {kind: truth(vectors, qs, 100) for kind, qs in queries.items()}
        log(f"--- {size:,} vectors (exact neighbours computed)")
        # Flat single-query latency grows with n; at 1M, 100 queries of each kind give stable percentiles.
        max_timed = 300 if size < 1_000_000 else 100
        specs: list[tuple[str, VectorIndexSpec, list[int]]] = [("flat", VectorIndexSpec(), [])]
        specs.append(("hnsw", default_hnsw, [32, 64, 128, 256, 512]))
        if size in (100_000, 1_000_000):  # last at 1M: the alternative if float32 storage is too big
            specs.append(("hnsw-fp16", replace(default_hnsw, storage="fp16"), [64, 128, 256, 512]))
        if size == 100_000:
            specs.append(("hnsw-M16", replace(default_hnsw, M=16), [64, 128, 256]))
        if args.extra_efc:
            efc = args.extra_efc
            specs.append((f"hnsw-efc{efc}", replace(default_hnsw, ef_construction=efc), [64, 128, 256]))
        if args.ef:
            specs = [(label, spec, [int(e) for e in args.ef.split(",")] if efs else efs) for label, spec, efs in specs]
        if args.only:
            specs = [s for s in specs if s[0] in args.only.split(",")]
        for label, spec, efs in specs:
            report["runs"].append(
                measure(vectors, spec, queries, exact, efs, label, max_timed if label == "flat" else 300)
            )
            save()
        del vectors, exact
        gc.collect()
    log(f"wrote {args.json}")


if __name__ == "__main__":
    main()

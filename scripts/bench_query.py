#!/usr/bin/env python
"""Answer latency on SciFact (22,233 passages): ``GET /ask`` against a dense search as the peers run it, in one run.

    .venv/bin/qa eval --beir ../shared/bench/scifact --index bench-results/index-scifact   # builds it once
    .venv/bin/python scripts/bench_query.py --index bench-results/index-scifact

Paths, taking turns in warm blocks of BLOCK questions (SciFact's 300 test questions in order,
k=10, hybrid, highlights and grouping on, as the service answers):

peer        what the fastest peers' in-process dense search does (Haystack 2 + FAISS flat, txtai):
            ``SentenceTransformer.encode`` of the question and a search of the build's own FAISS
            flat index for 10 vectors, each on one thread; none of their framework around it, so
            it is a floor for them, not their figure. (torch's default 2 threads took 640 ms a
            question at load 12 here, its OpenMP workers waiting on each other: 1 is kinder to it.)
http        ``GET /ask`` from a real ``qa serve`` over loopback, one keep-alive connection.
ask         ``Searcher.ask`` in this process (the default ONNX question encoder).
http_before with ``--before-src``: ``GET /ask``, as ``http``, from a second ``qa serve`` running an
            older checkout's ``src`` (through ``PYTHONPATH``) over its own build (``--before-index``),
            so that a change is timed against the code before it in one run, each taking its turn.

(An ``ask_fts5`` path, the store with its postings switched off and FTS5's ``bm25()`` scoring
every matching passage, was measured until format version 6 removed that fallback: see
docs/benchmarks.md and scripts/bench_lexical_scale.py, which still times FTS5's ``bm25()``.)

Target (issue 16): ``/ask`` over HTTP at a p50 no slower than the fastest peer's in-process
dense search: ``http / peer <= 1``. Prints each path's p50 and p90, the ratios and whether the
target is met, with the load average; writes the figures as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import faiss
import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from qa.embedding.factory import make_encoder
from qa.embedding.onnx import model_folder
from qa.index.embedded.folder import current_build_id
from qa.index.embedded.layout import VECTORS
from qa.index.embedded.store import EmbeddedStore
from qa.search.retrieval import Searcher

sys.path.insert(0, str(Path(__file__).parent))
import loadtest

#: Questions per path before the next path takes its turn (as scripts/bench.py's latency part:
#: within a block a path is warm; the turns spread machine noise over every path alike).
BLOCK = 20
K = 10


def test_questions(beir: Path) -> list[str]:
    with open(beir / "qrels" / "test.tsv", encoding="utf-8") as handle:
        wanted = {row[0] for row in csv.reader(handle, delimiter="\t")}
    with open(beir / "queries.jsonl", encoding="utf-8") as handle:
        found = [json.loads(line) for line in handle if line.strip()]
    return [q["text"] for q in found if q["_id"] in wanted]


class Client:
    """``GET /ask`` on one keep-alive connection to a ``qa serve`` on 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def renew(self) -> None:
        """uvicorn drops a connection idle for 5 s: a fresh one before each turn."""
        self.connection.close()
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def ask(self, q: str) -> None:
        self.connection.request("GET", "/ask?" + urllib.parse.urlencode({"q": q, "k": K}))
        response = self.connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"GET /ask answered {response.status}")


def run(index_dir: Path, questions: list[str], work: Path, before: tuple[Path, Path] | None = None) -> dict[str, Any]:
    faiss.omp_set_num_threads(1)  # as the service and scripts/baseline_app.py search one query
    torch.set_num_threads(1)  # see "peer" above
    raw = SentenceTransformer(str(model_folder(None)), device="cpu")
    vectors = faiss.read_index(str(index_dir / current_build_id(index_dir) / VECTORS))
    encoder = make_encoder(None, "onnx")
    encoder.load()
    searcher = Searcher(EmbeddedStore.open(index_dir, expected=None), encoder)
    process, url = loadtest.start_server(index_dir, {"QA_RELOAD_INTERVAL": "0"}, work / "serve.log")
    servers = [process]
    clients = {"http": Client(int(url.rsplit(":", 1)[1]))}
    if before is not None:
        env = {"QA_RELOAD_INTERVAL": "0", "PYTHONPATH": str(before[0].resolve())}
        old, old_url = loadtest.start_server(before[1], env, work / "serve-before.log")
        servers.append(old)
        clients["http_before"] = Client(int(old_url.rsplit(":", 1)[1]))

    def peer(q: str) -> None:
        query = raw.encode([q], normalize_embeddings=True)
        vectors.search(np.asarray(query, dtype=np.float32), K)

    paths: dict[str, Callable[[str], object]] = {
        "peer": peer,
        **{name: client.ask for name, client in clients.items()},
        "ask": lambda q: searcher.ask(q, K),
    }
    times: dict[str, list[float]] = {name: [] for name in paths}
    load = [os.getloadavg()]
    try:
        for q in questions[:BLOCK]:  # warm every path
            for call in paths.values():
                call(q)
        for start in range(0, len(questions), BLOCK):
            for name, call in paths.items():
                if name in clients:  # a fresh connection, used once untimed
                    clients[name].renew()
                    call(questions[start])
                for q in questions[start : start + BLOCK]:
                    t0 = time.perf_counter()
                    call(q)
                    times[name].append((time.perf_counter() - t0) * 1000)
        load.append(os.getloadavg())
        rss = loadtest.rss_mib(process.pid)
    finally:
        for client in clients.values():
            client.connection.close()
        for server in servers:
            loadtest.stop_server(server)
        searcher.store.close()
    p50 = {name: statistics.median(v) for name, v in times.items()}
    p90 = {name: statistics.quantiles(v, n=10)[8] for name, v in times.items()}
    return {
        "questions": len(questions),
        "k": K,
        "passages": searcher.store.passage_count,
        "load_average": {"start": load[0], "end": load[-1]},
        "p50_ms": p50,
        "p90_ms": p90,
        "serve_rss_mib": rss,
        "ratio_http_to_peer": p50["http"] / p50["peer"],
        "ratio_http_to_before": p50["http"] / p50["http_before"] if "http_before" in p50 else None,
        "target": "http / peer <= 1",
        "met": p50["http"] <= p50["peer"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=Path("bench-results/index-scifact"))
    parser.add_argument("--beir", type=Path, default=Path("../shared/bench/scifact"))
    parser.add_argument("--questions", type=int, default=300, help="The first N test questions.")
    parser.add_argument("--out", type=Path, default=Path("bench-results/bench-query.json"))
    parser.add_argument("--before-src", type=Path, help="An older checkout's src/ to time as http_before.")
    parser.add_argument("--before-index", type=Path, help="The build the older code serves (its own format).")
    args = parser.parse_args()
    if (args.before_src is None) != (args.before_index is None):
        parser.error("--before-src and --before-index go together")
    before = (args.before_src, args.before_index) if args.before_src is not None else None
    work = Path(tempfile.mkdtemp(prefix="bench-query-"))  # kept: the server's log is there
    r = run(args.index, test_questions(args.beir)[: args.questions], work, before)
    load = r["load_average"]
    print(f"{r['questions']} SciFact test questions, k={r['k']}, {r['passages']:,} passages, load {load}")
    for name in r["p50_ms"]:
        print(f"  {name:9s} p50 {r['p50_ms'][name]:6.2f} ms  p90 {r['p90_ms'][name]:6.2f} ms")
    verdict = "met" if r["met"] else "not met"
    print(f"GET /ask / peer dense search: {r['ratio_http_to_peer']:.2f} (target {r['target']}): {verdict}")
    if r["ratio_http_to_before"] is not None:
        print(f"GET /ask / the same before the change: {r['ratio_http_to_before']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(r, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

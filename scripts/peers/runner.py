"""What both peer runners share (read by them from this folder; runs in the peers' venvs, never imported by qa).

The questions file, the timed query loop (``--warm`` questions untimed, then each question
timed one at a time) and the command line: ``build`` or ``query``, with each runner's own
choice of store or mode.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def timed_queries(args: argparse.Namespace, load_s: float, search: Callable[[str], list[str]]) -> dict[str, Any]:
    """Every question of ``args.queries`` answered by ``search`` (ranked ids), timed one at a time."""
    questions = read_jsonl(args.queries)
    for q in questions[: args.warm]:
        search(q["text"])
    ranked: dict[str, list[str]] = {}
    seconds: list[float] = []
    for q in questions:
        t = time.perf_counter()
        ranked[q["id"]] = search(q["text"])
        seconds.append(time.perf_counter() - t)
    return {"load_s": load_s, "seconds": seconds, "ranked": ranked}


def main(
    doc: str | None,
    option: str,
    choices: list[str],
    build: Callable[[argparse.Namespace], dict[str, Any]],
    query: Callable[[argparse.Namespace], dict[str, Any]],
) -> None:
    """Parse the command line (``--<option>`` one of ``choices``) and print the command's JSON line."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "query"])
    parser.add_argument(f"--{option}", choices=choices, required=True)
    parser.add_argument("--docs", type=Path)
    parser.add_argument("--queries", type=Path)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--warm", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(build(args) if args.command == "build" else query(args)), flush=True)

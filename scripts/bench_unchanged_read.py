#!/usr/bin/env python
"""Time what an unchanged corpus folder costs to check and to read: the staleness check's fingerprint,
and a rebuild's reading (fingerprint, then ``read_corpus`` with the embedded cache).

    PYTHONPATH=src .venv/bin/python scripts/bench_unchanged_read.py FOLDER
    PYTHONPATH=/tmp/qa-old/src .venv/bin/python scripts/bench_unchanged_read.py FOLDER   # code before

FOLDER is written once, e.g. SciFact as ``scripts/bench_incremental.py --scifact`` writes it.
Runs on the code before stat-first reading too (no ``qa.ingest.changes``: every file read and
cleaned), so before and after can be alternated in separate processes, each with its own
source on ``PYTHONPATH`` (``git archive 88f0954 src | tar -x -C /tmp/qa-old``). Prints one JSON
line: best and median of three runs in seconds, and a hash of the documents read (equal on
both sides when they read the same documents).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa.index.embedded.cache import EmbeddingCache
from qa.ingest.documents import Corpus, read_corpus

RUNS = 3


def timed(fn: Callable[[], Any]) -> tuple[list[float], Any]:
    """Best and median of RUNS runs, in seconds, and the last result."""
    times, out = [], None
    for _ in range(RUNS):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return [round(min(times), 3), round(sorted(times)[RUNS // 2], 3)], out


def digest(corpus: Corpus) -> str:
    rows = [
        (d.doc_id, d.text, d.title, d.sha256, [(b.start, b.end, b.kind, b.reason) for b in d.blocks])
        for d in corpus.documents
    ]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def main(folder: Path, work: Path) -> dict[str, Any]:
    cache = EmbeddingCache(work, "bench", 1, "first")
    try:
        from qa.ingest.changes import corpus_fingerprint, scan_corpus
    except ImportError:  # the code before: every check and every rebuild reads every file
        from qa.ingest.documents import corpus_fingerprint  # type: ignore[attr-defined,no-redef]

        check, _ = timed(lambda: corpus_fingerprint(folder))
        read, corpus = timed(lambda: (corpus_fingerprint(folder), read_corpus(folder, cache))[1])
        return {"code": "before", "check_s": check, "rebuild_read_s": read, "documents": digest(corpus)}
    from qa.index.manifest import corpus_record

    started = time.perf_counter()
    scan = scan_corpus(folder)
    record = json.loads(json.dumps(corpus_record(folder, scan)))  # as a manifest gives it back
    read_corpus(folder, cache, scan)  # the first build: reads every file and fills the cache
    first = round(time.perf_counter() - started, 3)
    check, _ = timed(lambda: corpus_fingerprint(folder, record))
    read, corpus = timed(lambda: read_corpus(folder, cache, scan_corpus(folder, record)))
    manifest_bytes = len(json.dumps({"corpus": record}, indent=2, sort_keys=True))
    return {
        "code": "after",
        "first_read_s": first,
        "check_s": check,
        "rebuild_read_s": read,
        "record_bytes": manifest_bytes,
        "documents": digest(corpus),
    }


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as work:
        print(json.dumps(main(Path(sys.argv[1]), Path(work))))

#!/usr/bin/env python
"""Passage BM25 as the corpus grows: FTS5's ``bm25()`` over every match against the postings' scorer.

    .venv/bin/python scripts/bench_lexical_scale.py --index bench-results/index-scifact --copies 1,5

The text is grown by repetition: every passage of the SciFact build (with its document's
title) is written ``copies`` times into a scratch FTS5 table like a build's ``passages_fts``,
and the postings are derived from it as a build does (``qa.index.postings.write_postings``)
and scored as both stores score them (``qa.index.bm25``). FTS5's ``bm25()`` is no longer used
by the stores: it is timed here as the alternative the postings replaced.
Repetition multiplies every term's document frequency and the row count alike, so IDF and
the average length barely move and scores stay those of SciFact, but each passage now ties
with its copies: what grows is the number of matching rows FTS5 must score and sort, and the
length of each posting list. For each SciFact test question (its terms as the searcher makes
them) the best 100 passages (fusion's candidate depth) are taken both ways, alternating in
blocks, plus the scores of 100 given passages (what hybrid asks for the dense side's candidates).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from qa.index.bm25 import Postings
from qa.index.embedded.folder import current_build_id
from qa.index.embedded.layout import DATABASE
from qa.index.embedded.queries import BuildDatabase
from qa.index.postings import FTS_TABLES, PASSAGES, StoredPostings, write_postings
from qa.search.terms import query_terms

sys.path.insert(0, str(Path(__file__).parent))
from bench_query import test_questions

DEPTH = 100
WEIGHTS = (1.0, 1.0)
BLOCK = 20


def grown(source: Path, copies: int, path: Path) -> int:
    """A scratch database with passages_fts holding every passage of ``source`` ``copies`` times."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    sql = "SELECT d.title, p.text FROM passages p JOIN documents d ON d.doc_id = p.doc_id ORDER BY p.rowid"
    texts = src.execute(sql).fetchall()
    src.close()
    db = sqlite3.connect(path)
    db.executescript(FTS_TABLES)  # documents_fts stays empty: only passages are timed
    db.executemany(
        "INSERT INTO passages_fts (rowid, title, text) VALUES (?, ?, ?)",
        ((i, t, x) for i, (t, x) in enumerate(itertools.chain.from_iterable(itertools.repeat(texts, copies)), 1)),
    )
    n = len(texts) * copies
    t0 = time.perf_counter()
    write_postings(db, n, 0)
    db.commit()
    db.close()
    print(f"  {n:,} passages: postings written in {time.perf_counter() - t0:.1f} s", flush=True)
    return n


def fts5_top(db: BuildDatabase, terms: list[str]) -> list[tuple[int, float]]:
    """FTS5's own best DEPTH passages for ``terms`` (each quoted, OR-ed), ties by rowid."""
    match = " OR ".join('"' + t.replace('"', '""') + '"' for t in dict.fromkeys(terms))
    sql = (
        "SELECT rowid, -bm25(passages_fts, ?, ?) AS score FROM passages_fts WHERE passages_fts MATCH ? "
        "ORDER BY score DESC, rowid LIMIT ?"
    )
    return [(int(r), float(s)) for r, s in db.query(sql, [*WEIGHTS, match, DEPTH])]


def measure(path: Path, n: int, questions: list[str]) -> dict[str, Any]:
    db = BuildDatabase(sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False))
    postings = Postings.open(StoredPostings(db, PASSAGES))
    terms = [t for t in (query_terms(q) for q in questions) if t]
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {"fts5_top": [], "postings_top": [], "postings_scores": []}
    same = 0
    for start in range(0, len(terms), BLOCK):
        block = terms[start : start + BLOCK]
        for ts in block:
            t0 = time.perf_counter()
            fts5_top(db, ts)
            times["fts5_top"].append(time.perf_counter() - t0)
        for ts in block:
            t0 = time.perf_counter()
            held = postings.terms(ts)
            postings.top(held, DEPTH, WEIGHTS)
            times["postings_top"].append(time.perf_counter() - t0)
            wanted = rng.integers(1, n + 1, DEPTH).tolist()
            t0 = time.perf_counter()
            postings.scores(held, wanted, WEIGHTS)
            times["postings_scores"].append(time.perf_counter() - t0)
        for ts in block:  # same top 100 both ways (compared outside the timings)
            same += fts5_top(db, ts) == postings.top(postings.terms(ts), DEPTH, WEIGHTS)
    db.close()
    ms = {k: [x * 1000 for x in v] for k, v in times.items()}
    return {
        "passages": n,
        "questions": len(terms),
        "identical_top_100": same,
        "p50_ms": {k: statistics.median(v) for k, v in ms.items()},
        "p99_ms": {k: statistics.quantiles(v, n=100)[98] for k, v in ms.items()},
        "bytes": path.stat().st_size,
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=Path("bench-results/index-scifact"))
    parser.add_argument("--beir", type=Path, default=Path("../shared/bench/scifact"))
    parser.add_argument("--copies", default="1,5", help="Comma-separated repetition factors.")
    parser.add_argument("--out", type=Path, default=Path("bench-results/bench-lexical-scale.json"))
    args = parser.parse_args()
    source = args.index / current_build_id(args.index) / DATABASE
    questions = test_questions(args.beir)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for copies in (int(c) for c in args.copies.split(",")):
            path = Path(tmp) / f"grown-{copies}.sqlite"
            n = grown(source, copies, path)
            r = measure(path, n, questions)
            results.append(r)
            p50, p99 = r["p50_ms"], r["p99_ms"]
            print(
                f"{n:>9,} passages: top {DEPTH} FTS5 p50 {p50['fts5_top']:.2f} / p99 {p99['fts5_top']:.2f} ms, "
                f"postings p50 {p50['postings_top']:.2f} / p99 {p99['postings_top']:.2f} ms "
                f"({p50['fts5_top'] / p50['postings_top']:.1f}x); scores of {DEPTH} given passages p50 "
                f"{p50['postings_scores']:.2f} ms; identical top {DEPTH} {r['identical_top_100']}/{r['questions']}; "
                f"load {r['load_average'][0]:.1f}",
                flush=True,
            )
            path.unlink()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Where ``Searcher.ask`` spends its time on a SciFact build: each stage's inclusive ms per question.

    .venv/bin/python scripts/profile_ask.py bench-results/index-scifact [hybrid|dense|lexical]

Wraps the store's and the searcher's steps with timers (nested steps count in their callers
too), asks SciFact's 300 test questions (k=10, grouping on, the default ONNX question
encoder) after 20 to warm up, and prints each step's p50 and mean, largest first;
``serialise`` is the Answer validated and dumped to JSON as FastAPI's response model does.
"""

import functools
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
from pydantic import TypeAdapter

import qa.search.evidence as E
import qa.search.retrieval as R
from qa.embedding.factory import make_encoder
from qa.index.bm25 import Postings
from qa.index.embedded.queries import BuildDatabase
from qa.index.embedded.store import EmbeddedStore
from qa.search.models import Answer

sys.path.insert(0, str(Path(__file__).parent))
from bench_query import test_questions

index_dir = Path(sys.argv[1])
mode = sys.argv[2] if len(sys.argv) > 2 else "hybrid"
k = 10
acc = defaultdict(float)


def timed(name, fn):
    @functools.wraps(fn)
    def w(*a, **kw):
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            acc[name] += time.perf_counter() - t

    return w


for cls, names in (
    (EmbeddedStore, ["dense", "lexical", "scores", "document_scores", "passages", "sentences", "document"]),
    (BuildDatabase, ["identify", "positions", "passages", "sentences"]),
    (Postings, ["terms", "top", "scores"]),
    (R.Searcher, ["_complete", "_add_sentence_evidence", "_result", "rank"]),
):
    for n in names:
        setattr(cls, n, timed(f"{cls.__name__}.{n}", getattr(cls, n)))
R.sentence_evidence = timed("sentence_evidence", R.sentence_evidence)
R.term_shares = timed("term_shares(rerank)", R.term_shares)
E.group = timed("group", E.group)
R.highlights = timed("highlights", R.highlights)
R.cite = timed("cite", R.cite)
emb = make_encoder(None, os.environ.get("QA_QUERY_ENCODER", "onnx"))
emb.load()
emb.embed_batch = timed("encode", emb.embed_batch)
index = EmbeddedStore.open(index_dir, expected=None)
s = R.Searcher(index, emb)
beir = Path(os.environ.get("QA_BEIR", "../shared/bench/scifact"))
qs = test_questions(beir)
adapter = TypeAdapter(Answer)
for q in qs[:20]:
    s.ask(q, k, mode=mode)
per = defaultdict(list)
total = []
for q in qs:
    acc.clear()
    t = time.perf_counter()
    a = s.ask(q, k, mode=mode)
    t1 = time.perf_counter()
    adapter.dump_json(adapter.validate_python(a))
    t2 = time.perf_counter()
    for n, v in acc.items():
        per[n].append(v * 1000)
    per["serialise"].append((t2 - t1) * 1000)
    total.append((t1 - t) * 1000)
print(f"{len(qs)} questions, mode {mode}, k {k}, load {os.getloadavg()}")
print(
    f"ask total p50 {statistics.median(total):.2f} p90 {statistics.quantiles(total, n=10)[8]:.2f} "
    f"mean {statistics.mean(total):.2f}"
)
for n, v in sorted(per.items(), key=lambda x: -statistics.mean(x[1])):
    v = v + [0.0] * (len(qs) - len(v))
    print(f"  {n:32s} p50 {statistics.median(v):7.2f}  mean {statistics.mean(v):7.2f}")

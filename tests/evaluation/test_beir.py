"""BEIR scoring: our pytrec_eval wrapper against hand-computed values, and a benchmark run end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from qa.evaluation.beir import load_benchmark
from qa.evaluation.questions import run_beir, score_run
from qa.index.embedded.folder import list_builds
from qa.ingest.chunking import ChunkerConfig
from tests.helpers import FakeEmbedder


def test_score_run_matches_hand_computed_ndcg_recall_and_mrr() -> None:
    qrels = {"q1": {"a": 1, "b": 2}, "q2": {"c": 1}, "q3": {"z": 1}}
    run = {
        "q1": {"x": 0.9, "b": 0.8, "y": 0.7, "a": 0.6},  # b at rank 2, a at rank 4
        "q2": {f"d{i}": 1.0 - i / 100 for i in range(10)} | {"c": 0.001},  # c at rank 11
        # q3 has no run at all: it counts as 0, as trec_eval -c does.
    }
    figures = score_run(qrels, run)
    # trec_eval's nDCG (as BEIR reports it) uses the relevance level itself as the gain.
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    assert figures["nDCG@10"] == pytest.approx((dcg / ideal + 0 + 0) / 3, abs=1e-6)
    assert figures["Recall@100"] == pytest.approx((1 + 1 + 0) / 3)
    # MRR@10: q2's only relevant document is at rank 11, outside the cut.
    assert figures["MRR@10"] == pytest.approx((1 / 2 + 0 + 0) / 3)


def test_a_benchmark_folder_is_indexed_through_the_service_chain_and_scored(tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    docs = {
        "d1": ("Aspirin and the heart", "Low-dose aspirin reduces the risk of myocardial infarction in adults."),
        "d2": ("Statins", "Statins lower LDL cholesterol and cardiovascular events."),
        "d3": ("Sleep", "Short sleep duration is associated with obesity in children."),
    }
    with open(folder / "corpus.jsonl", "w") as handle:
        for doc_id, (title, text) in docs.items():
            handle.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    queries = {"q1": "aspirin myocardial infarction", "q2": "children obesity sleep", "q9": "unjudged"}
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")

    assert set(load_benchmark(folder).queries) == {"q1", "q2"}
    embedder = FakeEmbedder()
    figures = run_beir(folder, "test", tmp_path / "index", embedder, ChunkerConfig())
    assert figures["queries"] == 2
    assert figures["passages"] == 3
    for mode in ("dense", "lexical", "hybrid"):
        assert figures["modes"][mode]["nDCG@10"] == pytest.approx(1.0), mode
        assert figures["modes"][mode]["MRR@10"] == pytest.approx(1.0), mode
    # A second run reuses the build instead of embedding again.
    again = run_beir(folder, "test", tmp_path / "index", embedder, ChunkerConfig())
    assert again["build_id"] == figures["build_id"]
    assert list_builds(tmp_path / "index") == [figures["build_id"]]

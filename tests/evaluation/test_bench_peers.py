"""scripts/bench_peers.py's pure parts: data subsetting, scoring of served lists, verdicts. No peer is installed."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from qa.evaluation.questions import score_run
from tests.helpers import ROOT


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_peers", ROOT / "scripts" / "bench_peers.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_peers"] = module
    spec.loader.exec_module(module)
    return module


bench_peers = _load()


def _system(build_s: float, p50_ms: float, dense_only: bool = True) -> dict[str, Any]:
    return {"build_s": build_s, "p50_ms": p50_ms, "dense_only": dense_only}


def test_served_run_counts_a_document_once_at_its_best_rank_and_keeps_the_order() -> None:
    run = bench_peers.served_run({"q": ["a", "b", "a", "c"]}, k=10)
    assert list(run["q"]) == ["a", "b", "c"]
    assert run["q"]["a"] > run["q"]["b"] > run["q"]["c"]


def test_served_run_stops_at_k_distinct_documents() -> None:
    run = bench_peers.served_run({"q": [str(i) for i in range(15)]}, k=10)
    assert list(run["q"]) == [str(i) for i in range(10)]


def test_a_served_list_scores_by_its_order_not_by_the_systems_scores() -> None:
    qrels = {"q": {"b": 1}}
    first = score_run(qrels, bench_peers.served_run({"q": ["b", "a"]}))["nDCG@10"]
    second = score_run(qrels, bench_peers.served_run({"q": ["a", "b"]}))["nDCG@10"]
    assert first == pytest.approx(1.0)
    assert second == pytest.approx(1 / 1.5849625, rel=1e-6)  # log2(3): the gain discounted at rank 2


def test_subset_qrels_keeps_questions_with_a_relevant_document_in_the_subset() -> None:
    qrels = {"1": {"a": 1, "z": 1}, "2": {"z": 1}, "3": {"a": 0}}
    assert bench_peers.subset_qrels(qrels, {"a", "b"}) == {"1": {"a": 1}}


def test_load_scifact_takes_the_first_abstracts_and_their_questions(tmp_path: Path) -> None:
    corpus = [{"_id": str(i), "title": f"T{i}", "text": f"Abstract {i}."} for i in range(4)]
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    queries = [{"_id": "q1", "text": "one?"}, {"_id": "q2", "text": "three?"}, {"_id": "q3", "text": "none?"}]
    (tmp_path / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\t1\t1\nq2\t3\t1\n")
    documents, questions, qrels = bench_peers.load_scifact(tmp_path, 2)
    assert [d["id"] for d in documents] == ["0", "1"]
    assert documents[1]["text"] == "T1\n\nAbstract 1.\n"
    assert questions == {"q1": "one?"}
    assert qrels == {"q1": {"1": 1}}


def test_percentiles_interpolate_between_ranks() -> None:
    assert bench_peers.percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)
    assert bench_peers.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    summary = bench_peers.latency_summary([0.010, 0.020, 0.030])
    assert summary["p50_ms"] == pytest.approx(20.0)
    assert summary["mean_ms"] == pytest.approx(20.0)


def test_targets_compare_qa_with_the_fastest_peer_build_and_the_fastest_dense_peer_query() -> None:
    systems = {
        "qa": _system(900.0, 45.0),
        "haystack_faiss": _system(268.0, 18.6),
        "txtai_dense": _system(537.0, 17.0),
        "txtai_hybrid": _system(509.0, 10.0, dense_only=False),  # not dense: not the query yardstick
    }
    build, query = bench_peers.targets(systems)
    assert (build["peer"], build["met"]) == ("haystack_faiss", False)
    assert build["ratio"] == pytest.approx(900 / 268)
    assert (query["peer"], query["met"]) == ("txtai_dense", False)
    assert query["ratio"] == pytest.approx(45 / 17)
    systems["qa"] = _system(268.0, 17.0)  # equal counts as met
    assert all(t["met"] for t in bench_peers.targets(systems))


def test_what_each_system_embedded_is_read_from_its_own_output() -> None:
    line = "build 20261205T0: 5183 documents, 23296 passages (23296 embedded, 0 from the cache) in 905.0 s -> x"
    assert bench_peers.qa_embedded(line) == "5,183 documents -> 23,296 passages + their sentences"
    assert bench_peers.peer_embedded({"documents": 5183, "max_length": 256}) == (
        "5,183 documents, truncated at 256 word pieces"
    )
    assert bench_peers.peer_embedded({"documents": 3}) == "3 documents"
    assert bench_peers.peer_embedded({"documents": 3, "faiss_index": "IVF"}) == "3 documents (FAISS IVF)"


def test_the_table_has_a_row_per_system() -> None:
    row = {"label": "x", "build_s": 1.0, "p50_ms": 2.0, "p95_ms": 3.0, "ndcg10": 0.5}
    text = bench_peers.table({"qa": {**row, "build_rss_mib": 10.0, "serve_rss_mib": 20.0}})
    assert text.splitlines()[-1] == "| x |  | 1 | 2.0 / 3.0 | 0.500 | 10 / 20 |"

"""Hybrid retrieval, filters, evidence highlights, corroboration and abstention.

The plumbing runs on the fake embedder; what depends on meaning (highlights, grouping,
abstention, seed recall) runs on the real bundled model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.embedding.base import SentenceTransformerEmbedder
from qa.errors import InvalidQueryError
from qa.evaluation.beir import load_benchmark
from qa.evaluation.questions import evaluate_questions, load_questions, run_beir, score_run
from qa.index.pipeline import build_index, expected_identity
from qa.index.store import Index, list_builds
from qa.ingest.chunking import ChunkerConfig
from qa.search.retrieval import Filters, Searcher, match_expression
from qa.server.app import create_app
from tests.helpers import QUESTIONS, FakeEmbedder

# -- metrics: our wrapper against hand-computed trec_eval values ------------------------------


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


# -- lexical queries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What is the Quad?", '"what" OR "quad"'),
        ("the a of", None),
        ("x' OR 1=1; DROP TABLE passages;--", '"x" OR "1" OR "drop" OR "table" OR "passages"'),
        ('title:NATO* NEAR("Asian" "NATO")', '"title" OR "nato" OR "near" OR "asian"'),
    ],
)
def test_questions_become_plain_quoted_terms_for_fts5(question: str, expected: str | None) -> None:
    assert match_expression(question) == expected


@pytest.fixture
def fake_searcher(built: Settings, fake_embedder: FakeEmbedder) -> Iterator[Searcher]:
    index = Index.open(built.index_dir, expected_identity(fake_embedder, ChunkerConfig.from_settings(built)))
    yield Searcher(index, fake_embedder)
    index.close()


def test_each_mode_reports_its_own_scores(fake_searcher: Searcher) -> None:
    dense = fake_searcher.ask("Shigeru Ishiba proposed an Asian NATO", 5, mode="dense", group=False)
    lexical = fake_searcher.ask("Shigeru Ishiba proposed an Asian NATO", 5, mode="lexical", group=False)
    hybrid = fake_searcher.ask("Shigeru Ishiba proposed an Asian NATO", 5, mode="hybrid", group=False)
    assert all(r.lexical_score is None for r in dense.results)
    assert all(r.dense_score is None and r.lexical_score is not None for r in lexical.results)
    assert all(r.dense_score is not None and r.lexical_score is not None for r in hybrid.results)
    assert [r.score for r in lexical.results] == sorted((r.score for r in lexical.results), reverse=True)
    assert "Ishiba" in lexical.results[0].text
    assert {dense.mode, lexical.mode, hybrid.mode} == {"dense", "lexical", "hybrid"}


def test_a_question_of_stop_words_only_still_answers_in_hybrid_mode(fake_searcher: Searcher) -> None:
    assert fake_searcher.ask("the of a", 3, mode="lexical").results == []
    assert len(fake_searcher.ask("the of a", 3, mode="hybrid").results) == 3


def test_unknown_mode_is_refused(fake_searcher: Searcher) -> None:
    with pytest.raises(InvalidQueryError, match="mode"):
        fake_searcher.ask("NATO", 3, mode="semantic")


# -- filters, applied before ranking -------------------------------------------------------


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_a_document_filter_still_returns_k_passages_all_from_that_document(fake_searcher: Searcher, mode: str) -> None:
    target = "004_7c5f304601117e1b"
    assert fake_searcher.index.document(target) is not None
    unfiltered = fake_searcher.ask("Asian NATO alliance India Japan", 5, mode=mode, group=False)
    assert any(r.citation.doc_id != target for r in unfiltered.results)
    answer = fake_searcher.ask(
        "Asian NATO alliance India Japan", 5, mode=mode, filters=Filters(doc_ids=(target,)), group=False
    )
    assert len(answer.results) == 5
    assert {r.citation.doc_id for r in answer.results} == {target}


def _with_sidecars(corpus_dir: Path) -> None:
    meta = {
        "000_f4e7857b5d4e8740": {"outlet": "Outlet A", "published": "2024-10-02", "author": "Ann Writer"},
        "001_3737cd750cfae74d": {"outlet": "Outlet B", "published": "2024-10-05"},
        "002_9c06afbfd3aef34d": {"outlet": "Outlet A", "published": "2024-11-20"},
    }
    for stem, fields in meta.items():
        (corpus_dir / f"{stem}.meta.json").write_text(json.dumps(fields))


def test_author_outlet_and_date_filters_choose_documents_from_metadata(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    _with_sidecars(settings.corpus_dir)
    config = ChunkerConfig.from_settings(settings)
    build_index(settings.corpus_dir, settings.index_dir, fake_embedder, config)
    index = Index.open(settings.index_dir, expected_identity(fake_embedder, config))
    searcher = Searcher(index, fake_embedder)
    question = "India Japan alliance"

    def docs(filters: Filters) -> set[str]:
        return {r.citation.doc_id for r in searcher.ask(question, 10, filters=filters, group=False).results}

    assert docs(Filters(outlet="outlet a")) == {"000_f4e7857b5d4e8740", "002_9c06afbfd3aef34d"}
    assert docs(Filters(author="ann")) == {"000_f4e7857b5d4e8740"}
    assert docs(Filters(published_from="2024-10-03", published_to="2024-10-31")) == {"001_3737cd750cfae74d"}
    assert docs(Filters(outlet="Outlet A", published_from="2024-11-01")) == {"002_9c06afbfd3aef34d"}
    assert docs(Filters(outlet="Nobody")) == set()
    with pytest.raises(InvalidQueryError, match="YYYY-MM-DD"):
        searcher.ask(question, 3, filters=Filters(published_from="October 2024"))
    index.close()


def test_the_api_takes_mode_group_and_filters_in_the_query_and_the_body(
    built: Settings, fake_embedder: FakeEmbedder
) -> None:
    target = "003_4fdb1282455ab5f8"
    with TestClient(create_app(built, embedder=fake_embedder)) as client:
        got = client.get("/ask", params={"q": "Ishiba NATO", "k": 3, "mode": "lexical", "doc_id": target})
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["mode"] == "lexical"
        assert {r["citation"]["doc_id"] for r in body["results"]} == {target}
        posted = client.post("/ask", json={"question": "Ishiba NATO", "k": 3, "doc_id": [target], "group": False})
        assert posted.status_code == 200, posted.text
        assert {r["citation"]["doc_id"] for r in posted.json()["results"]} == {target}
        for bad in ({"mode": "semantic"}, {"published_from": "yesterday"}, {"group": "maybe"}):
            response = client.get("/ask", params={"q": "NATO", **bad})
            assert response.status_code == 422, bad
            assert response.json()["error"]["status"] == 422


# -- the real model: highlights, corroboration, abstention, seed recall ---------------------

pytest_model = pytest.mark.model


@pytest.fixture(scope="module")
def searcher(real_index_dir: Path, real_embedder: SentenceTransformerEmbedder) -> Iterator[Searcher]:
    config = ChunkerConfig.from_settings(Settings())
    index = Index.open(real_index_dir, expected_identity(real_embedder, config))
    yield Searcher(index, real_embedder)
    index.close()


@pytest_model
def test_highlights_are_the_answering_sentence_with_exact_offsets(searcher: Searcher) -> None:
    answer = searcher.ask("What did Jaishankar say about strategic architecture?", 5)
    for result in answer.results:
        assert result.highlights, result.passage_id
        source = searcher.index.document_text(result.citation.doc_id)
        assert source is not None
        for h in result.highlights:
            assert result.text[h.start : h.end] == source[0][h.source_start : h.source_end]
            assert result.citation.start <= h.source_start < h.source_end <= result.citation.end
    top = answer.results[0]
    best = max(top.highlights, key=lambda h: h.score)
    assert "strategic architecture" in top.text[best.start : best.end]


@pytest_model
def test_the_same_statement_in_several_articles_is_one_result_with_its_corroborations(searcher: Searcher) -> None:
    question = "What did Jaishankar say about strategic architecture?"
    grouped = searcher.ask(question, 5)
    flat = searcher.ask(question, 5, group=False)
    assert len(grouped.results) == len(flat.results) == 5
    folded = [r for r in grouped.results if r.also_reported_in]
    assert folded, "the remark reported by several articles was not grouped"
    for result in folded:
        docs = [result.citation.doc_id] + [o.citation.doc_id for o in result.also_reported_in]
        assert len(docs) == len(set(docs)), "a corroboration must come from another article"
        for other in result.also_reported_in:
            assert other.citation.formatted
            assert other.similarity >= 0.76
    # A corroboration is never also a result of its own, and without grouping it is one.
    grouped_ids = {r.passage_id for r in grouped.results}
    folded_ids = {o.passage_id for r in folded for o in r.also_reported_in}
    assert not grouped_ids & folded_ids
    wide = {r.passage_id for r in searcher.ask(question, 20, group=False).results}
    assert folded_ids <= wide
    assert all(not r.also_reported_in for r in flat.results)


@pytest_model
def test_unanswerable_seed_questions_are_not_grounded_and_answerable_ones_are(searcher: Searcher) -> None:
    questions = load_questions(QUESTIONS)
    report = evaluate_questions(searcher, questions)
    unanswerable = [q.id for q in questions if not q.answerable]
    assert unanswerable
    assert report.abstention_recall == 1.0
    assert report.abstention_precision == 1.0
    assert report.answered_rate == 1.0
    # Results are still returned when not grounded, so a reader can judge.
    answer = searcher.ask(next(q.question for q in questions if not q.answerable), 3)
    assert not answer.grounded
    assert len(answer.results) == 3


@pytest_model
@pytest.mark.parametrize(("mode", "floor"), [("hybrid", 19), ("dense", 17), ("lexical", 16)])
def test_seed_questions_recall_at_3_by_mode(searcher: Searcher, mode: str, floor: int) -> None:
    """Floors against regressions (the target is 19 of 20 with hybrid); measured: hybrid 20, dense 18, lexical 17."""
    report = evaluate_questions(searcher, load_questions(QUESTIONS), mode=mode)
    found = sum(1 for rank in report.ranks.values() if rank is not None and rank <= 3)
    assert found >= floor, f"{mode}: {found}/20 in the top 3; misses {report.misses(3)}"

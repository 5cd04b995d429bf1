"""Evidence with the real bundled model: highlights, corroboration (grouping) and abstention (grounding)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.config import Settings
from qa.embedding.base import SentenceTransformerEmbedder
from qa.evaluation.questions import evaluate_questions, load_questions
from qa.index.embedded.store import EmbeddedStore
from qa.index.manifest import BuildIdentity
from qa.ingest.chunking import ChunkerConfig
from qa.search.evidence import GROUP_COSINE, LOOKAHEAD_MIN_EXTRA, lookahead
from qa.search.retrieval import Searcher
from tests.helpers import QUESTIONS

pytest_model = pytest.mark.model


@pytest.fixture(scope="module")
def searcher(real_index_dir: Path, real_embedder: SentenceTransformerEmbedder) -> Iterator[Searcher]:
    config = ChunkerConfig.from_settings(Settings())
    index = EmbeddedStore.open(real_index_dir, BuildIdentity.of(real_embedder, config))
    yield Searcher(index, real_embedder)
    index.close()


@pytest_model
def test_highlights_are_the_answering_sentence_with_exact_offsets(searcher: Searcher) -> None:
    answer = searcher.ask("What did Jaishankar say about strategic architecture?", 5)
    for result in answer.results:
        assert result.highlights, result.passage_id
        source = searcher.store.document_text(result.citation.doc_id)
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
            assert other.similarity >= GROUP_COSINE
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


def test_grouping_looks_twice_as_deep_and_at_least_a_few_more() -> None:
    assert lookahead(1) == 1 + LOOKAHEAD_MIN_EXTRA
    assert lookahead(5) == 10
    assert lookahead(20) == 40

"""Retrieval quality with the real bundled model on the seed questions."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.config import Settings
from qa.embedding.base import SentenceTransformerEmbedder
from qa.evaluation.questions import evaluate_questions, load_questions
from qa.index.pipeline import expected_identity
from qa.index.store import Index
from qa.ingest.chunking import ChunkerConfig
from qa.search.retrieval import Searcher
from tests.helpers import QUESTIONS

pytestmark = pytest.mark.model

#: A floor against regressions; measured: 20 of 20 with the default (hybrid) settings
#: (docs/benchmarks.md), and 19 with int8 questions.
MIN_TOP3 = 19


@pytest.fixture(scope="module")
def searcher(real_index_dir: Path, real_embedder: SentenceTransformerEmbedder) -> Searcher:
    defaults = Settings()
    config = ChunkerConfig.from_settings(defaults)
    return Searcher(Index.open(real_index_dir, expected_identity(real_embedder, config)), real_embedder)


def test_answerable_seed_questions_find_their_evidence_in_the_top_3(searcher: Searcher) -> None:
    questions = load_questions(QUESTIONS)
    answerable = [q for q in questions if q.answerable]
    assert len(answerable) == 20
    report = evaluate_questions(searcher, questions, ks=(1, 3, 5))
    found = sum(1 for rank in report.ranks.values() if rank is not None and rank <= 3)
    misses = {q.id: q.question for q in answerable if q.id in report.misses(3)}
    assert found >= MIN_TOP3, f"only {found}/20 in the top 3; misses: {misses}"


def test_passages_are_verbatim_and_fit_the_model_window(searcher: Searcher) -> None:
    index = searcher.index
    passages = index.passages(list(range(1, index.passage_count + 1)))
    assert len(passages) == index.passage_count
    counts = searcher.embedder.count_tokens([p.text for p in passages])
    assert max(counts) <= searcher.embedder.max_seq_length
    for p in passages:
        original = index.document_text(p.doc_id)
        assert original is not None
        assert original[0][p.start : p.end] == p.text


def test_the_readme_question_is_answered_from_the_articles_that_discuss_it(searcher: Searcher) -> None:
    answer = searcher.ask("Why did India reject an Asian NATO?", 5)
    assert len(answer.results) == 5
    for result in answer.results[:3]:
        assert "NATO" in result.text or "alliance" in result.text, result.text

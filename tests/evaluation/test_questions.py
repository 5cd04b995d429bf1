"""Question files with answer spans (SQuAD's shape) and with evidence strings, on tiny hand-made corpora."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.errors import QAError
from qa.evaluation.questions import Question, Span, evaluate_questions, load_questions, run_questions
from qa.index.location import build_index
from qa.index.manifest import BuildIdentity
from qa.ingest.chunking import ChunkerConfig
from qa.search.retrieval import Searcher
from qa.service import open_searcher
from tests.helpers import FakeEmbedder

#: Two articles in the benchmark's layout: title, blank line, paragraphs one blank line apart.
ALPHA = (
    "Alpha Article\n\n"
    "The striped zebra grazes on the open savanna of Kenya. Zebras eat grass all day.\n\n"
    "The capital of Kenya is Nairobi, a city of four million people."
)
BETA = "Beta Article\n\nPenguins live near Antarctica, far from Nairobi. They eat fish and krill."
#: Each paragraph is a passage of its own: 21, 14 and 17 cl100k tokens, and no two fit together.
CONFIG = ChunkerConfig(max_tokens=28)


def span(text: str, needle: str) -> dict[str, object]:
    start = text.index(needle)
    return {"text": needle, "start": start, "end": start + len(needle)}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "alpha.txt").write_text(ALPHA, encoding="utf-8")
    (folder / "beta.txt").write_text(BETA, encoding="utf-8")
    return folder


@pytest.fixture
def searcher(corpus: Path, tmp_path: Path) -> Searcher:
    embedder = FakeEmbedder()
    build_index(corpus, tmp_path / "index", embedder, CONFIG)
    return open_searcher(tmp_path / "index", embedder, BuildIdentity.of(embedder, CONFIG))


def write_questions(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_answer_spans_are_read_and_every_nth_question_sampled(tmp_path: Path) -> None:
    rows: list[dict[str, object]] = [
        {"id": str(i), "question": f"q{i}", "doc": "alpha", "answers": [span(ALPHA, "Nairobi")]} for i in range(5)
    ]
    path = write_questions(tmp_path / "q.jsonl", rows)
    questions = load_questions(path)
    start = ALPHA.index("Nairobi")
    assert questions[0].doc == "alpha"
    assert questions[0].answers == (Span(start, start + len("Nairobi")),)
    assert [q.id for q in load_questions(path, sample=2)] == ["0", "2", "4"]
    with pytest.raises(QAError):
        load_questions(path, sample=0)


@pytest.mark.parametrize(
    "row",
    [
        {"id": "a", "question": "q", "answers": [{"text": "x", "start": 0, "end": 1}]},  # no doc
        {"id": "a", "question": "q", "doc": "alpha", "answers": [{"text": "", "start": 3, "end": 3}]},
        {"id": "a", "question": "q", "doc": "alpha", "answers": [{"text": "x"}]},
    ],
)
def test_a_malformed_answer_line_is_refused_with_its_line_number(tmp_path: Path, row: dict[str, object]) -> None:
    path = write_questions(tmp_path / "q.jsonl", [row])
    with pytest.raises(QAError, match=r"q\.jsonl:1"):
        load_questions(path)


def test_a_span_answers_only_in_its_document_and_only_when_covered() -> None:
    start = ALPHA.index("Nairobi")
    question = Question("a", "What is the capital of Kenya?", doc="alpha", answers=(Span(start, start + 7),))
    assert question.found_in("alpha", start - 10, start + 7, "")
    assert not question.found_in("alpha", start + 1, start + 20, "Nairobi")  # cuts the answer
    assert not question.found_in("beta", 0, len(BETA), BETA)  # the same words, in another article
    evidence = Question("b", "q", evidence=("capital of Kenya",))
    assert evidence.found_in("any", 0, 0, "The Capital of  Kenya is")


def test_span_questions_are_scored_by_place_with_the_answer_sentence_and_documents(
    searcher: Searcher, tmp_path: Path
) -> None:
    nairobi = span(ALPHA, "Nairobi")
    elsewhere = span(BETA, "Nairobi")
    path = write_questions(
        tmp_path / "q.jsonl",
        [
            {"id": "here", "question": "What is the capital of Kenya?", "doc": "alpha", "answers": [nairobi]},
            # The same words occur in beta, but the question is about that place in beta.
            {"id": "there", "question": "What is the capital of Kenya?", "doc": "beta", "answers": [elsewhere]},
        ],
    )
    report = evaluate_questions(searcher, load_questions(path), mode="lexical")
    assert report.ranks == {"here": 1, "there": None}  # beta has neither "capital" nor "Kenya"
    assert report.recall[1] == 0.5
    assert report.mrr == 0.5
    assert report.answer_sentence == {"here": True, "there": False}
    # Both of alpha's passages mention Kenya; beta's matches no term.
    assert report.distinct_docs == {"here": 1, "there": 1}
    assert report.mean_passage_chars == pytest.approx(sum(len(p) for p in ALPHA.split("\n\n")[1:]) / 2)


def test_the_answer_sentence_is_the_first_highlight_not_any_sentence_of_the_passage(
    searcher: Searcher, tmp_path: Path
) -> None:
    grass = span(ALPHA, "grass")
    path = write_questions(
        tmp_path / "q.jsonl",
        [{"id": "g", "question": "Where does the striped zebra graze?", "doc": "alpha", "answers": [grass]}],
    )
    report = evaluate_questions(searcher, load_questions(path), mode="lexical")
    top = searcher.ask("Where does the striped zebra graze?", 1, mode="lexical").results[0]
    assert report.ranks == {"g": 1}  # the passage holds the answer ...
    first = top.highlights[0]
    covers = first.source_start <= grass["start"] and grass["end"] <= first.source_end  # type: ignore[operator]
    assert report.answer_sentence == {"g": covers}


def test_run_questions_reports_the_new_measures_for_evidence_and_span_files(corpus: Path, tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    build_index(corpus, tmp_path / "index", embedder, CONFIG)
    rows: list[dict[str, object]] = [
        {"id": "s", "question": "What is the capital of Kenya?", "doc": "alpha", "answers": [span(ALPHA, "Nairobi")]},
        {"id": "skipped", "question": "What do penguins eat?", "evidence": ["krill"]},
        {"id": "e", "question": "What do penguins eat?", "evidence": ["krill"]},
    ]
    path = write_questions(tmp_path / "q.jsonl", rows)
    figures = run_questions(path, tmp_path / "index", embedder, CONFIG, ["lexical"], sample=2)
    assert figures["questions"] == 2
    lexical = figures["modes"]["lexical"]
    assert lexical["recall@1"] == 1.0
    assert lexical["recall@10"] == 1.0
    assert lexical["answer_sentence@1"] == 1.0  # only the span question is scored for it
    assert lexical["distinct_docs@3"] == 1.5  # Kenya: alpha only; "eat" also matches the zebras of alpha
    assert lexical["passage_chars"] > 0

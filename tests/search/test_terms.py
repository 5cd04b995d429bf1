"""Question terms: what lexical search is asked for, how the store quotes them for FTS5, and sentence term shares."""

from __future__ import annotations

import pytest

from qa.index.embedded.queries import match_expression
from qa.search.terms import query_terms, stems, term_shares
from qa.text import content_words


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
    assert match_expression(query_terms(question)) == expected


def test_content_words_drop_stop_words_and_short_words() -> None:
    assert content_words("The Quad is an Asian NATO, of 4 democracies") == {"quad", "asian", "nato", "democracies"}


def test_stems_cut_words_to_five_letters_without_stop_words() -> None:
    assert stems("Who was elected in the elections of 1990?") == {"who", "elect", "1990"}


def test_a_sentence_share_is_the_idf_weighted_part_of_the_question_it_holds() -> None:
    first = "The mayor was elected in May. It rained."
    second = "The mayor spoke."
    shares = term_shares("When was the mayor elected?", [(first, [(0, 29), (30, 40)]), (second, [(0, 16)])])
    # "when" occurs nowhere; "mayor" is in both passages, so it weighs less than "elected".
    assert [len(s) for s in shares] == [2, 1]
    assert shares[0][1] == 0.0
    assert 0.0 < shares[1][0] < shares[0][0] < 1.0
    assert term_shares("the of", [(first, [(0, 29)])])[0].tolist() == [0.0]

"""Question terms: what lexical search is asked for, and sentence term shares."""

from __future__ import annotations

import pytest

from qa.search.terms import query_terms, stems, term_shares
from qa.text import content_words


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What is the Quad?", ["what", "quad"]),
        ("the a of", []),
        ("x' OR 1=1; DROP TABLE passages;--", ["x", "1", "drop", "table", "passages"]),
        ('title:NATO* NEAR("Asian" "NATO")', ["title", "nato", "near", "asian"]),
    ],
)
def test_questions_become_plain_distinct_words(question: str, expected: list[str]) -> None:
    """No query syntax survives: only words reach the store, which never builds an FTS5 query from them."""
    assert query_terms(question) == expected


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

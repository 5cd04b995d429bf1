"""Question terms: what lexical search is asked for, and how the store quotes them for FTS5."""

from __future__ import annotations

import pytest

from qa.index.queries import match_expression
from qa.search.terms import query_terms
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

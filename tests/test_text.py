"""qa.text: folding, the three word patterns (and where they differ), stop words, name particles."""

from __future__ import annotations

import pytest

from qa.citations.formats import parse_authors
from qa.ingest.cleaning import byline_author
from qa.text import (
    BYLINE_NAME_WORDS,
    FAMILY_NAME_PARTICLES,
    NAME_PARTICLES,
    SPACES,
    STOPWORDS,
    WORD_RE,
    content_words,
    count_words,
    normalize,
    quote_words,
    terms,
)


def test_spaces_are_whitespace_or_the_two_invisible_characters_isspace_misses() -> None:
    assert {c for c in SPACES if not c.isspace()} == {"\u200b", "\ufeff"}
    assert len(set(SPACES)) == len(SPACES)
    assert "\u00a0 x \u3000\ufeff".strip(SPACES) == "x"


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("India\u2019s \u201cAsian NATO\u201d", 'india\'s "asian nato"'),
        ("everyone\u2014especially", "everyone-especially"),
        ("  MIXED\tCase\n\nlines ", "mixed case lines"),
        ("\ufb01nance \u2460", "finance 1"),  # NFKC: the fi ligature and a circled digit
        ("Stra\u00dfe", "strasse"),  # casefold, not lower
    ],
)
def test_normalize(raw: str, folded: str) -> None:
    assert normalize(raw) == folded


SAMPLE = "The U.S.-led, well-known plan: don't, don\u2019t, snake_case 2024 Žižek 東京"


def test_the_three_word_patterns_differ_where_their_jobs_do() -> None:
    # A reader's words: inner apostrophes, dots and hyphens join.
    assert WORD_RE.findall(SAMPLE) == [
        "The",
        "U.S",
        "led",
        "well-known",
        "plan",
        "don't",
        "don\u2019t",
        "snake",
        "case",
        "2024",
        "Žižek",
        "東京",
    ]
    assert count_words(SAMPLE) == 12
    # A quotation's words: only apostrophes join, so dashes and dots separate words.
    assert quote_words(SAMPLE) == [
        "The",
        "U",
        "S",
        "led",
        "well",
        "known",
        "plan",
        "don't",
        "don\u2019t",
        "snake",
        "case",
        "2024",
        "Žižek",
        "東京",
    ]
    # Search terms: every non-alphanumeric character separates; case-folded.
    assert terms(SAMPLE) == [
        "the",
        "u",
        "s",
        "led",
        "well",
        "known",
        "plan",
        "don",
        "t",
        "don",
        "t",
        "snake",
        "case",
        "2024",
        "žižek",
        "東京",
    ]


def test_word_counts_follow_words_not_spaces() -> None:
    assert count_words("") == 0
    assert count_words(" -- ... *** ") == 0
    assert count_words("U.S. officials") == 2
    assert count_words("a well-known, oft-cited claim") == 4
    assert count_words("snake_case") == 2  # the underscore is not a letter


def test_folded_dashes_give_a_quotation_the_same_words_with_or_without_spaces() -> None:
    assert quote_words(normalize("everyone\u2014especially")) == quote_words(normalize("everyone \u2013 especially"))


def test_content_words_drop_stop_words_and_short_words() -> None:
    assert content_words("The Navy AND the Army of India, in 2024: an EU deal") == frozenset(
        {"navy", "army", "india", "2024", "deal"}
    )
    assert content_words("") == frozenset()


def test_stop_words_are_lucenes_english_list() -> None:
    assert len(STOPWORDS) == 33
    assert {"the", "a", "of", "with", "will"} <= STOPWORDS
    assert all(w == w.casefold() and terms(w) == [w] for w in STOPWORDS)


def test_name_particles_shared_and_where_the_two_uses_differ() -> None:
    assert NAME_PARTICLES <= BYLINE_NAME_WORDS
    assert NAME_PARTICLES <= FAMILY_NAME_PARTICLES
    assert {"and", "&", "al", "y"} == BYLINE_NAME_WORDS - FAMILY_NAME_PARTICLES
    assert {"ter"} == FAMILY_NAME_PARTICLES - BYLINE_NAME_WORDS


def test_bylines_and_citations_read_names_with_them() -> None:
    assert byline_author("By Ana de Souza and Li Wei") == "Ana de Souza and Li Wei"
    assert byline_author("By Ana de la Cruz and Li Wei") is None  # seven words: more than a byline's names
    assert byline_author("By Abu al Hassan") == "Abu al Hassan"
    assert byline_author("By Monday, officials had left the town.") is None
    assert parse_authors("Ludwig van Beethoven") == [
        {"family": "Beethoven", "given": "Ludwig", "non-dropping-particle": "van"}
    ]
    assert parse_authors("Gerard ter Horst") == [{"family": "Horst", "given": "Gerard", "non-dropping-particle": "ter"}]

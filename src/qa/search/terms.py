"""The terms of a question that lexical search looks up (the word pattern and stop words live in :mod:`qa.text`)."""

from __future__ import annotations

from qa.text import STOPWORDS, terms


def query_terms(question: str) -> list[str]:
    """The distinct searchable terms of a question: case-folded words that are not stop words."""
    return list(dict.fromkeys(t for t in terms(question) if t not in STOPWORDS))

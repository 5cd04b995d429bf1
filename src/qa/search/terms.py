"""Words of a question and of a passage: what lexical search and grouping compare.

(Helper SMALL moves these to ``qa/text.py``; they sit in one place here until then.)
"""

from __future__ import annotations

import re

#: Lucene's English stop words (the list Pyserini's BM25 baselines use), dropped from
#: lexical queries: they cost time on every posting list and add nothing to BM25.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)
_TERM_RE = re.compile(r"[^\W_]+")
#: Content words are at least this long: shorter ones are mostly particles and numbers.
_MIN_CONTENT_WORD = 3


def query_terms(question: str) -> list[str]:
    """The distinct searchable terms of a question: case-folded words that are not stop words."""
    return list(dict.fromkeys(t for t in _TERM_RE.findall(question.casefold()) if t not in STOPWORDS))


def content_words(text: str) -> frozenset[str]:
    """Lower-cased words of three letters or more that are not stop words."""
    return frozenset(w for w in _TERM_RE.findall(text.casefold()) if len(w) >= _MIN_CONTENT_WORD and w not in STOPWORDS)

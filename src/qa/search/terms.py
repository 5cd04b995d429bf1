"""The terms of a question: the ones lexical search looks up, and each sentence's share of them.

The word pattern and stop words live in :mod:`qa.text`. FTS5 scores passages and documents;
a question is usually a paraphrase of one sentence, so hybrid also asks, for the few best
passages, which of their sentences holds the question's rarer words (docs/benchmarks.md,
"SQuAD"). For that share, words are compared cut to :data:`STEM` characters, a stemmer
without a dependency, and weighted by their IDF among the passages being compared, so a
word every candidate shares counts little. Lexical search itself matches whole terms.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from qa.embedding.base import Vectors
from qa.text import STOPWORDS, terms

#: Characters a word is cut to before matching sentence terms ("elected", "election" -> "elect");
#: 5 was the best of 4, 5 and 6 on the SQuAD dev half (docs/benchmarks.md, "SQuAD").
STEM = 5
#: Sentences whose stems are remembered (:func:`stems`): a question's second stage reads about
#: a hundred; 8,192 holds the last several dozen questions' in a few MiB.
STEMS_CACHED = 8192


def query_terms(question: str) -> list[str]:
    """The distinct searchable terms of a question: case-folded words that are not stop words."""
    return list(dict.fromkeys(t for t in terms(question) if t not in STOPWORDS))


@functools.lru_cache(maxsize=STEMS_CACHED)
def stems(text: str, stopwords: frozenset[str] = STOPWORDS) -> frozenset[str]:
    """A text's terms (:func:`qa.text.terms`) without stop words, cut to STEM characters.

    Remembered for the last STEMS_CACHED texts: hybrid's second stage and the answer's
    highlights take the shares of the same sentences (0.5 ms a question on SciFact each).
    """
    return frozenset(t[:STEM] for t in terms(text) if t not in stopwords)


def term_shares(
    question: str,
    passages: Sequence[tuple[str, Sequence[tuple[int, int]]]],
    stopwords: frozenset[str] = STOPWORDS,
) -> list[Vectors]:
    """For each passage ``(text, sentence spans)``, each sentence's share of the question's terms.

    A share is the IDF-weighted fraction of the question's stems the sentence holds, in
    ``[0, 1]``; the IDF, ``log(1 + n / (1 + df))``, counts the passages given that hold a stem.
    """
    query = stems(question, stopwords)
    bags = [[stems(text[s:e], stopwords) for s, e in spans] for text, spans in passages]
    if not query:
        return [np.zeros(len(b), dtype=np.float32) for b in bags]
    held = [frozenset().union(*b) for b in bags]
    idf = {t: math.log(1 + len(bags) / (1 + sum(t in h for h in held))) for t in query}
    total = sum(idf.values())
    return [np.array([sum(idf[t] for t in query & bag) / total for bag in b], dtype=np.float32) for b in bags]

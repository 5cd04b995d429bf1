"""BM25 outside SQLite: FTS5's formula and its ``porter unicode61`` tokenizer, rewritten in Python.

The PostgreSQL store computes BM25 itself from term statistics its build writes
(:mod:`qa.index.postgres`, in SQL), and the embedded store from the postings its build
derives from FTS5's own index (:mod:`qa.index.postings`, with :func:`bm25` here), so
both score as FTS5's ``bm25()`` does (constants :data:`K1` and :data:`B`, :func:`idf`).
The PostgreSQL store must also cut text into the same terms FTS5 does for the embedded
store: runs of letters and digits (every other character separates), case-folded,
diacritics removed, then Martin Porter's original stemmer (the algorithm FTS5's ``porter``
follows, though not everywhere: FTS5 stems "pathology" to "patholog", this "pathologi"; 5 of
the 3,294 distinct words of SciFact's queries differ so); tokens shorter than 3 or longer than
64 characters pass through unstemmed, as in FTS5. Differences that remain are listed in
docs/postgresql.md.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

import numpy as np
import Stemmer

#: How FTS5 cuts passages and documents into terms (the ``tokenize`` option of the build's FTS5 tables).
TOKENIZE = "porter unicode61"
#: BM25's constants, as FTS5's bm25() fixes them (fts5_aux.c).
K1, B = 1.2, 0.75
#: FTS5 never lets a term's IDF fall to zero or below: a term in more than half the rows gets this.
_IDF_FLOOR = 1e-6

_TOKEN_RE = re.compile(r"[^\W_]+")
#: FTS5's porter tokenizer stems tokens of 3 to 64 bytes only (fts5_tokenize.c, FTS5_PORTER_MAX_TOKEN).
_STEM_MIN, _STEM_MAX = 3, 64


@functools.cache
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("porter")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.casefold())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def tokens(text: str) -> list[str]:
    """The terms of ``text`` in order, as FTS5 ``porter unicode61`` indexes them."""
    words = _TOKEN_RE.findall(_fold(text))
    if not words:
        return []
    stemmed: list[str] = _stemmer().stemWords(words)
    return [s if _STEM_MIN <= len(w) <= _STEM_MAX else w for w, s in zip(words, stemmed, strict=True)]


def term_counts(text: str) -> tuple[Counter[str], int]:
    """How often each term occurs in ``text``, and how many terms it has (its BM25 length)."""
    found = tokens(text)
    return Counter(found), len(found)


def query_lexemes(terms: Sequence[str]) -> list[str]:
    """The distinct indexed terms of some query terms (a term of several tokens counts each)."""
    return list(dict.fromkeys(t for term in terms for t in tokens(term)))


def idf(rows: int, hits: int | np.ndarray) -> float | np.ndarray:
    """FTS5's IDF of a term held by ``hits`` of ``rows`` rows: ``ln((N - n + 0.5) / (n + 0.5))``, at least 1e-6."""
    value = np.log((rows - np.asarray(hits, dtype=np.float64) + 0.5) / (np.asarray(hits, dtype=np.float64) + 0.5))
    value = np.where(value <= 0.0, _IDF_FLOOR, value)
    return float(value) if value.ndim == 0 else value


def bm25(term_idf: float, frequency: np.ndarray, length: np.ndarray, average_length: float) -> np.ndarray:
    """One term's share of FTS5's bm25() in each row: its (column-weighted) ``frequency`` there and the
    row's ``length`` in tokens (all columns). A row's score is the sum of its terms' shares, in query order.

    The operations are FTS5's, in its order (fts5_aux.c ``fts5Bm25Function``), so a sum over the
    same terms gives the same double FTS5 gives.
    """
    return term_idf * ((frequency * (K1 + 1.0)) / (frequency + K1 * (1 - B + B * length / average_length)))

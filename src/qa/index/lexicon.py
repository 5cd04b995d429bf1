"""Terms for BM25 outside SQLite: FTS5's ``porter unicode61`` tokenizer, rewritten in Python.

The PostgreSQL store computes BM25 itself from term statistics its build writes
(:mod:`qa.index.postgres`), so it must cut text into the same terms FTS5 does for the
embedded store: runs of letters and digits (every other character separates), case-folded,
diacritics removed, then Martin Porter's original stemmer (the algorithm FTS5's ``porter``
implements; tokens shorter than 3 or longer than 64 characters pass through unstemmed, as
in FTS5). Differences that remain are listed in docs/postgresql.md.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

import Stemmer

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

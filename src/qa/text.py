"""Text helpers every stage shares: folding for comparison, the word patterns, stop words, name particles.

Three word patterns, one per job. They look alike and are not interchangeable; the tests in
``tests/test_text.py`` pin where they differ:

:data:`WORD_RE`
    A word as a reader counts it when judging the shape of a line (cleaning, titles): inner
    apostrophes, dots and hyphens join, so "U.S.", "well-known" and "don't" are one word each.
:data:`QUOTE_WORD_RE`
    A word of a quotation (quote checking): apostrophes join but dots and hyphens separate, so
    "everyone—especially" and "everyone – especially", folded by :func:`normalize` to
    "everyone-especially" and "everyone - especially", have the same words, as
    :func:`qa.citations.verify.key` makes them the same string.
:data:`TERM_RE`
    A lexical search term: a run of letters and digits; every apostrophe, dot and hyphen
    separates, as SQLite FTS5's ``unicode61`` tokenizer does.
"""

from __future__ import annotations

import re
import unicodedata

#: Characters trimmed from both ends of a block or a sentence: the whitespace that occurs in
#: articles, plus the zero-width space and the byte-order mark, which ``str.isspace`` does not count.
SPACES = (
    " \t\r\n\f\v\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u202f\u205f\u3000\ufeff"
)

WORD_RE = re.compile(r"[^\W_]+(?:['\u2019.\-][^\W_]+)*")
QUOTE_WORD_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
TERM_RE = re.compile(r"[^\W_]+")

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
#: A content word has at least this many letters. Set with the corroboration grouping rule
#: (7bea30d), whose GROUP_OVERLAP was calibrated on top of it by scripts/calibrate.py; the length
#: itself was not measured.
MIN_CONTENT_WORD_LETTERS = 3

#: Lower-case words that belong to a person's family name ("Ludwig van Beethoven", "Ana de la Cruz").
NAME_PARTICLES = frozenset(["van", "von", "der", "den", "de", "del", "della", "di", "da", "du", "la", "le", "bin"])
#: The lower-case words a byline's names may hold: the particles and the words that join two names
#: ("Ana de la Cruz and Li Wei", "Abu al Hassan", "García y López").
BYLINE_NAME_WORDS = NAME_PARTICLES | {"and", "&", "al", "y"}
#: The particles a CSL name takes as its non-dropping particle: :data:`NAME_PARTICLES` and Dutch
#: "ter" ("Gerard ter Horst" -> "ter" + "Horst").
FAMILY_NAME_PARTICLES = NAME_PARTICLES | {"ter"}
# The two lists were written apart (cleaning in d603162, formats in ce67884) and differ by "ter",
# "al" and "y"; each keeps its own words here because moving one would change how existing
# bylines are read or cited.

_QUOTE_TRANS = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2032": "'",
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u30fc": "-",
    }
)


def normalize(text: str) -> str:
    """Fold quotes, dashes, case and whitespace, for comparing strings written differently."""
    folded = unicodedata.normalize("NFKC", text).translate(_QUOTE_TRANS).casefold()
    return " ".join(folded.split())


def count_words(text: str) -> int:
    """Words of ``text`` as :data:`WORD_RE` counts them ("U.S." and "well-known" are one each)."""
    return len(WORD_RE.findall(text))


def quote_words(text: str) -> list[str]:
    """Words of a quotation as :data:`QUOTE_WORD_RE` finds them, as written."""
    return QUOTE_WORD_RE.findall(text)


def terms(text: str) -> list[str]:
    """Lexical search terms of ``text``: :data:`TERM_RE` runs, case-folded, in order, repeats kept."""
    return TERM_RE.findall(text.casefold())


def content_words(text: str) -> frozenset[str]:
    """Case-folded terms of at least :data:`MIN_CONTENT_WORD_LETTERS` letters that are not stop words."""
    return frozenset(w for w in terms(text) if len(w) >= MIN_CONTENT_WORD_LETTERS and w not in STOPWORDS)

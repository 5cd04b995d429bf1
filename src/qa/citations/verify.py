"""Quote checking: is each quote of a draft a verbatim span of some article, and where?

A draft is one quote or a whole Markdown text. Its quotes are the “curly” and "straight"
quoted stretches of at least :data:`MIN_WORDS` words, and the ``>`` block quotes (see
:func:`extract_quotes`); a text with neither is taken as one quote.

Matching is exact after :func:`qa.text.normalize` folding (quotes, dashes, case,
whitespace; spaces beside a dash are ignored too, see :func:`key`). Each document's
source text is folded once per build into one string with a map from every folded
character back to its source offset, so a quote is found with ``str.find`` and reported
with exact ``[start, end)`` source offsets; a match is kept only if
``key(source[start:end]) == key(quote)``.

A quote that is not found gets the closest stretch of one article: the passage
sentences (or runs of as many consecutive sentences as the quote has) that share the
most words with it, ranked by difflib's word-sequence ratio (a lexical similarity in
[0, 1], no model involved), and the words that differ (a difflib word diff).
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from qa.citations.cite import Citation, cite_span
from qa.index.protocol import PassageStore
from qa.index.records import DocumentRecord, PassageRecord
from qa.ingest.sentences import split_sentences
from qa.text import normalize, quote_words

#: Quoted stretches shorter than this many words (:func:`qa.text.quote_words`) are names, titles or
#: scare quotes, not quotations.
MIN_WORDS = 5
#: Candidates (by shared words) whose difflib ratio is computed for a quote that is not found.
CANDIDATES = 30
#: Decimals a closest stretch's similarity is reported with.
SIMILARITY_DECIMALS = 4

_INLINE_RE = re.compile(r"“([^“”\n]+?)”|\"([^\"\n]+?)\"")
#: Up to three spaces before a block quote, fence or footnote definition: CommonMark's indentation limit.
_BLOCK_RE = re.compile(r"^ {0,3}>[ >]?")
_FENCE_RE = re.compile(r"^ {0,3}(```|~~~)")
_FOOTNOTE_RE = re.compile(r"\[\^[^\]\s]+\]")
_FOOTNOTE_DEF_RE = re.compile(r"^ {0,3}\[\^[^\]\s]+\]:")
_ESCAPE_RE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>|])")
_TRAILING_PUNCT = ".,;:!?"
_DASH_SPACE_RE = re.compile(r" ?- ?")

QuoteKind = Literal["inline", "block", "text"]


class QuoteMatch(BaseModel):
    """Where a quote occurs verbatim: ``source_text[citation.start:citation.end]`` is ``text``."""

    passage_id: str | None = Field(description="The passage that contains the span, when one does.")
    text: str = Field(description="The exact source span (equal to the quote after normalising).")
    citation: Citation


class WordDiff(BaseModel):
    """One difference between the quote and the closest source text, in words."""

    op: Literal["replace", "delete", "insert"] = Field(
        description="replace: the quote has other words; delete: only in the quote; insert: only in the source."
    )
    quote: str
    source: str


class Closest(BaseModel):
    """The stretch of an article nearest to a quote that was not found verbatim."""

    passage_id: str
    passage_text: str
    sentence: str = Field(description="The closest sentence (or run of sentences) of that passage.")
    similarity: float = Field(
        description="difflib ratio between the quote's folded words and the stretch of the sentence they align "
        "with, 0 to 1 (1.0 with no differences: the words are the same, the punctuation is not)."
    )
    method: str = "difflib word-sequence ratio (lexical, no model)"
    citation: Citation = Field(description="The sentence's source offsets.")
    differences: list[WordDiff]


class QuoteCheck(BaseModel):
    """One quote of a draft: where it occurs verbatim, or the closest stretch of an article."""

    quote: str = Field(description="The quote as extracted from the draft.")
    kind: QuoteKind
    line: int = Field(description="Line of the draft where the quote starts, from 1.")
    found: bool = Field(description="Whether it occurs verbatim (after normalising quotes, dashes, case, spaces).")
    matches: list[QuoteMatch] = Field(default_factory=list)
    closest: Closest | None = None


class VerifyReport(BaseModel):
    """Every quote of a draft checked against one build, and how many were found verbatim."""

    quotes: list[QuoteCheck]
    supported: int = Field(description="Quotes found verbatim.")
    unsupported: int = Field(description="Quotes not found.")
    build_id: str


@dataclass(frozen=True)
class Quote:
    """A quote as extracted from a draft, before it is checked."""

    text: str
    kind: QuoteKind
    line: int


def extract_quotes(draft: str, min_words: int = MIN_WORDS) -> list[Quote]:
    """The quotes of a Markdown draft: ``>`` block quotes (one per paragraph) and quoted stretches
    of at least ``min_words`` words elsewhere; fenced code and footnote definitions (citations)
    are skipped. Footnote references (``[^1]``) and Markdown backslash escapes are removed from
    block quotes."""
    quotes: list[Quote] = []
    block: list[str] = []
    block_line = 0
    fenced = False

    def close_block() -> None:
        text = " ".join(" ".join(block).split())
        text = _ESCAPE_RE.sub(r"\1", _FOOTNOTE_RE.sub("", text)).strip()
        if text and quote_words(text):
            quotes.append(Quote(text, "block", block_line))
        block.clear()

    prose: list[tuple[int, str]] = []
    for number, line in enumerate(draft.splitlines(), start=1):
        if _FENCE_RE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        marker = _BLOCK_RE.match(line)
        if marker:
            rest = _BLOCK_RE.sub("", line)
            while _BLOCK_RE.match(rest):  # nested ">>"
                rest = _BLOCK_RE.sub("", rest)
            if not rest.strip():
                close_block()
                continue
            if not block:
                block_line = number
            block.append(rest)
            continue
        if block:
            close_block()
        prose.append((number, line))
    if block:
        close_block()

    for number, line in prose:
        if _FOOTNOTE_DEF_RE.match(line):  # a citation, whose quoted title is not a quotation
            continue
        for m in _INLINE_RE.finditer(line):
            text = (m.group(1) or m.group(2)).strip()
            if len(quote_words(text)) >= min_words:
                quotes.append(Quote(text, "inline", number))
    quotes.sort(key=lambda q: q.line)
    if not quotes and draft.strip():
        text = " ".join(draft.split())
        return [Quote(text, "text", 1)]
    return quotes


@dataclass(frozen=True)
class Folded:
    """A text folded like :func:`normalize`, with the source offset of every folded character."""

    text: str
    starts: list[int]
    ends: list[int]


def fold(text: str) -> Folded:
    """``text`` folded character by character as :func:`key` folds it, with ``starts[i]``/``ends[i]``
    the source span of folded character ``i``."""
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pending_space = False
    cache: dict[str, str] = {}
    for i, ch in enumerate(text):
        folded = cache.get(ch)
        if folded is None:
            folded = cache[ch] = normalize(ch) if not ch.isspace() else ""
        if not folded:
            if ch.isspace() or not ch.isprintable():
                pending_space = pending_space or bool(chars)
            continue
        if pending_space and chars[-1] != "-" and folded[0] != "-":
            chars.append(" ")
            starts.append(i)
            ends.append(i)
        pending_space = False
        for piece in folded:
            chars.append(piece)
            starts.append(i)
            ends.append(i + 1)
    return Folded("".join(chars), starts, ends)


def key(text: str) -> str:
    """:func:`qa.text.normalize`, and no space beside a dash ("everyone—especially" and
    "everyone – especially" are the same words): what a quote must equal to be verbatim."""
    return _DASH_SPACE_RE.sub("-", normalize(text))


@dataclass
class _Document:
    record: DocumentRecord
    source: str
    folded: Folded
    passages: list[PassageRecord]


@dataclass(frozen=True)
class _Stretch:
    """One sentence, or a run of consecutive sentences, of one passage."""

    passage: PassageRecord
    start: int  # in the source
    end: int
    words: tuple[str, ...]


class Verifier:
    """Checks quotes against one open build. Built once per build (folding every document)."""

    def __init__(self, store: PassageStore) -> None:
        self.store = store
        self._documents: list[_Document] = []
        for record in store.documents():
            texts = store.document_text(record.doc_id)
            if texts is None:  # pragma: no cover - documents() and document_text() read one table
                continue
            self._documents.append(_Document(record, texts[0], fold(texts[0]), store.document_passages(record.doc_id)))
        self._sources = {d.record.doc_id: d.source for d in self._documents}
        #: Per passage: its sentences as (source start, source end, folded words).
        self._sentences: list[tuple[PassageRecord, list[tuple[int, int, tuple[str, ...]]]]] = []
        for d in self._documents:
            for p in d.passages:
                spans = [(p.start + s, p.start + e) for s, e in split_sentences(p.text)]
                words = [tuple(quote_words(normalize(d.source[s:e]))) for s, e in spans]
                self._sentences.append((p, [(s, e, w) for (s, e), w in zip(spans, words, strict=True)]))

    def verify(self, draft: str) -> VerifyReport:
        checks = [self.check(q) for q in extract_quotes(draft)]
        found = sum(c.found for c in checks)
        return VerifyReport(
            quotes=checks, supported=found, unsupported=len(checks) - found, build_id=self.store.build_id
        )

    def check(self, quote: Quote) -> QuoteCheck:
        matches = list(self.find(quote.text))
        if not matches:
            # A sentence quoted with its full stop inside the quote marks, or without it.
            trimmed = quote.text.rstrip(_TRAILING_PUNCT + " ")
            if trimmed != quote.text and quote_words(trimmed):
                matches = list(self.find(trimmed))
        if matches:
            return QuoteCheck(quote=quote.text, kind=quote.kind, line=quote.line, found=True, matches=matches)
        return QuoteCheck(
            quote=quote.text, kind=quote.kind, line=quote.line, found=False, closest=self.closest(quote.text)
        )

    def find(self, quote: str) -> Iterator[QuoteMatch]:
        """Every verbatim occurrence of ``quote`` (modulo normalisation) in every document."""
        needle = fold(quote).text
        if not needle:
            return
        target = key(quote)
        for doc in self._documents:
            at = doc.folded.text.find(needle)
            while at >= 0:
                start, end = doc.folded.starts[at], doc.folded.ends[at + len(needle) - 1]
                span = doc.source[start:end]
                if key(span) == target:
                    yield QuoteMatch(
                        passage_id=_containing(doc.passages, start, end),
                        text=span,
                        citation=cite_span(doc.record, start, end),
                    )
                at = doc.folded.text.find(needle, at + 1)

    def closest(self, quote: str) -> Closest | None:
        """The sentence run nearest to ``quote`` by difflib ratio over folded words, among the
        candidates sharing the most words with it."""
        q_words = tuple(quote_words(normalize(quote)))
        if not q_words:
            return None
        wanted = set(q_words)
        runs = {1, max(1, len(split_sentences(quote)))}
        stretches: list[tuple[int, _Stretch]] = []
        for passage, sentences in self._sentences:
            for size in runs:
                for i in range(len(sentences) - size + 1):
                    run = sentences[i : i + size]
                    words = tuple(w for _, _, ws in run for w in ws)
                    shared = len(wanted.intersection(words))
                    if shared:
                        stretches.append((shared, _Stretch(passage, run[0][0], run[-1][1], words)))
        if not stretches:
            return None
        stretches.sort(key=lambda item: -item[0])
        best: tuple[float, _Stretch] | None = None
        for _, stretch in stretches[:CANDIDATES]:
            ratio = aligned_ratio(q_words, stretch.words)
            if best is None or ratio > best[0]:
                best = (ratio, stretch)
        if best is None:  # pragma: no cover - stretches is not empty
            return None
        ratio, stretch = best
        passage = stretch.passage
        source = self._source(passage)
        document = self.store.document(passage.doc_id)
        if document is None:  # pragma: no cover - the schema's foreign key prevents it
            return None
        return Closest(
            passage_id=passage.passage_id,
            passage_text=passage.text,
            sentence=source[stretch.start : stretch.end],
            similarity=round(ratio, SIMILARITY_DECIMALS),
            citation=cite_span(document, stretch.start, stretch.end),
            differences=word_diff(quote, source[stretch.start : stretch.end]),
        )

    def _source(self, passage: PassageRecord) -> str:
        return self._sources[passage.doc_id]


def aligned_ratio(quote: tuple[str, ...], source: tuple[str, ...]) -> float:
    """difflib's ratio between the quote's words and the stretch of ``source`` they align with
    (from the first to the last matching word), so a short quote from a long sentence is not
    penalised for the words around it."""
    blocks = [b for b in difflib.SequenceMatcher(None, quote, source, autojunk=False).get_matching_blocks() if b.size]
    if not blocks:
        return 0.0
    matched = sum(b.size for b in blocks)
    window = blocks[-1].b + blocks[-1].size - blocks[0].b
    return 2.0 * matched / (len(quote) + window)


def word_diff(quote: str, source: str) -> list[WordDiff]:
    """The words that differ between ``quote`` and ``source`` (compared folded, shown as written);
    source words before the quote's first matching word and after its last are left out."""
    a = quote_words(quote)
    b = quote_words(source)
    matcher = difflib.SequenceMatcher(None, [normalize(w) for w in a], [normalize(w) for w in b], autojunk=False)
    out: list[WordDiff] = []
    ops = matcher.get_opcodes()
    while ops and ops[0][0] == "insert":
        ops.pop(0)
    while ops and ops[-1][0] == "insert":
        ops.pop()
    # At the ends, the quote's own words stand against as many source words, not the rest of the sentence.
    if ops and ops[-1][0] == "replace" and len(ops) > 1:
        op, i1, i2, j1, j2 = ops[-1]
        ops[-1] = (op, i1, i2, j1, min(j2, j1 + (i2 - i1)))
    if ops and ops[0][0] == "replace" and len(ops) > 1:
        op, i1, i2, j1, j2 = ops[0]
        ops[0] = (op, i1, i2, max(j1, j2 - (i2 - i1)), j2)
    for op, i1, i2, j1, j2 in ops:
        if op != "equal":
            out.append(WordDiff(op=op, quote=" ".join(a[i1:i2]), source=" ".join(b[j1:j2])))
    return out


def _containing(passages: list[PassageRecord], start: int, end: int) -> str | None:
    for p in passages:
        if p.start <= start and end <= p.end:
            return p.passage_id
    return None


class VerifierCache:
    """One :class:`Verifier` for the build being served, rebuilt when the build changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verifier: Verifier | None = None

    def get(self, store: PassageStore) -> Verifier:
        with self._lock:
            if self._verifier is None or self._verifier.store is not store:
                self._verifier = Verifier(store)
            return self._verifier

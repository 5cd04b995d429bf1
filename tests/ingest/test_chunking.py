"""Passages: verbatim spans, within budget and model window, never across removed text, stable ids."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from qa.embedding.base import bundled_model_path
from qa.index.embedded.layout import CURRENT, DATABASE
from qa.index.location import build_index
from qa.ingest.chunking import Chunker, ChunkerConfig, Passage, count_tokens, passage_id
from qa.ingest.cleaning import analyse
from qa.ingest.documents import Document, load_corpus
from qa.text import normalize
from tests.helpers import SEEDS, FakeEmbedder

CONFIGS = [ChunkerConfig(32, 0), ChunkerConfig(96, 0), ChunkerConfig(96, 1), ChunkerConfig(256, 2)]


class ModelWindow:
    """The bundled model's own tokenizer and window, without loading the model's weights."""

    def __init__(self) -> None:
        path = bundled_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.max_seq_length = int(json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"])

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer(list(texts), truncation=False, verbose=False)["input_ids"]]


@pytest.fixture(scope="module")
def window() -> ModelWindow:
    return ModelWindow()


def make_doc(text: str, doc_id: str = "doc") -> Document:
    return Document(doc_id=doc_id, source=f"{doc_id}.txt", text=text, title="t", blocks=tuple(analyse(text)))


def synthetic_docs() -> list[Document]:
    long_sentence = " ".join(f"word{i}" for i in range(3000)) + "."
    wrapped = "\n".join(
        [
            "A Hard Wrapped Report",
            "",
            "The committee met on Tuesday to discuss the proposal, which had been",
            "circulated among members for several weeks before the meeting was called.",
            "Several members said the draft needed more work before it could pass.",
            "",
            "Photo: Reuters",
            "",
            "After a long debate the chair adjourned the session and promised that a",
            "revised text would be ready within a month, a timetable some doubted.",
        ]
    )
    return [
        make_doc("Title Line\r\n\r\nFirst paragraph has a sentence. And another one here.\r\n" * 3, "crlf"),
        make_doc("Old Mac Line\rThis file uses carriage returns only. It still has sentences.\r", "cr"),
        make_doc(wrapped, "wrapped"),
        make_doc("Giant Sentence\n" + long_sentence, "giant"),
        make_doc("No Spaces\nThis line is prose before a blob. " + "x" * 20000 + " and then some words.", "blob"),
        make_doc("\ufeffBOM Title\n\u00a0\nA paragraph after a BOM and an NBSP line. It has two sentences.", "bom"),
    ]


def all_docs() -> list[Document]:
    return load_corpus(SEEDS) + synthetic_docs()


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.max_tokens}-{c.overlap_sentences}")
def test_every_passage_is_a_verbatim_span_within_budget(config: ChunkerConfig) -> None:
    """Invariant 1, and the token budget, for every passage of every document."""
    checked = 0
    for doc in all_docs():
        passages = Chunker(config).chunk(doc)
        assert passages, doc.doc_id
        for p in passages:
            assert doc.text[p.start : p.end] == p.text
            assert p.text == p.text.strip()
            assert p.n_tokens == count_tokens([p.text])[0] <= config.max_tokens
            checked += 1
    assert checked > 50


@pytest.mark.parametrize("config", [ChunkerConfig(96, 0), ChunkerConfig(2000, 0)], ids=["96", "2000"])
def test_no_passage_exceeds_the_model_window(config: ChunkerConfig, window: ModelWindow) -> None:
    """Invariant 3, counted with the model's own tokenizer, even when the budget alone would allow more."""
    split_by_window = False
    for doc in all_docs():
        passages = Chunker(config, window=window).chunk(doc)
        counts = window.count_tokens([p.text for p in passages])
        assert max(counts) <= window.max_seq_length, doc.doc_id
        for p in passages:
            assert doc.text[p.start : p.end] == p.text
        without_window = Chunker(config).chunk(doc)
        split_by_window |= max(window.count_tokens([p.text for p in without_window])) > window.max_seq_length
    # The large budget must actually have needed the window check, or this test proves nothing.
    assert split_by_window or config.max_tokens < window.max_seq_length


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.max_tokens}-{c.overlap_sentences}")
def test_passages_never_cross_removed_text_and_cover_all_prose(config: ChunkerConfig) -> None:
    for doc in all_docs():
        passages = Chunker(config).chunk(doc)
        for p in passages:
            inside = [b for b in doc.blocks if b.start < p.end and b.end > p.start]
            assert inside, p
            assert all(b.kind == "prose" for b in inside), (doc.doc_id, p.text[:80], [b.kind for b in inside])
        covered = [False] * len(doc.text)
        for p in passages:
            covered[p.start : p.end] = [True] * (p.end - p.start)
        for block in doc.blocks:
            if block.kind == "prose":
                missing = [i for i in range(block.start, block.end) if not covered[i] and not doc.text[i].isspace()]
                assert not missing, (doc.doc_id, block.text(doc.text)[:80])


SEED_BOILERPLATE = [
    "Forum statistics",
    "Latest member",
    "2,855",
    "211206-F-YT915-003.JPG",
    "Click to see the full-size image",
    "Written by",
    "MORE ON THE TOPIC",
    "Notify of",
    "Inline Feedbacks",
    "View all comments",
    "Subscribe",
    "Our Terms & Conditions",
    "Privacy Policy",
    "RELATED:",
    "Continue Reading",
    "Images are for reference only",
    "Comments are closed",
    "(Via Tarang Shakti X)",
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.max_tokens}-{c.overlap_sentences}")
def test_no_seed_passage_contains_boilerplate(config: ChunkerConfig) -> None:
    """Invariant 4 on the seeds, by content: none of their boilerplate reaches a passage."""
    docs = load_corpus(SEEDS)
    texts = [normalize(p.text) for doc in docs for p in Chunker(config).chunk(doc)]
    for marker in SEED_BOILERPLATE:
        assert not [t for t in texts if normalize(marker) in t], marker
    # The repeated headline of 003 appears once, as its title, and never in a passage.
    headline = docs[3].title
    assert not [t for t in texts if normalize(headline) in t]


def test_sentences_are_never_cut_when_they_fit() -> None:
    config = ChunkerConfig(96, 0)
    for doc in load_corpus(SEEDS):
        for p in Chunker(config).chunk(doc):
            assert p.text[-1] in '.!?\u2026\u201d\u2019")]', p.text[-40:]


def test_overlap_repeats_the_last_sentence() -> None:
    doc = load_corpus(SEEDS)[0]
    plain = Chunker(ChunkerConfig(64, 0)).chunk(doc)
    overlapped = Chunker(ChunkerConfig(64, 1)).chunk(doc)
    assert len(overlapped) > len(plain)
    shared = [(a, b) for a, b in itertools.pairwise(overlapped) if b.start < a.end]
    assert shared, "consecutive passages never overlap"
    for a, b in shared:
        assert doc.text[b.start : a.end].strip()


def test_an_overlong_sentence_is_cut_at_word_boundaries() -> None:
    doc = synthetic_docs()[3]
    passages = Chunker(ChunkerConfig(64, 0)).chunk(doc)
    assert len(passages) > 10
    for p in passages:
        assert p.n_tokens <= 64
        assert not doc.text[p.end : p.end + 1].isalnum(), "cut inside a word"
        assert not doc.text[p.start - 1 : p.start].isalnum(), "cut inside a word"


def test_ids_depend_on_document_and_text_only() -> None:
    doc = load_corpus(SEEDS)[1]
    first = Chunker(ChunkerConfig()).chunk(doc)
    again = Chunker(ChunkerConfig()).chunk(doc)
    assert [p.passage_id for p in first] == [p.passage_id for p in again]
    assert len({p.passage_id for p in first}) == len(first)
    for p in first:
        assert p.passage_id == passage_id(doc.doc_id, p.text)
        assert p.passage_id.startswith(doc.doc_id + ":")
    # The same text under another document is another passage.
    assert passage_id("a", "same text") != passage_id("b", "same text")


def test_repeated_text_in_one_document_gets_distinct_ids() -> None:
    body = "This sentence is a complete paragraph of its own."
    doc = make_doc(f"Heading One\n{body}\nHeading Two\n{body} Extra words make it differ slightly.\nH3\n{body}")
    ids = [p.passage_id for p in Chunker(ChunkerConfig()).chunk(doc)]
    assert len(ids) == len(set(ids))


def _ids_by_doc(index_dir: Path) -> dict[str, list[str]]:
    build = (index_dir / CURRENT).read_text().strip()
    db = sqlite3.connect(index_dir / build / DATABASE)
    try:
        rows = db.execute("SELECT doc_id, passage_id FROM passages ORDER BY doc_id, ordinal").fetchall()
    finally:
        db.close()
    out: dict[str, list[str]] = {}
    for doc_id, pid in rows:
        out.setdefault(doc_id, []).append(pid)
    return out


def test_ids_survive_rebuilds_and_edits_touch_only_the_edited_article(corpus_dir: Path, tmp_path: Path) -> None:
    """Invariant 2, through real builds."""
    embedder = FakeEmbedder()
    config = ChunkerConfig()
    first, second, third = tmp_path / "i1", tmp_path / "i2", tmp_path / "i3"
    build_index(corpus_dir, first, embedder, config)
    build_index(corpus_dir, second, embedder, config)
    before = _ids_by_doc(first)
    assert before == _ids_by_doc(second)

    edited = corpus_dir / "003_4fdb1282455ab5f8.txt"
    text = edited.read_bytes().decode("utf-8")
    edited.write_bytes(text.replace("on October 1 stressed", "on 1 October stressed").encode("utf-8"))
    (corpus_dir / "new_article.txt").write_text(
        "A New Article\nThis new article has one paragraph with two sentences. It is short.\n", encoding="utf-8"
    )
    build_index(corpus_dir, third, embedder, config)
    after = _ids_by_doc(third)
    assert set(after) == set(before) | {"new_article"}
    for doc_id in before:
        if doc_id == "003_4fdb1282455ab5f8":
            assert after[doc_id] != before[doc_id]
            # Passages of the edited article that did not change keep their ids.
            assert len(set(after[doc_id]) & set(before[doc_id])) >= len(before[doc_id]) - 2
        else:
            assert after[doc_id] == before[doc_id], doc_id


def test_passage_fields(window: ModelWindow) -> None:
    doc = load_corpus(SEEDS)[4]
    passages: list[Passage] = Chunker(ChunkerConfig(), window=window).chunk(doc)
    assert [p.ordinal for p in passages] == list(range(len(passages)))
    assert all(p.doc_id == doc.doc_id for p in passages)
    assert passages == sorted(passages, key=lambda p: p.start)
    sections = {p.section for p in passages}
    assert "Born of Domestic Priorities" in sections
    assert passages[0].section is None

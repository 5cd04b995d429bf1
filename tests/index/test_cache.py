"""The embedding cache: rebuilds embed only new text, and the cache holds only what builds use."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.embedding.base import Vectors
from qa.errors import IndexMismatchError
from qa.index import sentence_vectors as indexing
from qa.index.embedded.cache import CACHE_FILE, EmbeddingCache
from qa.index.embedded.folder import list_builds
from qa.index.embedded.store import EmbeddedStore
from qa.index.location import build_index
from qa.index.manifest import BuildIdentity
from qa.ingest.chunking import Chunker, ChunkerConfig, Passage
from qa.ingest.documents import Document
from tests.helpers import FakeEmbedder, all_passages

CONFIG = ChunkerConfig()
#: Sentences embedded as texts of their own (the default): a sentence already embedded anywhere is reused by its text.
SEPARATE = ChunkerConfig(sentence_vectors="separate")
#: Sentences pooled from their passage's own pass.
PASSAGE = ChunkerConfig(sentence_vectors="passage")


class CountingEmbedder(FakeEmbedder):
    """Remembers every text it embedded (the model probe included)."""

    def __init__(self, fail_after: int | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.texts: list[str] = []
        self.fail_after = fail_after

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        if self.fail_after is not None and len(self.texts) >= self.fail_after:
            raise RuntimeError("simulated crash while embedding")
        self.texts.extend(texts)
        return super().embed_batch(texts)


def _passage_texts(index_dir: Path, doc_id: str | None = None) -> list[str]:
    index = EmbeddedStore.open(index_dir, expected=None)
    try:
        passages = all_passages(index)
        return [p.text for p in passages if doc_id is None or p.doc_id == doc_id]
    finally:
        index.close()


def _sentence_texts(index_dir: Path) -> set[str]:
    index = EmbeddedStore.open(index_dir, expected=None)
    try:
        passages = all_passages(index)
        stored = index.sentences([p.passage_id for p in passages])
        return {p.text[s:e] for p in passages for s, e in stored[p.passage_id].spans}
    finally:
        index.close()


def _passage_rows(index_dir: Path) -> list[tuple[str, str, int, int, str]]:
    index = EmbeddedStore.open(index_dir, expected=None)
    try:
        return [(p.passage_id, p.doc_id, p.start, p.end, p.text) for p in all_passages(index)]
    finally:
        index.close()


def _cache_rows(index_dir: Path) -> int:
    db = sqlite3.connect(index_dir / CACHE_FILE)
    try:
        return int(db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
    finally:
        db.close()


def test_an_unchanged_corpus_is_rebuilt_without_embedding(settings: Settings) -> None:
    first = CountingEmbedder()
    report = build_index(settings.corpus_dir, settings.index_dir, first, CONFIG)
    assert report.embedded == report.passages > 0
    again = CountingEmbedder()
    second = build_index(settings.corpus_dir, settings.index_dir, again, CONFIG)
    assert second.embedded == 0
    assert len(again.texts) == 1  # only the model probe
    index = EmbeddedStore.open(settings.index_dir, expected=None)
    try:
        stored = all_passages(index)
        vectors = FakeEmbedder().embed_batch([p.text for p in stored])
        for passage, vector in zip(stored, vectors, strict=True):
            hits = index.dense(vector, 1)
            assert hits[0].score == pytest.approx(1.0, abs=1e-5), passage.passage_id
    finally:
        index.close()


def test_editing_adding_and_deleting_articles_embeds_only_those(settings: Settings) -> None:
    build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), SEPARATE)
    before = set(_passage_texts(settings.index_dir))
    known = before | _sentence_texts(settings.index_dir)
    edited = settings.corpus_dir / "003_4fdb1282455ab5f8.txt"
    edited.write_bytes(edited.read_bytes().replace(b"on October 1 stressed", b"on 1 October stressed"))
    (settings.corpus_dir / "001_3737cd750cfae74d.txt").unlink()
    (settings.corpus_dir / "added.txt").write_text(
        "An Added Article\nThe added article brings one new paragraph of prose. It has two sentences.\n"
    )
    embedder = CountingEmbedder()
    report = build_index(settings.corpus_dir, settings.index_dir, embedder, SEPARATE)
    after = _passage_texts(settings.index_dir)
    new_texts = set(after) - before
    # New passages, and those of their sentences that no earlier passage or sentence had.
    new_sentences = _sentence_texts(settings.index_dir) - known
    assert set(embedder.texts[1:]) == new_texts | new_sentences
    assert report.embedded == len(new_texts)
    assert new_texts <= set(_passage_texts(settings.index_dir, "003_4fdb1282455ab5f8")) | set(
        _passage_texts(settings.index_dir, "added")
    )
    assert not _passage_texts(settings.index_dir, "001_3737cd750cfae74d")


def test_a_crashed_build_keeps_its_vectors_for_the_next_one(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(indexing, "EMBED_CHUNK", 10)
    crashing = CountingEmbedder(fail_after=21)  # the probe, then two slices of ten
    with pytest.raises(RuntimeError, match="simulated"):
        build_index(settings.corpus_dir, settings.index_dir, crashing, SEPARATE)
    assert not list_builds(settings.index_dir)
    embedder = CountingEmbedder()
    report = build_index(settings.corpus_dir, settings.index_dir, embedder, SEPARATE)
    assert report.embedded == report.passages - 20


def test_the_cache_keeps_what_the_live_and_previous_builds_use(settings: Settings) -> None:
    build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), SEPARATE)
    first_rows = _cache_rows(settings.index_dir)
    article = settings.corpus_dir / "000_f4e7857b5d4e8740.txt"
    original = article.read_bytes()
    for n in range(3):
        article.write_bytes(original + f"\nRevision {n} adds this closing sentence to the article.\n".encode())
        build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), SEPARATE)
    # Two builds are kept; rows only the pruned builds used are gone.
    assert len(list_builds(settings.index_dir)) == 2
    # Each revision adds one passage and one sentence; two builds' worth stay.
    assert first_rows < _cache_rows(settings.index_dir) <= first_rows + 4
    # Another model's rows are dropped by its first build.
    build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(seed="z"), SEPARATE)
    live = set(_passage_texts(settings.index_dir)) | _sentence_texts(settings.index_dir)
    assert _cache_rows(settings.index_dir) == len(live)


def test_a_damaged_cache_is_replaced(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), CONFIG)
    (settings.index_dir / CACHE_FILE).write_bytes(b"not a database" * 1000)
    embedder = CountingEmbedder()
    with caplog.at_level(logging.WARNING):
        report = build_index(settings.corpus_dir, settings.index_dir, embedder, CONFIG)
    assert "embedding cache" in caplog.text
    assert report.embedded == report.passages
    assert np.isfinite(report.seconds)


# -- incremental builds, one change at a time -----------------------------------------------


def _search_doc_ids(index_dir: Path, texts: Sequence[str], k: int = 10) -> set[str]:
    index = EmbeddedStore.open(index_dir, expected=None)
    try:
        vectors = FakeEmbedder().embed_batch(list(texts))
        return {hit.doc_id for vector in vectors for hit in index.dense(vector, k)}
    finally:
        index.close()


def test_editing_one_article_embeds_only_its_new_passages(settings: Settings) -> None:
    build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), SEPARATE)
    doc_id = "003_4fdb1282455ab5f8"
    before = _passage_texts(settings.index_dir, doc_id)
    known = set(_passage_texts(settings.index_dir)) | _sentence_texts(settings.index_dir)
    others = set(_passage_texts(settings.index_dir)) - set(before)
    edited = settings.corpus_dir / f"{doc_id}.txt"
    edited.write_bytes(edited.read_bytes().replace(b"on October 1 stressed", b"on 1 October stressed"))
    embedder = CountingEmbedder()
    report = build_index(settings.corpus_dir, settings.index_dir, embedder, SEPARATE)
    after = _passage_texts(settings.index_dir, doc_id)
    assert 0 < report.embedded < len(after)
    new_passages = [t for t in after if t not in before]
    assert embedder.texts[1 : 1 + len(new_passages)] == new_passages
    # Then the sentences of the build that were never embedded: here, the edited one.
    assert set(embedder.texts[1 + len(new_passages) :]) == _sentence_texts(settings.index_dir) - known
    assert len(embedder.texts) - 1 - len(new_passages) == 1
    assert set(_passage_texts(settings.index_dir)) - set(after) == others


def test_in_one_pass_an_edited_article_embeds_its_new_passages_with_their_sentences(settings: Settings) -> None:
    """Sentence vectors pooled from the passage's pass depend on the passage: a new passage brings all its sentences."""
    build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), PASSAGE)
    doc_id = "003_4fdb1282455ab5f8"
    before = _passage_texts(settings.index_dir, doc_id)
    edited = settings.corpus_dir / f"{doc_id}.txt"
    edited.write_bytes(edited.read_bytes().replace(b"on October 1 stressed", b"on 1 October stressed"))
    embedder = CountingEmbedder()
    report = build_index(settings.corpus_dir, settings.index_dir, embedder, PASSAGE)
    after = _passage_texts(settings.index_dir, doc_id)
    new_passages = [t for t in after if t not in before]
    assert report.embedded == len(new_passages) == 1
    # The fake's one pass: the new passage, then each of its sentences (a real model pools them).
    assert embedder.texts[1:2] == new_passages
    index = EmbeddedStore.open(settings.index_dir, expected=None)
    try:
        (record,) = [p for p in all_passages(index) if p.text == new_passages[0]]
        spans = index.sentences([record.passage_id])[record.passage_id].spans
    finally:
        index.close()
    assert embedder.texts[2:] == [record.text[s:e] for s, e in spans]
    again = CountingEmbedder()
    assert build_index(settings.corpus_dir, settings.index_dir, again, PASSAGE).embedded == 0
    assert len(again.texts) == 1  # only the model probe


def test_adding_one_article_embeds_only_its_passages(settings: Settings) -> None:
    build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), CONFIG)
    (settings.corpus_dir / "added.txt").write_text(
        "An Added Article\n\nThe added article brings one new paragraph of prose. It has two sentences.\n"
    )
    embedder = CountingEmbedder()
    report = build_index(settings.corpus_dir, settings.index_dir, embedder, CONFIG)
    added = _passage_texts(settings.index_dir, "added")
    assert report.embedded == len(added) == 1
    assert embedder.texts[1:2] == added
    assert embedder.texts[2:] == ["The added article brings one new paragraph of prose.", "It has two sentences."]
    assert report.documents == 6


def test_a_deleted_article_leaves_the_index_and_the_results(settings: Settings) -> None:
    build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), CONFIG)
    doc_id = "001_3737cd750cfae74d"
    gone = _passage_texts(settings.index_dir, doc_id)
    assert doc_id in _search_doc_ids(settings.index_dir, gone)
    (settings.corpus_dir / f"{doc_id}.txt").unlink()
    embedder = CountingEmbedder()
    report = build_index(settings.corpus_dir, settings.index_dir, embedder, CONFIG)
    assert report.embedded == 0
    assert report.documents == 4
    assert not _passage_texts(settings.index_dir, doc_id)
    assert doc_id not in _search_doc_ids(settings.index_dir, gone)
    index = EmbeddedStore.open(settings.index_dir, expected=None)
    try:
        assert index.document(doc_id) is None
        assert index.passage_count == report.passages
    finally:
        index.close()


def test_an_unchanged_rebuild_chunks_nothing_and_gives_the_same_passages(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), CONFIG)
    first = _passage_rows(settings.index_dir)
    chunked: list[str] = []
    original = Chunker.chunk

    def counting_chunk(self: Chunker, doc: Document) -> list[Passage]:
        chunked.append(doc.doc_id)
        return original(self, doc)

    monkeypatch.setattr(Chunker, "chunk", counting_chunk)
    build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), CONFIG)
    assert chunked == []
    assert _passage_rows(settings.index_dir) == first
    # An edited article is chunked again, and only it.
    edited = settings.corpus_dir / "000_f4e7857b5d4e8740.txt"
    edited.write_bytes(edited.read_bytes() + b"\nA closing sentence was added to this article today.\n")
    build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), CONFIG)
    assert chunked == ["000_f4e7857b5d4e8740"]
    # Other chunker settings chunk everything again.
    chunked.clear()
    build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), ChunkerConfig(max_tokens=64))
    assert len(chunked) == 5


def test_the_manifest_records_build_time_and_reuse(settings: Settings) -> None:
    first = build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), CONFIG)
    second = build_index(settings.corpus_dir, settings.index_dir, CountingEmbedder(), CONFIG)
    # The id's suffix hashes what was built, not how: the same corpus, model and chunker give the same one.
    assert first.build_id.split("-", 1)[1] == second.build_id.split("-", 1)[1]
    for report, embedded in ((first, first.passages), (second, 0)):
        manifest = json.loads((settings.index_dir / report.build_id / "manifest.json").read_text())
        assert 0 < manifest["build_seconds"] <= report.seconds
        assert manifest["embedded"] == embedded
        assert manifest["reused"] == report.passages - embedded


def test_the_cache_is_in_wal_mode_and_commits_once_per_slice(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "m", 4, "b1")
    statements: list[str] = []
    cache._db.set_trace_callback(statements.append)
    try:
        assert cache._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        keys = [f"k{i}" for i in range(1200)]
        cache.put(keys, np.ones((1200, 4), dtype=np.float32))
        assert sum(s.upper().startswith("COMMIT") for s in statements) == 1
        statements.clear()
        found = cache.get([*keys, "missing"])
        assert len(found) == 1200
        # Three slices of at most 500 keys, one SELECT each, and one commit for the lot.
        assert sum(s.upper().startswith("SELECT") for s in statements) == 3
        assert sum(s.upper().startswith("COMMIT") for s in statements) == 1
    finally:
        cache.close()


def test_an_index_built_the_other_way_is_refused(settings: Settings) -> None:
    """How sentences were embedded is part of the build's identity: opening with the other setting fails."""
    embedder = FakeEmbedder()
    build_index(settings.corpus_dir, settings.index_dir, embedder, PASSAGE)
    with pytest.raises(IndexMismatchError, match="sentence_vectors='passage'"):
        EmbeddedStore.open(settings.index_dir, BuildIdentity.of(embedder, SEPARATE))
    EmbeddedStore.open(settings.index_dir, BuildIdentity.of(embedder, PASSAGE)).close()

"""The offline half: corpus folder → documents → passages → vectors → a new live build."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import qa.text as text
from qa.embedding.base import Embedder, Vectors, model_identity
from qa.errors import IndexCorruptError, IndexMismatchError, IndexStoreError, RollbackError
from qa.index.builds import (
    build_lock,
    current_build_id,
    list_builds,
    previous_build_id,
    remove_partial_builds,
    switch_current,
    write_build,
)
from qa.index.cache import EmbeddingCache, model_key
from qa.index.manifest import compatibility_problems, read_manifest
from qa.index.sentence_vectors import Progress as Progress  # re-exported: callers import it here
from qa.index.sentence_vectors import VectorCache, embed_passages
from qa.index.store import Index
from qa.index.vectors import VectorIndexMode, choose_vector_index
from qa.ingest import chunking, cleaning, sentences
from qa.ingest.chunking import Chunker, ChunkerConfig, Passage
from qa.ingest.documents import Document, Skipped, corpus_fingerprint, extractors_used, read_corpus
from qa.ingest.sentences import split_sentences

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildReport:
    """What :func:`build_index` made: the new build's id, its counts and how long it took."""

    build_id: str
    documents: int
    passages: int
    seconds: float
    #: Passages whose vectors were computed by this build; the rest came from the cache.
    embedded: int = 0
    #: Files of the corpus that were not read, with the reason (also in the manifest).
    skipped: tuple[Skipped, ...] = ()


def expected_identity(embedder: Embedder, config: ChunkerConfig) -> dict[str, Any]:
    """What a build made now with this model and chunker records, and what opening checks."""
    return {"model": model_identity(embedder), "chunker": config.describe()}


def build_index(
    corpus_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    config: ChunkerConfig,
    progress: Progress | None = None,
    vector_index: VectorIndexMode = "auto",
) -> BuildReport:
    """Build the articles in ``corpus_dir`` into a new build under ``index_dir`` and make it live.

    ``vector_index`` (``QA_VECTOR_INDEX``) picks the FAISS index: ``auto`` by the passage
    count (see :func:`qa.index.vectors.choose_vector_index`), or ``flat``/``hnsw`` forced.
    """
    started = time.perf_counter()
    with build_lock(index_dir):
        corpus: dict[str, Any] = {"path": str(corpus_dir), "sha256": corpus_fingerprint(corpus_dir)}
        extractors = extractors_used(corpus_dir)
        if extractors:
            corpus["extractors"] = extractors
        skipped: list[Skipped] = []

        def read(cache: EmbeddingCache) -> Sequence[Document]:
            found = read_corpus(corpus_dir, cache)
            skipped.extend(found.skipped)
            # Every skipped file with its reason: `qa build` lists them, /healthz counts them.
            corpus["skipped"] = [{"source": s.source, "reason": s.reason} for s in found.skipped]
            return found.documents

        report = _build(read, index_dir, embedder, config, corpus, progress, started, vector_index)
        return dataclasses.replace(report, skipped=tuple(skipped))


def build_documents(
    documents: Sequence[Document],
    index_dir: Path,
    embedder: Embedder,
    config: ChunkerConfig,
    corpus: dict[str, Any],
    progress: Progress | None = None,
    vector_index: VectorIndexMode = "auto",
) -> BuildReport:
    """Build documents that did not come from a folder (a benchmark's corpus file, say)."""
    started = time.perf_counter()
    with build_lock(index_dir):
        return _build(documents, index_dir, embedder, config, corpus, progress, started, vector_index)


def _build(
    documents: Sequence[Document] | Callable[[EmbeddingCache], Sequence[Document]],
    index_dir: Path,
    embedder: Embedder,
    config: ChunkerConfig,
    corpus: dict[str, Any],
    progress: Progress | None,
    started: float,
    vector_index: VectorIndexMode = "auto",
) -> BuildReport:
    remove_partial_builds(index_dir)  # the lock is held: whatever a killed build left is stale
    identity = model_identity(embedder)
    cache = EmbeddingCache(index_dir, model_key(identity), embedder.dimension, f"pending-{uuid.uuid4().hex}")
    try:
        if callable(documents):  # a corpus folder, read with the cache open (extractions are kept there)
            documents = documents(cache)
        prepared = prepare(documents, embedder, config, cache, progress, identity)
        passages, vectors, embedded = prepared.passages, prepared.vectors, prepared.embedded
        manifest = {
            "model": identity,
            "chunker": config.describe(),
            "corpus": corpus,
            "embedded": embedded,
            "reused": len(passages) - embedded,
        }
        spans, sentence_vectors = prepared.spans, prepared.sentence_vectors
        build_id = write_build(
            index_dir,
            documents,
            passages,
            vectors,
            manifest,
            started=started,
            sentences=(spans, sentence_vectors),
            vector_index=vector_index,
        )
        cache.rename_build(build_id)
        dropped = cache.retain(list_builds(index_dir))
    finally:
        cache.close()
    seconds = time.perf_counter() - started
    log.info(
        "build %s: %d passages (%d embedded, %d from cache; %d cache rows dropped) in %.1f s",
        build_id,
        len(passages),
        embedded,
        len(passages) - embedded,
        dropped,
        seconds,
    )
    return BuildReport(build_id, len(documents), len(passages), seconds, embedded)


class VectorSource(VectorCache, Protocol):
    """Where a build finds vectors and passage boundaries it already has (:class:`EmbeddingCache`, or a database)."""

    def get_chunks(self, keys: Sequence[str]) -> dict[str, list[list[Any]]]: ...

    def put_chunks(self, items: dict[str, list[list[Any]]]) -> None: ...


@dataclass(frozen=True)
class Prepared:
    """What any store writes for a build: passages, the texts embedded and their vectors, sentences."""

    passages: list[Passage]
    #: The text the model saw for each passage (with the title before it when titles are embedded).
    texts: list[str]
    vectors: Vectors
    #: Passages whose vectors were computed now (the rest were reused).
    embedded: int
    #: Each passage's sentences: ``(passage index from 0, start, end)`` in its text.
    spans: list[tuple[int, int, int]]
    sentence_vectors: Vectors
    #: The key each sentence vector is reused under by a later build (qa.index.sentence_vectors).
    sentence_keys: list[str]


def prepare(
    documents: Sequence[Document],
    embedder: Embedder,
    config: ChunkerConfig,
    cache: VectorSource,
    progress: Progress | None = None,
    identity: dict[str, Any] | None = None,
) -> Prepared:
    """Chunk every document and embed its passages and their sentences, reusing what ``cache`` holds.

    ``identity`` is the embedder's :func:`model_identity` when the caller has it already (it embeds a probe).
    """
    identity = identity if identity is not None else model_identity(embedder)
    chunker = Chunker(config, window=embedder)
    passages, texts = chunk_with_cache(chunker, documents, cache, chunker_key(config, identity))
    log.info("%d documents, %d passages", len(documents), len(passages))
    # Sentences are embedded here, so that answering needs no model call beyond the question;
    # config.sentence_vectors says how (qa.index.sentence_vectors).
    own = [split_sentences(passage.text) for passage in passages]
    vectors, embedded, sentence_vectors, sentence_keys = embed_passages(
        embedder, config.sentence_vectors, passages, texts, own, cache, progress
    )
    spans = [(i, s, e) for i, sentences_of in enumerate(own) for s, e in sentences_of]
    return Prepared(passages, texts, vectors, embedded, spans, sentence_vectors, sentence_keys)


def chunker_key(config: ChunkerConfig, identity: dict[str, Any]) -> str:
    """What decides passage boundaries besides a document's own text.

    The chunker's parameters, the model's window and tokenizer (its identity), and the
    source of the modules that clean, split and pack text: a change to any of them, even
    one that forgets to bump ``CHUNKER_VERSION``, makes every document chunk afresh.
    """
    digest = hashlib.sha256(json.dumps([config.describe(), identity], sort_keys=True).encode())
    digest.update(_chunking_code_digest().encode())
    return digest.hexdigest()[:16]


@functools.cache
def _chunking_code_digest() -> str:
    """sha256 of the source of the modules that decide passage boundaries, read once per process."""
    digest = hashlib.sha256()
    for module in (text, cleaning, chunking, sentences):
        digest.update(Path(module.__file__ or "").read_bytes())
    return digest.hexdigest()


def chunk_key(key: str, chunker: Chunker, doc: Document) -> str:
    """The cache key of one document's passages: chunker key, id, embedding prefix and text."""
    data = "\0".join((key, doc.doc_id, chunker.embedding_prefix(doc), doc.text))
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()


def chunk_with_cache(
    chunker: Chunker, documents: Sequence[Document], cache: VectorSource, key: str
) -> tuple[list[Passage], list[str]]:
    """Passages of every document and the texts the model embeds for them.

    A document whose text, id and embedding prefix are unchanged since a kept build reuses
    its stored passage boundaries instead of being cleaned, split and counted again.
    """
    keys = [chunk_key(key, chunker, doc) for doc in documents]
    known = cache.get_chunks(keys)
    fresh: dict[str, list[list[Any]]] = {}
    passages: list[Passage] = []
    texts: list[str] = []
    for doc, k in zip(documents, keys, strict=True):
        chunks = _passages_from_spans(doc, known[k]) if k in known else None
        if chunks is None:
            chunks = chunker.chunk(doc)
            fresh[k] = [[p.passage_id, p.start, p.end, p.section, p.n_tokens] for p in chunks]
        passages.extend(chunks)
        texts.extend(chunker.embedding_texts(doc, chunks))
    cache.put_chunks(fresh)
    log.info("%d documents chunked, %d unchanged", len(fresh), len(documents) - len(fresh))
    return passages, texts


def _passages_from_spans(doc: Document, spans: list[list[Any]]) -> list[Passage] | None:
    """Passages rebuilt from stored boundaries, or ``None`` if the stored row does not fit the text."""
    passages = []
    try:
        for ordinal, (pid, start, end, section, n_tokens) in enumerate(spans):
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(doc.text)):
                return None
            passages.append(Passage(str(pid), doc.doc_id, ordinal, start, end, doc.text[start:end], section, n_tokens))
    except (TypeError, ValueError):
        return None
    return passages


def stale_reason(
    corpus_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    config: ChunkerConfig,
    vector_index: VectorIndexMode = "auto",
) -> str | None:
    """Why the live build no longer matches the corpus and settings, or ``None`` if it does."""
    try:
        manifest = read_manifest(index_dir / current_build_id(index_dir))
    except IndexStoreError as exc:
        return str(exc)
    return manifest_stale_reason(manifest, corpus_dir, embedder, config, vector_index)


def manifest_stale_reason(
    manifest: dict[str, Any],
    corpus_dir: Path,
    embedder: Embedder,
    config: ChunkerConfig,
    vector_index: VectorIndexMode = "auto",
) -> str | None:
    """Why a live build with this manifest no longer matches the corpus and settings (any store)."""
    expected = expected_identity(embedder, config)
    problems = compatibility_problems(manifest, expected)
    if problems:
        return "; ".join(problems)
    built_with, encoder = (
        (manifest.get("model") or {}).get("encoder", "torch"),
        expected["model"].get("encoder", "torch"),
    )
    if built_with != encoder:
        return f"build {manifest.get('build_id')} was embedded by the {built_with} encoder, settings say {encoder}"
    if (manifest.get("corpus") or {}).get("sha256") != corpus_fingerprint(corpus_dir):
        return f"the articles in {corpus_dir} changed since build {manifest.get('build_id')}"
    wanted = choose_vector_index(int(manifest.get("passages") or 0), vector_index).describe()
    held = manifest.get("vectors") or {"type": "flat"}
    if held != wanted:
        return f"build {manifest.get('build_id')} holds a {held} vector index, settings ask for {wanted}"
    return None


def rollback(index_dir: Path, expected: dict[str, Any] | None = None) -> tuple[str, str]:
    """Switch CURRENT back to the previous build; return ``(rolled back from, rolled back to)``.

    The previous build is the one CURRENT named when the live build was made (see
    :func:`qa.index.builds.previous_build_id`). It is opened and checked first, exactly as a
    server would open it, against ``expected`` (see :func:`expected_identity`): a build
    made with another model or chunker, or a damaged one, is refused and CURRENT is not
    touched. The switch itself is one ``os.replace``. Builds are never deleted here. A
    build in progress is waited for (both hold the build lock).
    """
    current_build_id(index_dir)  # no index at all: say so before creating the lock file
    with build_lock(index_dir):
        current = current_build_id(index_dir)
        target = previous_build_id(index_dir)
        if target is None:
            raise RollbackError(
                f"there is no previous build to roll back to in {index_dir}: {current} is the only one "
                f"kept (a rollback does not chain). Build again with `qa build` instead."
            )
        try:
            Index.open_build(index_dir / target, expected).close()
        except IndexMismatchError as exc:
            raise IndexMismatchError(f"refusing to roll back to build {target}: {exc}") from None
        except IndexStoreError as exc:
            raise IndexCorruptError(f"refusing to roll back to build {target}: {exc}") from None
        switch_current(index_dir, target)
    log.info("rolled back %s: CURRENT %s -> %s", index_dir, current, target)
    return current, target

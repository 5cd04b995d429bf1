"""The offline half: corpus folder → documents → passages → vectors → a new live build."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.cache import EmbeddingCache, model_key, text_key
from qa.chunking import Chunker, ChunkerConfig, Passage
from qa.documents import Document, corpus_fingerprint, load_corpus
from qa.embedding import Embedder, Vectors, model_identity
from qa.errors import IndexStoreError
from qa.store import (
    build_lock,
    compatibility_problems,
    current_build_id,
    list_builds,
    read_manifest,
    write_build,
)

log = logging.getLogger(__name__)

#: Called as ``progress(done, total)`` while passages are embedded.
Progress = Callable[[int, int], None]
#: Passages handed to the model per call; the model batches further inside.
EMBED_CHUNK = 256


@dataclass(frozen=True)
class BuildReport:
    build_id: str
    documents: int
    passages: int
    seconds: float
    #: Passages whose vectors were computed by this build; the rest came from the cache.
    embedded: int = 0


def expected_identity(embedder: Embedder, config: ChunkerConfig) -> dict[str, Any]:
    """What a build made now with this model and chunker records, and what opening checks."""
    return {"model": model_identity(embedder), "chunker": config.describe()}


def build_index(
    corpus_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    config: ChunkerConfig,
    progress: Progress | None = None,
) -> BuildReport:
    """Build the articles in ``corpus_dir`` into a new build under ``index_dir`` and make it live."""
    started = time.perf_counter()
    with build_lock(index_dir):
        corpus = {"path": str(corpus_dir), "sha256": corpus_fingerprint(corpus_dir)}
        documents = load_corpus(corpus_dir)
        return _build(documents, index_dir, embedder, config, corpus, progress, started)


def build_documents(
    documents: Sequence[Document],
    index_dir: Path,
    embedder: Embedder,
    config: ChunkerConfig,
    corpus: dict[str, Any],
    progress: Progress | None = None,
) -> BuildReport:
    """Build documents that did not come from a folder (a benchmark's corpus file, say)."""
    started = time.perf_counter()
    with build_lock(index_dir):
        return _build(documents, index_dir, embedder, config, corpus, progress, started)


def _build(
    documents: Sequence[Document],
    index_dir: Path,
    embedder: Embedder,
    config: ChunkerConfig,
    corpus: dict[str, Any],
    progress: Progress | None,
    started: float,
) -> BuildReport:
    chunker = Chunker(config, window=embedder)
    passages: list[Passage] = []
    texts: list[str] = []
    for doc in documents:
        chunks = chunker.chunk(doc)
        passages.extend(chunks)
        texts.extend(chunker.embedding_texts(doc, chunks))
    log.info("%d documents, %d passages", len(documents), len(passages))
    identity = model_identity(embedder)
    cache = EmbeddingCache(index_dir, model_key(identity), embedder.dimension, f"pending-{uuid.uuid4().hex}")
    try:
        vectors, embedded = embed_with_cache(embedder, texts, cache, progress)
        manifest = {
            "model": identity,
            "chunker": config.describe(),
            "corpus": corpus,
            "embedded": embedded,
            "reused": len(passages) - embedded,
        }
        build_id = write_build(index_dir, documents, passages, vectors, manifest, started=started)
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


def embed_with_cache(
    embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache, progress: Progress | None = None
) -> tuple[Vectors, int]:
    """Vectors for ``texts``, from the cache where it has them, else from the model; and how many were new.

    New texts are embedded in large slices (the model sorts each slice by length) and
    stored after each slice, so progress survives a crash.
    """
    if not texts:
        return np.zeros((0, embedder.dimension), dtype=np.float32), 0
    keys = [text_key(t) for t in texts]
    known = cache.get(keys)
    text_of = dict(zip(keys, texts, strict=True))
    missing = [k for k in text_of if k not in known]
    if progress:
        progress(0, len(missing))
    for start in range(0, len(missing), EMBED_CHUNK):
        chunk = missing[start : start + EMBED_CHUNK]
        vectors = embedder.embed_batch([text_of[k] for k in chunk])
        cache.put(chunk, vectors)
        known.update(zip(chunk, vectors, strict=True))
        if progress:
            progress(start + len(chunk), len(missing))
    return np.vstack([known[k] for k in keys]).astype(np.float32, copy=False), len(missing)


def stale_reason(corpus_dir: Path, index_dir: Path, embedder: Embedder, config: ChunkerConfig) -> str | None:
    """Why the live build no longer matches the corpus and settings, or ``None`` if it does."""
    try:
        manifest = read_manifest(index_dir / current_build_id(index_dir))
    except IndexStoreError as exc:
        return str(exc)
    problems = compatibility_problems(manifest, expected_identity(embedder, config))
    if problems:
        return "; ".join(problems)
    if (manifest.get("corpus") or {}).get("sha256") != corpus_fingerprint(corpus_dir):
        return f"the articles in {corpus_dir} changed since build {manifest.get('build_id')}"
    return None

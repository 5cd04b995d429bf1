"""The offline half: corpus folder → documents → passages → vectors → a new live build."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.chunking import Chunker, ChunkerConfig, Passage
from qa.documents import corpus_fingerprint, load_corpus
from qa.embedding import Embedder, Vectors, model_identity
from qa.errors import IndexStoreError
from qa.store import (
    build_lock,
    compatibility_problems,
    current_build_id,
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
    """Build the corpus into a new build under ``index_dir`` and make it the live one."""
    started = time.perf_counter()
    with build_lock(index_dir):
        fingerprint = corpus_fingerprint(corpus_dir)
        documents = load_corpus(corpus_dir)
        chunker = Chunker(config, window=embedder)
        passages: list[Passage] = []
        for doc in documents:
            passages.extend(chunker.chunk(doc))
        log.info("%d documents, %d passages", len(documents), len(passages))
        vectors = embed_passages(embedder, [p.text for p in passages], progress)
        manifest = {
            **expected_identity(embedder, config),
            "corpus": {"path": str(corpus_dir), "sha256": fingerprint},
        }
        build_id = write_build(index_dir, documents, passages, vectors, manifest)
    seconds = time.perf_counter() - started
    log.info("build %s: %d passages in %.1f s", build_id, len(passages), seconds)
    return BuildReport(build_id, len(documents), len(passages), seconds)


def embed_passages(embedder: Embedder, texts: list[str], progress: Progress | None = None) -> Vectors:
    """Embed in large slices (the model sorts each slice by length), reporting progress."""
    parts: list[Vectors] = []
    if progress:
        progress(0, len(texts))
    for start in range(0, len(texts), EMBED_CHUNK):
        parts.append(embedder.embed_batch(texts[start : start + EMBED_CHUNK]))
        if progress:
            progress(min(start + EMBED_CHUNK, len(texts)), len(texts))
    if not parts:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    return np.vstack(parts)


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

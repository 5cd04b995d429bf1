"""A build's sentence vectors: from each passage's own forward pass, or each sentence embedded as a text.

``separate`` (the default): every sentence is embedded again as a text of its own, and a
sentence already embedded anywhere is reused by its text. ``passage``
(:data:`qa.embedding.spans.PASSAGE_TOKENS`): one forward pass per passage gives its vector
and, pooled from its token embeddings, every sentence's (:mod:`qa.embedding.spans`); a
sentence the window cut is embedded as a text of its own.
Which one made a build is recorded in its manifest's chunker entry, so an index built
the other way is refused when opened.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from qa.embedding.base import Embedder, Vectors
from qa.embedding.spans import PASSAGE_TOKENS, SEPARATE, Spans
from qa.errors import ModelError

if TYPE_CHECKING:
    from qa.ingest.chunking import Passage

log = logging.getLogger(__name__)


def text_key(text: str) -> str:
    """What a vector is kept and reused under, in every store: the sha256 of the text the model saw."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


#: Called as ``progress(done, total)`` while passages are embedded.
Progress = Callable[[int, int], None]
#: Passages handed to the model per call; the model batches further inside.
EMBED_CHUNK = 256
MODES = (PASSAGE_TOKENS, SEPARATE)


class VectorCache(Protocol):
    def get(self, keys: Sequence[str]) -> dict[str, Vectors]: ...

    def put(self, keys: Sequence[str], vectors: Vectors) -> None: ...


def sentence_key(text: str, start: int, end: int) -> str:
    """The cache key of the sentence ``text[start:end]`` pooled from the pass over ``text`` (not the sentence's own)."""
    return hashlib.sha256(f"sentence-in-passage\0{start}\0{end}\0{text}".encode()).hexdigest()


def embed_passages(
    embedder: Embedder,
    mode: str,
    passages: Sequence[Passage],
    texts: Sequence[str],
    spans: Sequence[Spans],
    cache: VectorCache,
    progress: Progress | None = None,
) -> tuple[Vectors, int, Vectors, list[str]]:
    """Vectors of ``texts`` (the passages as the model sees them), how many were new, the sentence
    vectors, and the key each sentence vector is reused under by the next build.

    ``spans`` are each passage's sentences in its own text; the sentence vectors come
    back in that order, all passages' sentences one after another.
    """
    if mode == SEPARATE:
        vectors, embedded = embed_with_cache(embedder, texts, cache, progress)
        sentence_texts = [p.text[s:e] for p, own in zip(passages, spans, strict=True) for s, e in own]
        sentence_vectors, _ = embed_with_cache(embedder, sentence_texts, cache)
        return vectors, embedded, sentence_vectors, [text_key(t) for t in sentence_texts]
    if mode != PASSAGE_TOKENS:
        raise ModelError(f"unknown way of embedding sentences {mode!r}: choose {' or '.join(MODES)}")
    return _embed_in_one_pass(embedder, passages, texts, spans, cache, progress)


def _embed_in_one_pass(
    embedder: Embedder,
    passages: Sequence[Passage],
    texts: Sequence[str],
    spans: Sequence[Spans],
    cache: VectorCache,
    progress: Progress | None,
) -> tuple[Vectors, int, Vectors, list[str]]:
    # The sentence spans in the text the model sees (a title may come before the passage).
    shifted = [
        [(s + len(t) - len(p.text), e + len(t) - len(p.text)) for s, e in own]
        for p, t, own in zip(passages, texts, spans, strict=True)
    ]
    keys = [text_key(t) for t in texts]
    sentence_keys = [[sentence_key(t, s, e) for s, e in own] for t, own in zip(texts, shifted, strict=True)]
    known = cache.get(keys + [k for own in sentence_keys for k in own])
    todo = {k: i for i, k in enumerate(keys) if k not in known or any(s not in known for s in sentence_keys[i])}
    missing = list(todo.values())
    if progress:
        progress(0, len(missing))
    alone_total = 0
    for start in range(0, len(missing), EMBED_CHUNK):
        chunk = missing[start : start + EMBED_CHUNK]
        vectors, pooled = embedder.embed_with_spans([texts[i] for i in chunk], [shifted[i] for i in chunk])
        cut = [(n, j) for n, rows in enumerate(pooled) for j in range(len(rows)) if np.isnan(rows[j, 0])]
        if cut:  # sentences beyond the model's window: embedded as texts of their own
            alone = embedder.embed_batch([passages[chunk[n]].text[slice(*spans[chunk[n]][j])] for n, j in cut])
            for (n, j), vector in zip(cut, alone, strict=True):
                pooled[n][j] = vector
            alone_total += len(cut)
        new_keys = [keys[i] for i in chunk] + [k for i in chunk for k in sentence_keys[i]]
        cache.put(new_keys, np.vstack([vectors, *pooled]).astype(np.float32, copy=False))
        known.update(zip(new_keys, [*vectors, *(v for rows in pooled for v in rows)], strict=True))
        if progress:
            progress(start + len(chunk), len(missing))
    log.info(
        "%d passages embedded with their %d sentences in one pass; %d sentences past the window embedded alone",
        len(missing),
        sum(len(sentence_keys[i]) for i in missing),
        alone_total,
    )
    dimension = next(iter(known.values())).shape[0] if known else 0
    flat_keys = [k for own in sentence_keys for k in own]
    sentence_vectors = np.vstack([known[k] for k in flat_keys]) if flat_keys else np.zeros((0, dimension), np.float32)
    vectors = np.vstack([known[k] for k in keys]).astype(np.float32, copy=False)
    return vectors, len(missing), sentence_vectors, flat_keys


def embed_with_cache(
    embedder: Embedder, texts: Sequence[str], cache: VectorCache, progress: Progress | None = None
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

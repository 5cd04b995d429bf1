"""What every store writes for a build, made the same way for both: documents → passages → vectors.

:func:`prepare` chunks the documents and embeds their passages and sentences, reusing what the
engine already holds (:class:`VectorSource`: the index folder's embedding cache, or the vectors of
a database's kept builds). How the result becomes a live build is :mod:`qa.index.lifecycle`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from qa.embedding.base import Embedder, Vectors
from qa.embedding.identity import ModelIdentity
from qa.files import code_digest
from qa.index.sentence_vectors import Progress as Progress  # re-exported: callers import it here
from qa.index.sentence_vectors import VectorCache, embed_passages
from qa.ingest.chunking import Chunker, ChunkerConfig, Passage
from qa.ingest.documents import Document, Skipped
from qa.ingest.sentences import split_sentences

log = logging.getLogger(__name__)

#: The modules whose code decides passage boundaries besides a document's text (see :func:`chunker_key`).
_CHUNKING_MODULES = ("qa.text", "qa.ingest.cleaning", "qa.ingest.chunking", "qa.ingest.sentences")


@dataclass(frozen=True)
class BuildReport:
    """What a build made: the new build's id, its counts and how long it took."""

    build_id: str
    documents: int
    passages: int
    seconds: float
    #: Passages whose vectors were computed by this build; the rest came from the cache.
    embedded: int = 0
    #: Files of the corpus that were not read, with the reason (also in the manifest).
    skipped: tuple[Skipped, ...] = ()


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
    identity: ModelIdentity | None = None,
) -> Prepared:
    """Chunk every document and embed its passages and their sentences, reusing what ``cache`` holds.

    ``identity`` is the embedder's identity when the caller has it already (it embeds a probe).
    """
    identity = identity if identity is not None else embedder.identity()
    chunker = Chunker(config, window=embedder)
    passages, texts = chunk_with_cache(chunker, documents, cache, chunker_key(config, identity.to_json()))
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
    digest.update(code_digest(*_CHUNKING_MODULES).encode())
    return digest.hexdigest()[:16]


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

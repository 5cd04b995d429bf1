"""Haystack 2 on a BEIR-like corpus, for scripts/bench_peers.py: runs in its own venv, never imported by qa.

    python haystack_runner.py build --store faiss --docs docs.jsonl --model DIR --index OUT
    python haystack_runner.py query --store faiss --queries queries.jsonl --model DIR --index OUT --k 10

build   embeds every document with ``SentenceTransformersDocumentEmbedder`` (the model's own
        256-word-piece truncation) and saves a queryable index: ``--store faiss`` an exact
        inner-product FAISS index (``IndexFlatIP``; the vectors are unit length, so cosine)
        beside the document ids; ``--store memory`` Haystack's ``InMemoryDocumentStore``
        (cosine) written with ``save_to_disk``. Prints one JSON line.
query   loads the saved index and the model in this new process, answers the first ``--warm``
        questions untimed, then times each question in-process (``SentenceTransformersTextEmbedder``
        then the FAISS search or ``InMemoryEmbeddingRetriever``), one at a time. Prints one JSON
        line: per-question seconds and the ranked document ids.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from runner import main, read_jsonl, timed_queries

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")


def build(args: argparse.Namespace) -> dict[str, Any]:
    from haystack import Document
    from haystack.utils import ComponentDevice
    from haystack_integrations.components.embedders.sentence_transformers import SentenceTransformersDocumentEmbedder

    documents = [Document(id=d["id"], content=d["text"]) for d in read_jsonl(args.docs)]
    embedder = SentenceTransformersDocumentEmbedder(
        model=str(args.model), device=ComponentDevice.from_str("cpu"), progress_bar=False
    )
    embedder.warm_up()
    embedded = embedder.run(documents=documents)["documents"]
    args.index.mkdir(parents=True, exist_ok=True)
    if args.store == "faiss":
        import faiss
        import numpy as np

        vectors = np.asarray([d.embedding for d in embedded], dtype=np.float32)
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        faiss.write_index(index, str(args.index / "vectors.faiss"))
        (args.index / "ids.json").write_text(json.dumps([d.id for d in embedded]))
    else:
        from haystack.document_stores.in_memory import InMemoryDocumentStore

        store = InMemoryDocumentStore(embedding_similarity_function="cosine")
        store.write_documents(embedded)
        store.save_to_disk(str(args.index / "store.json"))
    return {"documents": len(embedded), "max_length": max_seq_length(embedder)}


def max_seq_length(embedder: Any) -> int | None:
    backend = getattr(embedder, "embedding_backend", None)
    model = getattr(backend, "model", None)
    return getattr(model, "max_seq_length", None)


def query(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    from haystack.utils import ComponentDevice
    from haystack_integrations.components.embedders.sentence_transformers import SentenceTransformersTextEmbedder

    embedder = SentenceTransformersTextEmbedder(
        model=str(args.model), device=ComponentDevice.from_str("cpu"), progress_bar=False
    )
    embedder.warm_up()
    if args.store == "faiss":
        import faiss
        import numpy as np

        index = faiss.read_index(str(args.index / "vectors.faiss"))
        ids = json.loads((args.index / "ids.json").read_text())

        def search(vector: list[float]) -> list[str]:
            _, found = index.search(np.asarray([vector], dtype=np.float32), args.k)
            return [ids[i] for i in found[0] if i >= 0]

    else:
        from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
        from haystack.document_stores.in_memory import InMemoryDocumentStore

        store = InMemoryDocumentStore.load_from_disk(str(args.index / "store.json"))
        retriever = InMemoryEmbeddingRetriever(document_store=store, top_k=args.k)

        def search(vector: list[float]) -> list[str]:
            return [d.id for d in retriever.run(query_embedding=vector)["documents"]]

    load_s = time.perf_counter() - t0
    return timed_queries(args, load_s, lambda text: search(embedder.run(text=text)["embedding"]))


if __name__ == "__main__":
    main(__doc__, "store", ["faiss", "memory"], build, query)

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
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


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
    questions = read_jsonl(args.queries)
    for q in questions[: args.warm]:
        search(embedder.run(text=q["text"])["embedding"])
    ranked: dict[str, list[str]] = {}
    seconds: list[float] = []
    for q in questions:
        t = time.perf_counter()
        ranked[q["id"]] = search(embedder.run(text=q["text"])["embedding"])
        seconds.append(time.perf_counter() - t)
    return {"load_s": load_s, "seconds": seconds, "ranked": ranked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "query"])
    parser.add_argument("--store", choices=["faiss", "memory"], required=True)
    parser.add_argument("--docs", type=Path)
    parser.add_argument("--queries", type=Path)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--warm", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(build(args) if args.command == "build" else query(args)), flush=True)


if __name__ == "__main__":
    main()

"""The peer that scripts/bench.py measures qa against: one request, one encode.

What a FastAPI tutorial builds over the same model and the same index: each ``GET /ask``
calls ``SentenceTransformer.encode`` for its question (no batching, no dedicated
thread: FastAPI runs the sync route on its thread pool), searches the build's own
FAISS file and returns the passages from its SQLite file. No hybrid search, highlights
or grouping, so it does less per request than qa.

    QA_BASELINE_INDEX=index/<build> uvicorn --app-dir scripts baseline_app:app --port 8001

``QA_BASELINE_TORCH_THREADS`` sets torch's intra-op threads (default: torch's own
default). FAISS searches on one OpenMP thread, as qa's store does: left at its default
it spends about 16 ms per single-query search waking threads on this 2-core machine,
and the comparison would measure that instead of the serving design.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from fastapi import FastAPI
from sentence_transformers import SentenceTransformer

from qa.embedding.base import bundled_model_path

BUILD = Path(os.environ["QA_BASELINE_INDEX"])
if os.environ.get("QA_BASELINE_TORCH_THREADS"):
    import torch

    torch.set_num_threads(int(os.environ["QA_BASELINE_TORCH_THREADS"]))
faiss.omp_set_num_threads(1)

model = SentenceTransformer(os.environ.get("QA_MODEL") or str(bundled_model_path()), device="cpu")
vectors = faiss.read_index(str(BUILD / "vectors.faiss"))
database = sqlite3.connect(BUILD / "passages.sqlite", check_same_thread=False)
app = FastAPI()


@app.get("/readyz")
def readyz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/ask")
def ask(q: str, k: int = 5) -> dict[str, Any]:
    query = model.encode([q], normalize_embeddings=True, convert_to_numpy=True)
    scores, ids = vectors.search(np.ascontiguousarray(query, dtype=np.float32), k)
    results = []
    for score, rowid in zip(scores[0], ids[0], strict=True):
        row = database.execute(
            "SELECT passage_id, doc_id, start, end, text FROM passages WHERE rowid = ?", (int(rowid),)
        ).fetchone()
        results.append(
            {
                "passage_id": row[0],
                "doc_id": row[1],
                "start": row[2],
                "end": row[3],
                "text": row[4],
                "score": float(score),
            }
        )
    return {"question": q, "results": results}

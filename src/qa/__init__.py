"""qa: ranked, verbatim, cited passages from a folder of articles.

The public surface is listed in ``__all__``; everything else is internal.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qa")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

from qa.citations.cite import Citation, DocumentSummary, DocumentView, PassageView, format_citation
from qa.citations.formats import bibtex_entry, csl_item, markdown_report
from qa.citations.verify import Verifier, VerifyReport, extract_quotes
from qa.config import Settings
from qa.embedding.base import Embedder, SentenceTransformerEmbedder
from qa.embedding.onnx import OnnxEmbedder, export_model, make_encoder
from qa.errors import (
    CorpusError,
    DocumentNotFoundError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexStoreError,
    InvalidQueryError,
    ModelError,
    NotFoundError,
    PassageNotFoundError,
    QAError,
    RollbackError,
)
from qa.index.pipeline import BuildReport, build_index, rollback, stale_reason
from qa.index.store import Index
from qa.ingest.chunking import Chunker, ChunkerConfig, Passage
from qa.ingest.documents import Document, load_corpus
from qa.search.models import Answer, Result
from qa.search.retrieval import Searcher

__all__ = [
    "Answer",
    "BuildReport",
    "Chunker",
    "ChunkerConfig",
    "Citation",
    "CorpusError",
    "Document",
    "DocumentNotFoundError",
    "DocumentSummary",
    "DocumentView",
    "Embedder",
    "Index",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexStoreError",
    "InvalidQueryError",
    "ModelError",
    "NotFoundError",
    "OnnxEmbedder",
    "Passage",
    "PassageNotFoundError",
    "PassageView",
    "QAError",
    "Result",
    "RollbackError",
    "Searcher",
    "SentenceTransformerEmbedder",
    "Settings",
    "Verifier",
    "VerifyReport",
    "__version__",
    "bibtex_entry",
    "build_index",
    "csl_item",
    "export_model",
    "extract_quotes",
    "format_citation",
    "load_corpus",
    "make_encoder",
    "markdown_report",
    "rollback",
    "stale_reason",
]

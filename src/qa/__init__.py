"""qa: ranked, verbatim, cited passages from a folder of articles.

The public surface is ``__all__``: what a program that uses qa as a library calls. Build an index
(:func:`build_index`, :func:`stale_reason`, :func:`rollback`) with an embedder from
:func:`make_encoder`, open it (:meth:`EmbeddedStore.open`, checked against a :class:`BuildIdentity`),
ask it (:class:`Searcher`), cite what it returns (:func:`resolve_passage`, :func:`csl_item`,
:func:`bibtex_entry`, :func:`markdown_report`) and check quotes against it (:class:`Verifier`);
:class:`Settings` holds the configuration and every error derives from :class:`QAError`.
:class:`Service` wires all of it from the settings, as the server and the CLI do. Everything else
is internal and imported from its own module.
"""

from __future__ import annotations

from qa.citations.cite import Citation, PassageView, resolve_passage
from qa.citations.formats import bibtex_entry, csl_item, markdown_report
from qa.citations.verify import Verifier, VerifyReport
from qa.config import Settings
from qa.embedding.base import Embedder
from qa.embedding.factory import make_encoder
from qa.environment import package_version
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
from qa.index.embedded.store import EmbeddedStore
from qa.index.location import build_index, rollback, stale_reason
from qa.index.manifest import BuildIdentity
from qa.index.prepare import BuildReport
from qa.ingest.chunking import ChunkerConfig
from qa.search.models import Answer, Result
from qa.search.retrieval import Searcher
from qa.service import Service

#: The installed version of qa ("0.0.0" when running from a source tree that was never installed).
__version__ = package_version("qa", default="0.0.0")

__all__ = [
    "Answer",
    "BuildIdentity",
    "BuildReport",
    "ChunkerConfig",
    "Citation",
    "CorpusError",
    "DocumentNotFoundError",
    "EmbeddedStore",
    "Embedder",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexStoreError",
    "InvalidQueryError",
    "ModelError",
    "NotFoundError",
    "PassageNotFoundError",
    "PassageView",
    "QAError",
    "Result",
    "RollbackError",
    "Searcher",
    "Service",
    "Settings",
    "Verifier",
    "VerifyReport",
    "__version__",
    "bibtex_entry",
    "build_index",
    "csl_item",
    "make_encoder",
    "markdown_report",
    "resolve_passage",
    "rollback",
    "stale_reason",
]

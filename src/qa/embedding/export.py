"""Export a sentence-transformers model to ONNX (fp32, and int8 weights): the half that needs torch.

:func:`export_model` (the ``qa export-onnx`` command) exports the model's transformer
with torch's own ONNX exporter, with mean (or CLS) pooling and L2 normalisation in the
graph, then quantises the weights to int8 with onnxruntime's dynamic quantisation (per
channel; activations stay float and are quantised per call). It writes both files and a
``meta.json`` into a ``qa-onnx`` folder beside the model (or, where that folder cannot
be written, into ``~/.cache/qa/onnx/``). Nothing is downloaded: the weights, the
tokenizer and the exporter are all local. The meta records what was exported from
what (weights sha256, versions, opset, quantisation settings, each output file's
sha256) and the full-precision model's own identity and probe vector.

Only the MatMul weights are quantised, per channel: quantising the embedding table too,
or per tensor, cost more retrieval quality (see :data:`QUANTIZATION`).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from qa.embedding.base import SentenceTransformerEmbedder, model_identity, offline_hub
from qa.embedding.identity import PROBE_TEXT
from qa.embedding.onnx import (
    EXPORT_FOLDER,
    EXPORT_VERSION,
    FILES,
    META,
    describe_model,
    export_folder,
    model_folder,
    read_export,
)
from qa.environment import package_version
from qa.files import sha256_file

log = logging.getLogger(__name__)

OPSET = 17
#: Measured on SciFact test, dense nDCG@10 against 0.6802 at full precision (docs/benchmarks.md):
#: per tensor 0.959 mean cosine; per channel 0.6742; per channel with the embedding table
#: left in fp32 (only MatMul weights quantised) 0.6766, within the 0.005 the issue allows.
#: Recorded in the meta as it is, and passed as it is to ``quantize_dynamic``.
QUANTIZATION: dict[str, Any] = {
    "method": "onnxruntime.quantization.quantize_dynamic",
    "weight_type": "QInt8",
    "per_channel": True,
    "op_types_to_quantize": ["MatMul"],
}
#: Packages whose versions an export records.
TOOLS = ("torch", "transformers", "onnx", "onnxruntime")


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
    offline_hub()
    pooling, max_seq_length, transformer_dir = describe_model(model_dir)
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
            "tools": {name: package_version(name) for name in TOOLS},
            "opset": OPSET,
            "quantization": QUANTIZATION,
            "files": {
                name: {"bytes": (tmp / name).stat().st_size, "sha256": sha256_file(tmp / name)}
                for name in FILES.values()
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
            # The token embeddings too: a build pools them over each sentence (qa.embedding.spans).
            return torch.nn.functional.normalize(pooled, p=2, dim=1), hidden

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
            output_names=["sentence_embedding", "token_embeddings"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "token_embeddings"]}
            | {"sentence_embedding": {0: "batch"}},
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
            str(source),
            str(target),
            weight_type=QuantType[QUANTIZATION["weight_type"]],
            per_channel=QUANTIZATION["per_channel"],
            op_types_to_quantize=QUANTIZATION["op_types_to_quantize"],
        )
    finally:
        root.removeFilter(advice)


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _weights_digest(transformer_dir: Path) -> str:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (transformer_dir / name).is_file():
            return sha256_file(transformer_dir / name)
    return "unknown"


__all__ = ["export_model"]

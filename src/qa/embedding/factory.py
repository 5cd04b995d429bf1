"""The embedder an ``Encoder`` setting names: torch (sentence-transformers), onnx (fp32) or onnx-int8."""

from __future__ import annotations

import logging

from qa.config import Encoder
from qa.embedding.base import DEFAULT_BATCH_SIZE, SentenceTransformerEmbedder
from qa.embedding.onnx import OnnxEmbedder, describe_model, model_folder
from qa.errors import ModelError

log = logging.getLogger(__name__)


def make_encoder(
    model: str | None, encoder: Encoder | str, batch_size: int = DEFAULT_BATCH_SIZE, threads: int | None = None
) -> SentenceTransformerEmbedder | OnnxEmbedder:
    """The embedder ``encoder`` names: ``torch`` (sentence-transformers), ``onnx`` (fp32) or ``onnx-int8``.

    ``threads`` is the model's intra-op threads; ``None`` leaves each runtime's default
    (torch: one per core; the ONNX encoder: :data:`~qa.embedding.base.DEFAULT_THREADS`).
    A model the export cannot handle (not a local folder, or modules other than
    Transformer, mean or CLS pooling and Normalize) is run by sentence-transformers
    instead, with a warning: ``onnx`` is the default, and a ``QA_MODEL`` that worked
    before must keep working.
    """
    if encoder in ("onnx", "onnx-int8"):
        try:
            describe_model(model_folder(model))
        except ModelError as exc:
            log.warning("%s; sentence-transformers encodes questions instead", exc)
            encoder = "torch"
    if encoder == "torch":
        return SentenceTransformerEmbedder(model, batch_size, threads)
    if encoder == "onnx":
        return OnnxEmbedder(model, "fp32", batch_size, threads)
    if encoder == "onnx-int8":
        return OnnxEmbedder(model, "int8", batch_size, threads)
    raise ModelError(f"unknown encoder {encoder!r}: choose torch, onnx or onnx-int8")


__all__ = ["make_encoder"]

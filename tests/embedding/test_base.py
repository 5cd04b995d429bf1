"""The embedder protocol: every embedder takes ``threads=`` and reports its ``identity()``; no special cases."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import qa
from qa.embedding.base import (
    OFFLINE_ENVIRONMENT,
    SentenceTransformerEmbedder,
    model_identity,
    offline_hub,
    probe_identity,
)
from qa.embedding.batching import MicroBatcher
from qa.embedding.export import QUANTIZATION
from qa.embedding.factory import make_encoder
from qa.embedding.identity import PROBE_DIMS, ModelIdentity
from qa.embedding.onnx import OnnxEmbedder
from qa.environment import package_version
from tests.helpers import FakeEmbedder

SRC = Path(qa.__file__).parent


@pytest.mark.parametrize("cls", [SentenceTransformerEmbedder, OnnxEmbedder])
def test_both_embedders_take_threads_in_their_constructor(cls: type) -> None:
    assert "threads" in inspect.signature(cls).parameters
    embedder = cls(threads=3)
    try:
        assert embedder.threads == 3
    finally:
        embedder.close()


@pytest.mark.parametrize("encoder", ["torch", "onnx", "onnx-int8"])
def test_the_factory_passes_threads_to_every_encoder(encoder: str) -> None:
    embedder = make_encoder(None, encoder, threads=2)
    try:
        assert embedder.threads == 2
    finally:
        embedder.close()


def test_threads_default_to_each_runtimes_own() -> None:
    torch, onnx = make_encoder(None, "torch"), make_encoder(None, "onnx")
    try:
        assert torch.threads is None  # torch's default: every core, as builds were measured
        assert onnx.threads == 1
    finally:
        torch.close()
        onnx.close()


def test_no_source_file_special_cases_an_embedder_class() -> None:
    """Threads go through constructors: nothing asks which embedder it holds."""
    offenders = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
                names = ast.unparse(node.args[1]) if len(node.args) == 2 else ""
                if "Embedder" in names:
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == []


def test_identity_is_typed_and_is_what_the_manifest_records() -> None:
    fake = FakeEmbedder()
    identity = fake.identity()
    assert isinstance(identity, ModelIdentity)
    assert identity.name == "fake-hashing"
    assert identity.dimension == fake.dimension
    assert len(identity.probe) == PROBE_DIMS
    assert model_identity(fake) == identity.to_json()
    assert ModelIdentity.from_json(model_identity(fake)) == identity
    assert "encoder" not in model_identity(fake)  # builds before the ONNX path wrote none


def test_two_models_have_different_identities() -> None:
    one, other = probe_identity(FakeEmbedder()), probe_identity(FakeEmbedder(seed="b"))
    assert one.same_vectors(one)
    assert not one.same_vectors(other)


def test_the_batcher_reports_its_models_identity() -> None:
    fake = FakeEmbedder()
    batcher = MicroBatcher(fake)
    try:
        assert batcher.identity() == fake.identity()
    finally:
        batcher.close()


@pytest.mark.model
def test_the_real_models_identity_is_computed_once(real_embedder: SentenceTransformerEmbedder) -> None:
    first = real_embedder.identity()
    assert real_embedder.identity() is first
    assert first.max_seq_length == real_embedder.max_seq_length
    assert first.encoder is None


def test_the_quantisation_recorded_is_the_one_applied() -> None:
    """One constant: ``_quantize`` reads its arguments from the QUANTIZATION the meta records."""
    import qa.embedding.export as export

    source = inspect.getsource(export._quantize)
    assert "QUANTIZATION[" in source
    assert "per_channel=True" not in source
    assert QUANTIZATION["weight_type"] == "QInt8"


def test_the_offline_switches_are_set_in_one_place(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OFFLINE_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    offline_hub()
    import os

    assert {name: os.environ[name] for name in OFFLINE_ENVIRONMENT} == OFFLINE_ENVIRONMENT
    setters = [
        str(path.relative_to(SRC)) for path in SRC.rglob("*.py") if '"HF_HUB_OFFLINE"' in path.read_text("utf-8")
    ]
    assert setters == ["environment.py"]


def test_the_offline_switches_leave_a_choice_already_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    offline_hub()
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "0"


def test_package_versions_are_looked_up_in_one_helper() -> None:
    assert package_version("numpy") != "unknown"
    assert package_version("no-such-package-qa-test") == "unknown"

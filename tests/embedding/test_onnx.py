"""The ONNX export and encoders, against the real bundled model (the export is made once, locally)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import qa.embedding.export
import qa.embedding.onnx
from qa.config import Settings
from qa.embedding.base import SentenceTransformerEmbedder, model_identity
from qa.embedding.export import export_model
from qa.embedding.factory import make_encoder
from qa.embedding.onnx import FILES, META, OnnxEmbedder, model_folder
from qa.errors import ModelError
from qa.evaluation.questions import evaluate_questions, load_questions
from qa.files import sha256_file
from qa.index.embedded.store import EmbeddedStore
from qa.index.location import stale_reason
from qa.index.manifest import BuildIdentity
from qa.ingest.chunking import ChunkerConfig
from qa.search.retrieval import Searcher
from tests.helpers import QUESTIONS, SEEDS

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def exported() -> tuple[Path, dict[str, object]]:
    return export_model()


@pytest.fixture(scope="module")
def int8(exported: object) -> Iterator[OnnxEmbedder]:
    embedder = OnnxEmbedder(precision="int8")
    embedder.load()
    yield embedder
    embedder.close()


def _questions() -> list[str]:
    return [q.question for q in load_questions(QUESTIONS)]


def test_the_export_lives_beside_the_model_and_records_what_it_was_made_from(
    exported: tuple[Path, dict[str, object]],
) -> None:
    folder, meta = exported
    assert folder == model_folder(None) / "qa-onnx"
    files = meta["files"]
    assert isinstance(files, dict)
    assert set(files) == set(FILES.values())
    for name, info in files.items():
        assert (folder / name).stat().st_size == info["bytes"]
        assert sha256_file(folder / name) == info["sha256"]
    recorded = json.loads((folder / META).read_text())
    assert recorded["source"]["pooling"] == "mean"
    assert recorded["source"]["max_seq_length"] == 256
    assert recorded["quantization"]["per_channel"] is True
    assert set(recorded["tools"]) == {"torch", "transformers", "onnx", "onnxruntime"}
    # Asking again reuses it: the same files, not a new export.
    again_folder, again = export_model()
    assert again_folder == folder
    assert again["files"] == files


def test_exporting_again_gives_byte_identical_files(
    exported: tuple[Path, dict[str, object]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, meta = exported
    for module in (qa.embedding.onnx, qa.embedding.export):  # the reader's and the writer's
        monkeypatch.setattr(module, "export_folder", lambda model_dir: tmp_path / "qa-onnx")
    folder, fresh = export_model(force=True)
    assert folder == tmp_path / "qa-onnx"
    assert fresh["files"] == meta["files"]


def test_int8_vectors_stay_close_to_full_precision_and_fp32_onnx_matches_it(
    int8: OnnxEmbedder, real_embedder: SentenceTransformerEmbedder
) -> None:
    texts = _questions() + [p.read_text(encoding="utf-8")[:4000] for p in sorted(SEEDS.iterdir())]
    reference = real_embedder.embed_batch(texts)
    quantised = int8.embed_batch(texts)
    assert quantised.dtype == np.float32
    assert quantised.shape == reference.shape
    np.testing.assert_allclose(np.linalg.norm(quantised, axis=1), 1.0, atol=1e-5)
    cosines = (quantised * reference).sum(axis=1)
    assert cosines.min() >= 0.97, cosines
    assert cosines.mean() >= 0.985, cosines
    fp32 = OnnxEmbedder(precision="fp32")
    try:
        # Long articles too: truncation at the model's 256 tokens matches sentence-transformers'.
        assert (fp32.embed_batch(texts) * reference).sum(axis=1).min() >= 0.9999
    finally:
        fp32.close()
    assert int8.count_tokens(texts) == real_embedder.count_tokens(texts)
    assert int8.max_seq_length == real_embedder.max_seq_length
    assert int8.dimension == real_embedder.dimension
    # One question alone or in a batch: the same vector within int8 noise.
    alone = int8.embed_batch(texts[:1])[0]
    assert float(alone @ quantised[0]) >= 0.99


def test_an_index_built_by_sentence_transformers_opens_and_answers_with_int8_questions(
    int8: OnnxEmbedder, real_index_dir: Path
) -> None:
    identity = model_identity(int8)
    assert identity["encoder"] == "onnx-int8"
    config = ChunkerConfig.from_settings(Settings())
    index = EmbeddedStore.open(real_index_dir, BuildIdentity.of(int8, config))
    try:
        report = evaluate_questions(Searcher(index, int8), load_questions(QUESTIONS), ks=(1, 3, 5))
    finally:
        index.close()
    # The same bar as the full-precision questions (docs/benchmarks.md: 20 of 20 in the top 3).
    assert report.recall[3] >= 0.95, report.ranks
    assert report.abstention_recall == 1.0


def test_an_export_whose_vectors_drift_from_its_model_is_refused(
    exported: tuple[Path, dict[str, object]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = exported
    copy = tmp_path / "qa-onnx"
    shutil.copytree(folder, copy)
    meta = json.loads((copy / META).read_text())
    meta["probe_vector"] = [-x for x in meta["probe_vector"]]  # another model's vectors
    (copy / META).write_text(json.dumps(meta))
    monkeypatch.setattr(qa.embedding.onnx, "export_folder", lambda model_dir: copy)
    embedder = OnnxEmbedder(export_if_missing=False)
    try:
        with pytest.raises(ModelError, match="probe cosine"):
            embedder.load()
    finally:
        embedder.close()


def test_a_missing_export_is_an_error_naming_the_command_when_not_made_on_demand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qa.embedding.onnx, "export_folder", lambda model_dir: tmp_path / "none")
    embedder = OnnxEmbedder(export_if_missing=False)
    try:
        with pytest.raises(ModelError, match="qa export-onnx"):
            embedder.load()
    finally:
        embedder.close()


def test_a_model_the_export_cannot_handle_is_run_by_sentence_transformers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    for model in (str(tmp_path), "some-hub-name/not-a-folder"):
        embedder = make_encoder(model, "onnx")
        try:
            assert isinstance(embedder, SentenceTransformerEmbedder)
        finally:
            embedder.close()
    assert "Dense" in caplog.text
    assert "sentence-transformers encodes questions instead" in caplog.text


def test_unknown_encoders_and_non_sentence_transformers_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown encoder"):
        make_encoder(None, "tensorrt")
    with pytest.raises(ModelError, match=r"modules\.json"):
        model_folder(str(tmp_path))


def test_a_build_embedded_by_another_encoder_is_stale(
    int8: OnnxEmbedder, real_embedder: SentenceTransformerEmbedder, real_index_dir: Path
) -> None:
    config = ChunkerConfig.from_settings(Settings())
    assert stale_reason(SEEDS, real_index_dir, real_embedder, config) is None
    reason = stale_reason(SEEDS, real_index_dir, int8, config)
    assert reason is not None
    assert "torch encoder, settings say onnx-int8" in reason


@pytest.mark.parametrize("encoder", [None, "onnx-int8"])
def test_the_service_answers_with_the_onnx_query_encoders(
    exported: object, real_index_dir: Path, encoder: str | None
) -> None:
    from fastapi.testclient import TestClient

    from qa.server.app import create_app

    chosen = {"query_encoder": encoder} if encoder else {}
    settings = Settings(index_dir=real_index_dir, reload_interval=0, **chosen)
    assert settings.query_encoder == (encoder or "onnx")  # the fp32 export is the default
    with TestClient(create_app(settings)) as client:
        response = client.get("/ask", params={"q": "Who proposed creating an Asian NATO?", "k": 3})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["grounded"] is True
        assert any("Ishiba" in r["text"] for r in body["results"])
        model = client.app.state.qa.service.query_encoder
        assert isinstance(model, OnnxEmbedder)
        assert model.encoder == settings.query_encoder

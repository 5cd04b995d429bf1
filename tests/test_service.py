"""qa.service: the one place that wires settings → encoders → chunker → identity → store → searcher."""

from __future__ import annotations

import ast
import threading
from pathlib import Path
from typing import Any

import pytest

import qa
import qa.service as service_module
from qa.config import Settings
from qa.embedding.base import BUILD_THREADS
from qa.errors import IndexMismatchError, IndexNotFoundError, ModelError
from qa.index.manifest import BuildIdentity
from qa.ingest.chunking import ChunkerConfig
from qa.service import Service, open_searcher, open_store
from tests.helpers import FakeEmbedder

SRC = Path(qa.__file__).parent


class Closable(FakeEmbedder):
    def __init__(self, encoder: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[Closable]:
    """Every encoder the service makes, a fake that records its setting."""
    encoders: list[Closable] = []

    def make(model: str | None, encoder: str, batch_size: int = 32, threads: int | None = None) -> Closable:
        encoders.append(Closable(encoder))
        encoders[-1].threads = threads  # type: ignore[attr-defined]
        return encoders[-1]

    monkeypatch.setattr(service_module, "make_encoder", make)
    return encoders


def test_from_settings_makes_the_query_encoder_on_first_use(settings: Settings, made: list[Any]) -> None:
    chosen = settings.model_copy(update={"inference_threads": 3, "max_tokens": 64})
    with Service.from_settings(chosen) as service:
        assert made == []  # a build, say, never makes the question encoder
        assert service.chunker == ChunkerConfig.from_settings(chosen)
        assert service.chunker.max_tokens == 64
        assert service.query_encoder is service.query_encoder
        assert [e.encoder for e in made] == ["onnx"]
        assert made[0].threads is None  # each runtime's default outside `qa serve`
    assert made[0].closed == 1


def test_serving_gives_the_query_encoder_the_inference_threads(settings: Settings, made: list[Any]) -> None:
    chosen = settings.model_copy(update={"inference_threads": 3})
    with Service.from_settings(chosen, serving=True) as service:
        assert service.query_encoder.threads == 3  # type: ignore[attr-defined]


def test_the_passage_encoder_is_made_when_needed_on_every_core(settings: Settings, made: list[Any]) -> None:
    with Service.from_settings(settings) as service:
        assert service.passage_encoder is service.passage_encoder
        assert [e.encoder for e in made] == ["onnx"]  # the fp32 export: the same vectors as torch, faster
        assert made[0].threads == BUILD_THREADS  # a build is a batch job
        assert service.query_encoder is not service.passage_encoder
        assert [e.encoder for e in made] == ["onnx", "onnx"]
        assert made[1].threads is None  # questions keep the runtime's default outside `qa serve`
    assert [e.closed for e in made] == [1, 1]
    made.clear()
    chosen = settings.model_copy(update={"passage_encoder": "torch"})
    with Service.from_settings(chosen) as service:
        assert service.passage_encoder.encoder == "torch"  # type: ignore[attr-defined]
    assert [e.closed for e in made] == [1]


def test_an_encoder_handed_in_does_both_jobs_and_is_not_closed(settings: Settings, made: list[Any]) -> None:
    fake = Closable("fake")
    with Service.from_settings(settings, query_encoder=fake) as service:
        assert service.passage_encoder is fake
    assert made == []
    assert fake.closed == 0


def test_the_expected_identity_is_the_query_encoders_and_computed_once(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    service = Service.from_settings(settings, query_encoder=fake_embedder)
    first = service.expected
    calls = fake_embedder.embedded
    assert service.expected is first
    assert fake_embedder.embedded == calls
    assert first == BuildIdentity.of(fake_embedder, ChunkerConfig.from_settings(settings))


class ThreadRecording(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []

    def embed_batch(self, texts: Any) -> Any:
        self.threads.append(threading.current_thread().name)
        return super().embed_batch(texts)


def test_loading_soon_computes_the_identity_on_its_own_thread_once(settings: Settings) -> None:
    fake_embedder = ThreadRecording()
    service = Service.from_settings(settings, query_encoder=fake_embedder)
    service.load_soon()
    first = service.expected  # waits for the loading thread
    calls = fake_embedder.embedded
    assert calls > 0
    assert set(fake_embedder.threads) == {"qa-model-load"}  # the probe ran on the loading thread only
    assert service.expected is first
    assert fake_embedder.embedded == calls
    assert first == BuildIdentity.of(fake_embedder, ChunkerConfig.from_settings(settings))


class Unloadable(FakeEmbedder):
    def embed_batch(self, texts: Any) -> Any:
        raise ModelError("the model cannot be loaded")


def test_a_model_that_fails_to_load_soon_raises_on_the_callers_thread(settings: Settings) -> None:
    service = Service.from_settings(settings, query_encoder=Unloadable())
    service.load_soon()
    with pytest.raises(ModelError, match="cannot be loaded"):
        _ = service.expected
    service.close()


def test_build_then_ask_answers_with_default_k(settings: Settings, fake_embedder: FakeEmbedder) -> None:
    service = Service.from_settings(settings.model_copy(update={"default_k": 2}), query_encoder=fake_embedder)
    assert service.stale_reason() is not None  # nothing built yet
    report = service.build()
    assert service.stale_reason() is None
    answer = service.ask("Why did India reject an Asian NATO?")
    assert answer.k == 2
    assert len(answer.results) == 2
    assert answer.build_id == report.build_id


def test_open_searcher_refuses_a_build_of_another_model(built: Settings, fake_embedder: FakeEmbedder) -> None:
    other = FakeEmbedder(seed="other")
    expected = BuildIdentity.of(other, ChunkerConfig.from_settings(built))
    with pytest.raises(IndexMismatchError):
        open_searcher(built.index_dir, other, expected)
    searcher = open_searcher(
        built.index_dir, fake_embedder, BuildIdentity.of(fake_embedder, ChunkerConfig.from_settings(built))
    )
    try:
        assert searcher.store.build_id == (built.index_dir / "CURRENT").read_text().strip()
    finally:
        searcher.store.close()


def test_open_store_opens_a_named_build_and_says_when_there_is_none(built: Settings, tmp_path: Path) -> None:
    build_id = (built.index_dir / "CURRENT").read_text().strip()
    index = open_store(built.index_dir, None, build_id=build_id)
    try:
        assert index.build_id == build_id
    finally:
        index.close()
    with pytest.raises(IndexNotFoundError):
        open_store(tmp_path / "nowhere", None)


def test_rollback_goes_through_the_services_identity(built: Settings, fake_embedder: FakeEmbedder) -> None:
    service = Service.from_settings(built, query_encoder=fake_embedder)
    first = (built.index_dir / "CURRENT").read_text().strip()
    (built.corpus_dir / "extra.txt").write_text("A new article about the Quad and India.\n" * 3, encoding="utf-8")
    second = service.build().build_id
    assert service.rollback() == (second, first)


def test_only_the_service_opens_a_store_or_makes_a_searcher() -> None:
    """Above the index package, stores are opened (``locate(...).open``) and searchers made in service.py alone."""
    calls = []
    for path in SRC.rglob("*.py"):
        if path.relative_to(SRC).parts[0] == "index":
            continue  # the store itself, and the rollback check below the service
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name in ("EmbeddedStore.open", "EmbeddedStore.open_build", "Searcher", "PostgresStore") or name.endswith(
                ").open"
            ):
                calls.append(f"{path.relative_to(SRC)}:{name}")
    assert sorted(calls) == ["service.py:Searcher", "service.py:locate(where).open"]

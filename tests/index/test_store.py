"""The embedded store (FAISS + SQLite): what it opens and what its own search returns."""

from __future__ import annotations

import threading

import faiss
import numpy as np
import pytest

from qa.config import Settings
from qa.index.embedded.layout import VECTORS
from qa.index.embedded.store import EmbeddedStore
from qa.index.filters import Filters
from qa.index.location import build_index
from qa.index.records import PassageRecord
from qa.index.vector_index import VectorIndexSpec
from qa.ingest.chunking import ChunkerConfig
from tests.helpers import FakeEmbedder, manifest_json, save_manifest_json
from tests.helpers import build_dir as _build_dir
from tests.helpers import open_index as _open

CONFIG = ChunkerConfig()


def _all_passages(index: EmbeddedStore) -> list[PassageRecord]:
    return [p for d in index.documents() for p in index.document_passages(d.doc_id)]


def test_a_build_opens_with_the_model_and_chunker_that_made_it(built: Settings, fake_embedder: FakeEmbedder) -> None:
    index = _open(built, fake_embedder)
    try:
        passages = _all_passages(index)
        assert index.passage_count == len(passages) == len(index.passages([p.passage_id for p in passages]))
        assert [p.position for p in passages] == list(range(1, index.passage_count + 1))
        assert index.dimension == fake_embedder.dimension
        manifest = index.manifest
        assert manifest.model.name == fake_embedder.name
        assert manifest.chunker == CONFIG.describe()
        assert manifest.documents == len(index.documents()) == 5
        assert manifest.passages == index.passage_count
        assert manifest.corpus is not None
        assert len(manifest.corpus["sha256"]) == 64
    finally:
        index.close()


def test_search_returns_nearest_passages_best_first(built: Settings, fake_embedder: FakeEmbedder) -> None:
    index = _open(built, fake_embedder)
    try:
        passages = _all_passages(index)
        target = passages[6]
        hits = index.dense(fake_embedder.embed_batch([target.text])[0], 5)
        assert (hits[0].passage_id, hits[0].doc_id, hits[0].position) == (target.passage_id, target.doc_id, 7)
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        assert len(index.dense(np.ones(fake_embedder.dimension, dtype=np.float32), 10_000)) == index.passage_count
    finally:
        index.close()


# -- every way a build on disk can be wrong, each detected at open with the fix in the message -----


def test_an_hnsw_build_records_its_parameters_and_searches_like_flat(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    build_index(settings.corpus_dir, settings.index_dir, fake_embedder, CONFIG, vector_index="hnsw")
    build = _build_dir(settings)
    recorded = manifest_json(build)["vectors"]
    assert recorded == VectorIndexSpec.hnsw(storage=recorded["storage"]).describe()
    stored = faiss.read_index(str(build / VECTORS))
    assert isinstance(faiss.downcast_index(stored.index), faiss.IndexHNSWFlat)
    index = _open(settings, fake_embedder)
    try:
        assert index.vector_spec.type == "hnsw"
        target = _all_passages(index)[6]
        query = fake_embedder.embed_batch([target.text])[0]
        hits = index.dense(query, 5)
        assert hits[0].passage_id == target.passage_id
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        # Reconstruction stays exact: search scores candidates from these vectors.
        assert index.scores([target.passage_id], query=query)[target.passage_id].cosine == pytest.approx(1.0, abs=1e-6)
        other = next(d for d in index.documents() if d.doc_id != target.doc_id)
        filtered = index.dense(query, 4, Filters(doc_ids=(other.doc_id,)))
        assert len(filtered) == min(4, other.n_passages)
        assert all(h.doc_id == other.doc_id for h in filtered)
    finally:
        index.close()


def test_a_flat_build_records_flat_and_an_old_manifest_without_the_entry_opens(
    built: Settings, fake_embedder: FakeEmbedder
) -> None:
    build = _build_dir(built)
    assert manifest_json(build)["vectors"] == {"type": "flat"}
    manifest = manifest_json(build)
    del manifest["vectors"]
    save_manifest_json(build, manifest)
    index = _open(built, fake_embedder)
    assert index.vector_spec == VectorIndexSpec()
    index.close()


def test_a_filters_allowed_passages_are_found_once_for_every_request_thread(
    built: Settings, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding a filter's passages reads every passage's document: the server's worker threads share
    the answer instead of each paying for it, and each still searches only inside it."""
    index = _open(built, fake_embedder)
    try:
        asked: list[Filters] = []
        real = index._db.allowed
        monkeypatch.setattr(index._db, "allowed", lambda f: asked.append(f) or real(f))
        doc_id = index.documents()[0].doc_id
        filters = Filters(doc_ids=(doc_id,))
        query = fake_embedder.embed_batch(["Asian NATO"])[0]
        found: list[set[str]] = []

        def search() -> None:
            hits = index.dense(query, 5, filters) + index.lexical(["nato", "india"], 5, (1.0, 1.0), filters)
            found.append({h.doc_id for h in hits})

        threads = [threading.Thread(target=search) for _ in range(3)]
        search()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert asked == [filters]
        assert found == [{doc_id}] * 4
    finally:
        index.close()

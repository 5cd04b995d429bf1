"""FAISS index types: which one a count gets, and that each searches and reconstructs as flat does."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from qa.config import Settings
from qa.errors import IndexCorruptError
from qa.index.embedded import vectors as vector_module
from qa.index.embedded.layout import VECTORS
from qa.index.embedded.vectors import (
    allowed_vectors,
    build_vector_index,
    half_scan,
    read_vectors,
    scored_exactly,
    search_vectors,
)
from qa.index.vector_index import HNSW_FP16_THRESHOLD, HNSW_THRESHOLD, HnswStorage, VectorIndexSpec, choose_vector_index
from qa.ingest.chunking import ChunkerConfig

CONFIG = ChunkerConfig()


def _unit(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


def test_the_index_type_follows_the_vector_count_and_the_setting() -> None:
    assert choose_vector_index(HNSW_THRESHOLD).type == "flat"
    large = choose_vector_index(HNSW_THRESHOLD + 1)
    assert large.type == "hnsw"
    assert large.describe() == {
        "type": "hnsw",
        "M": large.M,
        "ef_construction": large.ef_construction,
        "ef_search": large.ef_search,
        "storage": large.storage,
    }
    assert large.storage == "flat"  # float32: reconstruction exact
    assert choose_vector_index(HNSW_FP16_THRESHOLD + 1).storage == "fp16"  # bounded memory
    assert choose_vector_index(10, threshold=5).type == "hnsw"
    assert choose_vector_index(10, "hnsw").type == "hnsw"
    assert choose_vector_index(10**7, "flat").type == "flat"
    assert choose_vector_index(0, "hnsw").type == "flat"  # nothing to link
    assert Settings().vector_index == "auto"
    assert VectorIndexSpec.from_manifest(None) == VectorIndexSpec()  # builds from before the choice
    assert VectorIndexSpec.from_manifest(large.describe()) == large


def test_an_hnsw_graph_with_another_m_than_recorded_is_refused(tmp_path: Path) -> None:
    path = tmp_path / VECTORS
    faiss.write_index(build_vector_index(_unit(200), VectorIndexSpec.hnsw(M=8)), str(path))
    with pytest.raises(IndexCorruptError, match="M=8"):
        read_vectors(path, VectorIndexSpec.hnsw(M=16).describe())
    index = read_vectors(path, VectorIndexSpec.hnsw(M=8, ef_search=77).describe())
    assert faiss.downcast_index(index.index).hnsw.efSearch == 77  # set from the manifest at open


@pytest.mark.parametrize("storage", ["flat", "fp16", "sq8"])
def test_hnsw_finds_what_flat_finds_and_reconstructs_closely(storage: HnswStorage) -> None:
    vectors, queries = _unit(3000), _unit(50, seed=1)
    flat = build_vector_index(vectors, VectorIndexSpec())
    spec = VectorIndexSpec.hnsw(M=16, ef_construction=64, ef_search=64, storage=storage)
    hnsw = build_vector_index(vectors, spec)
    overlap = []
    for q in queries:
        exact = {r for r, _ in search_vectors(flat, VectorIndexSpec(), q, 10)}
        found = {r for r, _ in search_vectors(hnsw, spec, q, 10)}
        overlap.append(len(exact & found) / 10)
    assert np.mean(overlap) >= 0.9
    keys = np.array([1, 17, 3000])
    error = np.abs(hnsw.reconstruct_batch(keys) - vectors[keys - 1]).max()
    assert error == 0 if storage == "flat" else error < 1e-2


def test_a_flat_index_scanned_through_its_fp16_copy_finds_and_scores_exactly_what_flat_does() -> None:
    vectors, spec = _unit(3000, d=64), VectorIndexSpec()
    flat = build_vector_index(vectors, spec)
    assert half_scan(flat, spec) is None  # below HALF_SCAN_MIN: searched as it is
    half = half_scan(flat, spec, minimum=0)
    assert half is not None
    assert half.ntotal == flat.ntotal
    allowed = list(range(1, 3001, 7))
    for q in _unit(40, d=64, seed=1):
        for chosen in (None, allowed):
            exact = search_vectors(flat, spec, q, 10, chosen)
            found = search_vectors(flat, spec, q, 10, chosen, half)
            assert [r for r, _ in found] == [r for r, _ in exact]
            # rescored from the float32 vectors, not the fp16 copy's scores
            assert np.allclose([s for _, s in found], [s for _, s in exact], atol=1e-6)
            assert chosen is None or {r for r, _ in found} <= set(chosen)


def test_a_filter_allowing_a_large_share_walks_the_graph_and_a_small_one_is_scored_exactly() -> None:
    """Under EXACT_FILTER_LIMIT passages, the share of the collection decides: the bitmap walk is
    cheaper than scoring a large share (docs/scaling.md), exact scoring than walking for a few;
    the allowed vectors a store keeps per filter give the same hits as reading them per search."""
    hnsw = VectorIndexSpec.hnsw(M=16, ef_construction=64, ef_search=32)
    assert scored_exactly(hnsw, 60, 3000)  # 2%
    assert not scored_exactly(hnsw, 750, 3000)  # 25%
    assert not scored_exactly(hnsw, 30_000, 1_000_000)  # 3%, but over EXACT_FILTER_LIMIT
    assert not scored_exactly(VectorIndexSpec(), 60, 3000)  # flat: the bitmap rides in the scan
    index = build_vector_index(_unit(3000), hnsw)
    small = list(range(3000, 0, -50))  # any order, as a filter lists them
    kept = allowed_vectors(index, small)
    for q in _unit(5, seed=4):
        hits = search_vectors(index, hnsw, q, 10, small, exact=kept)
        assert hits == search_vectors(index, hnsw, q, 10, small)
        assert len(hits) == 10
        assert {r for r, _ in hits} <= set(small)


@pytest.mark.parametrize("limit", [0, 10**6], ids=["through-the-graph", "exact-over-allowed"])
def test_a_filtered_hnsw_search_returns_only_allowed_ids_and_k_of_them(
    monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    monkeypatch.setattr(vector_module, "EXACT_FILTER_LIMIT", limit)
    monkeypatch.setattr(vector_module, "EXACT_FILTER_SHARE", 1.0)
    vectors = _unit(3000)
    spec = VectorIndexSpec.hnsw(M=16, ef_construction=64, ef_search=32)
    index = build_vector_index(vectors, spec)
    flat = build_vector_index(vectors, VectorIndexSpec())
    rng = np.random.default_rng(3)
    for fraction in (0.5, 0.05, 0.003):  # the last: 9 allowed passages, far fewer than efSearch finds
        allowed = sorted(int(i) for i in rng.choice(np.arange(1, 3001), int(3000 * fraction), replace=False))
        for q in _unit(10, seed=2):
            k = min(8, len(allowed))
            hits = search_vectors(index, spec, q, k, allowed)
            assert len(hits) == k
            assert {r for r, _ in hits} <= set(allowed)
            exact = search_vectors(flat, VectorIndexSpec(), q, k, allowed)
            assert hits[0][0] == exact[0][0]
            scores = [s for _, s in hits]
            assert scores == sorted(scores, reverse=True)

"""Builds on disk: atomic switch, refusal of foreign or damaged indexes, pruning."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from qa.config import Settings
from qa.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from qa.index import store
from qa.index.pipeline import build_index, expected_identity, stale_reason
from qa.index.store import (
    CURRENT,
    DATABASE,
    HNSW_FP16_THRESHOLD,
    HNSW_THRESHOLD,
    MANIFEST,
    TMP_PREFIX,
    VECTORS,
    HnswStorage,
    Index,
    VectorIndexSpec,
    _read_vectors,
    build_vector_index,
    choose_vector_index,
    current_build_id,
    list_builds,
    search_vectors,
)
from qa.ingest.chunking import ChunkerConfig
from tests.helpers import FailingEmbedder, FakeEmbedder

CONFIG = ChunkerConfig()


def _open(settings: Settings, embedder: FakeEmbedder, config: ChunkerConfig = CONFIG) -> Index:
    return Index.open(settings.index_dir, expected_identity(embedder, config))


def _build_dir(settings: Settings) -> Path:
    return settings.index_dir / current_build_id(settings.index_dir)


def test_a_build_opens_with_the_model_and_chunker_that_made_it(built: Settings, fake_embedder: FakeEmbedder) -> None:
    index = _open(built, fake_embedder)
    try:
        assert index.passage_count == len(index.passages(list(range(1, index.passage_count + 1))))
        assert index.dimension == fake_embedder.dimension
        manifest = index.manifest
        assert manifest["model"]["name"] == fake_embedder.name
        assert manifest["chunker"] == CONFIG.describe()
        assert manifest["documents"] == 5
        assert manifest["passages"] == index.passage_count
        assert len(manifest["corpus"]["sha256"]) == 64
    finally:
        index.close()


@pytest.mark.parametrize(
    ("other", "config", "words"),
    [
        (FakeEmbedder(dimension=32), CONFIG, ["dimension 64", "32", "qa build"]),
        (FakeEmbedder(seed="b", name="another-model"), CONFIG, ["another-model", "vectors differ", "qa build"]),
        (FakeEmbedder(), ChunkerConfig(max_tokens=200), ["max_tokens=96", "200", "qa build"]),
        (FakeEmbedder(), ChunkerConfig(overlap_sentences=1), ["overlap_sentences=0", "qa build"]),
    ],
    ids=["dimension", "model", "budget", "overlap"],
)
def test_an_index_from_another_model_or_chunker_is_refused(
    built: Settings, other: FakeEmbedder, config: ChunkerConfig, words: list[str]
) -> None:
    """Invariant 6: refused at open, with a message saying what differs and how to rebuild."""
    with pytest.raises(IndexMismatchError) as caught:
        _open(built, other, config)
    message = str(caught.value)
    for word in words:
        assert word in message, message


def test_an_index_from_another_format_version_is_refused(built: Settings, fake_embedder: FakeEmbedder) -> None:
    path = _build_dir(built) / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 999
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="format version 999"):
        _open(built, fake_embedder)


def test_a_missing_index_says_how_to_build_one(settings: Settings, fake_embedder: FakeEmbedder) -> None:
    with pytest.raises(IndexNotFoundError, match="qa build"):
        _open(settings, fake_embedder)
    settings.index_dir.mkdir(parents=True)
    (settings.index_dir / CURRENT).write_text("no-such-build\n")
    with pytest.raises(IndexNotFoundError, match="no-such-build"):
        _open(settings, fake_embedder)


@pytest.mark.parametrize("damage", ["truncate-vectors", "garbage-database", "drop-manifest", "bad-manifest"])
def test_damaged_files_are_detected_at_open(built: Settings, fake_embedder: FakeEmbedder, damage: str) -> None:
    build = _build_dir(built)
    if damage == "truncate-vectors":
        data = (build / VECTORS).read_bytes()
        (build / VECTORS).write_bytes(data[: len(data) // 2])
    elif damage == "garbage-database":
        (build / DATABASE).write_bytes(b"this is not an sqlite database" * 100)
    elif damage == "drop-manifest":
        (build / MANIFEST).unlink()
    else:
        (build / MANIFEST).write_text("{not json")
    with pytest.raises(IndexCorruptError, match="qa build"):
        _open(built, fake_embedder)


def test_a_vector_count_that_disagrees_with_the_passages_is_detected(
    built: Settings, fake_embedder: FakeEmbedder
) -> None:
    path = _build_dir(built) / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["passages"] += 1
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="inconsistent"):
        _open(built, fake_embedder)


def test_a_failed_build_leaves_the_live_build_untouched(built: Settings, fake_embedder: FakeEmbedder) -> None:
    before = current_build_id(built.index_dir)
    (built.corpus_dir / "extra.txt").write_text("An Extra Article\nIt has a single sentence of prose in it.\n")
    failing = FailingEmbedder(fail_on=2)  # call 1 is the model probe, call 2 the passages
    with pytest.raises(RuntimeError, match="simulated"):
        build_index(built.corpus_dir, built.index_dir, failing, CONFIG)
    assert current_build_id(built.index_dir) == before
    assert list_builds(built.index_dir) == [before]
    assert not list(built.index_dir.glob(f"{TMP_PREFIX}*"))
    index = _open(built, fake_embedder)
    assert index.document("extra") is None
    index.close()
    # The next build succeeds and switches.
    report = build_index(built.corpus_dir, built.index_dir, fake_embedder, CONFIG)
    assert current_build_id(built.index_dir) == report.build_id != before


def test_old_builds_are_pruned_keeping_the_previous_one(built: Settings, fake_embedder: FakeEmbedder) -> None:
    ids = [current_build_id(built.index_dir)]
    for _ in range(3):
        ids.append(build_index(built.corpus_dir, built.index_dir, fake_embedder, CONFIG).build_id)
    assert len(set(ids)) == 4
    assert list_builds(built.index_dir) == ids[-2:]
    assert current_build_id(built.index_dir) == ids[-1]


def test_stale_reason_follows_the_corpus_and_the_settings(built: Settings, fake_embedder: FakeEmbedder) -> None:
    assert stale_reason(built.corpus_dir, built.index_dir, fake_embedder, CONFIG) is None
    assert "max_tokens" in (stale_reason(built.corpus_dir, built.index_dir, fake_embedder, ChunkerConfig(64)) or "")
    assert stale_reason(built.corpus_dir, built.index_dir, FakeEmbedder(dimension=16), CONFIG)
    article = next(built.corpus_dir.glob("*.txt"))
    article.write_bytes(article.read_bytes() + b"\nOne more sentence was added to this article.\n")
    assert "changed" in (stale_reason(built.corpus_dir, built.index_dir, fake_embedder, CONFIG) or "")
    assert stale_reason(built.corpus_dir, built.index_dir / "nowhere", fake_embedder, CONFIG)


def test_search_returns_nearest_passages_best_first(built: Settings, fake_embedder: FakeEmbedder) -> None:
    index = _open(built, fake_embedder)
    try:
        target = index.passages([7])[0]
        hits = index.search(fake_embedder.embed_batch([target.text])[0], 5)
        assert hits[0][0] == 7
        assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
        scores = [s for _, s in hits]
        assert scores == sorted(scores, reverse=True)
        assert [p.rowid for p in index.passages([9, 3, 5])] == [9, 3, 5]
        assert index.passages([10_000]) == []
        assert len(index.search(np.ones(fake_embedder.dimension, dtype=np.float32), 10_000)) == index.passage_count
    finally:
        index.close()


# -- every way a build on disk can be wrong, each detected at open with the fix in the message -----


def _manifest(build: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((build / MANIFEST).read_text())
    return manifest


def _save_manifest(build: Path, manifest: dict[str, Any]) -> None:
    (build / MANIFEST).write_text(json.dumps(manifest))


def _rerecord(build: Path) -> None:
    """Record the files' current sizes and checksums, so that a deeper check than the checksum has to notice."""
    manifest = _manifest(build)
    for name in (VECTORS, DATABASE):
        data = (build / name).read_bytes()
        manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    _save_manifest(build, manifest)


def _forget_files(build: Path) -> None:
    """A manifest from before builds recorded their files: only the structural checks remain."""
    manifest = _manifest(build)
    del manifest["files"]
    _save_manifest(build, manifest)


def _flip(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    i = int(len(data) * at)
    data[i : i + 8] = bytes(b ^ 0xFF for b in data[i : i + 8])
    path.write_bytes(bytes(data))


def _rewrite_vectors(build: Path, vectors: np.ndarray, ids: np.ndarray) -> None:
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))
    faiss.write_index(index, str(build / VECTORS))


def _stored_vectors(build: Path) -> np.ndarray:
    index = faiss.read_index(str(build / VECTORS))
    return np.asarray(index.index.reconstruct_n(0, index.ntotal))


def _fault_truncated_database(build: Path) -> None:
    data = (build / DATABASE).read_bytes()
    (build / DATABASE).write_bytes(data[: len(data) // 2])


def _fault_truncated_database_old_manifest(build: Path) -> None:
    _forget_files(build)
    _fault_truncated_database(build)


def _fault_garbage_database_old_manifest(build: Path) -> None:
    _forget_files(build)
    (build / DATABASE).write_bytes(b"SQLite format 3\0" + b"\x07" * 5000)


def _fault_corrupt_database(build: Path) -> None:
    _flip(build / DATABASE)


def _fault_corrupt_database_page_old_manifest(build: Path) -> None:
    _forget_files(build)
    page_size = int.from_bytes((build / DATABASE).read_bytes()[16:18], "big")
    data = bytearray((build / DATABASE).read_bytes())
    data[page_size : page_size + 16] = b"\xff" * 16  # the b-tree header of page 2
    (build / DATABASE).write_bytes(bytes(data))


def _fault_corrupt_vectors(build: Path) -> None:
    _flip(build / VECTORS)


def _fault_truncated_vectors_old_manifest(build: Path) -> None:
    _forget_files(build)
    data = (build / VECTORS).read_bytes()
    (build / VECTORS).write_bytes(data[: len(data) - 100])


def _fault_missing_vectors(build: Path) -> None:
    (build / VECTORS).unlink()


def _fault_missing_database(build: Path) -> None:
    (build / DATABASE).unlink()


def _fault_one_vector_fewer(build: Path) -> None:
    vectors = _stored_vectors(build)[:-1]
    _rewrite_vectors(build, vectors, np.arange(1, len(vectors) + 1))
    _rerecord(build)


def _fault_vector_ids_shifted(build: Path) -> None:
    vectors = _stored_vectors(build)
    _rewrite_vectors(build, vectors, np.arange(2, len(vectors) + 2))
    _rerecord(build)


def _fault_vectors_of_another_dimension(build: Path) -> None:
    vectors = _stored_vectors(build)[:, :32]
    _rewrite_vectors(build, vectors, np.arange(1, len(vectors) + 1))
    _rerecord(build)


def _fault_manifest_without_build_id(build: Path) -> None:
    manifest = _manifest(build)
    del manifest["build_id"]
    _save_manifest(build, manifest)


def _fault_manifest_without_a_passage_count(build: Path) -> None:
    manifest = _manifest(build)
    manifest["passages"] = "many"
    _save_manifest(build, manifest)


def _fault_manifest_not_an_object(build: Path) -> None:
    (build / MANIFEST).write_text("[1, 2, 3]")


FAULTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated-database": (_fault_truncated_database, "passages.sqlite is truncated"),
    "truncated-database-old-manifest": (_fault_truncated_database_old_manifest, "passages.sqlite is truncated"),
    "garbage-database-old-manifest": (_fault_garbage_database_old_manifest, "passages.sqlite is"),
    "corrupt-database": (_fault_corrupt_database, "passages.sqlite is corrupt"),
    "corrupt-database-page-old-manifest": (_fault_corrupt_database_page_old_manifest, "quick_check"),
    "corrupt-vectors": (_fault_corrupt_vectors, "vectors.faiss is corrupt"),
    "truncated-vectors-old-manifest": (_fault_truncated_vectors_old_manifest, "cannot be read as a FAISS index"),
    "missing-vectors": (_fault_missing_vectors, "vectors.faiss is missing"),
    "missing-database": (_fault_missing_database, "passages.sqlite is missing"),
    "one-vector-fewer": (_fault_one_vector_fewer, "inconsistent"),
    "vector-ids-shifted": (_fault_vector_ids_shifted, "vector ids"),
    "vectors-of-another-dimension": (_fault_vectors_of_another_dimension, "32-dimensional"),
    "manifest-without-build-id": (_fault_manifest_without_build_id, "no valid 'build_id'"),
    "manifest-without-a-passage-count": (_fault_manifest_without_a_passage_count, "no valid 'passages'"),
    "manifest-not-an-object": (_fault_manifest_not_an_object, "not a JSON object"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_is_named_at_open_with_the_fix(built: Settings, fake_embedder: FakeEmbedder, fault: str) -> None:
    damage, words = FAULTS[fault]
    damage(_build_dir(built))
    with pytest.raises(IndexCorruptError) as caught:
        _open(built, fake_embedder)
    message = str(caught.value)
    assert words in message, message
    assert "qa build" in message, message


def test_an_intact_build_with_an_old_manifest_still_opens(built: Settings, fake_embedder: FakeEmbedder) -> None:
    _forget_files(_build_dir(built))
    _open(built, fake_embedder).close()


def test_an_empty_current_file_says_how_to_build(built: Settings, fake_embedder: FakeEmbedder) -> None:
    (built.index_dir / CURRENT).write_text("")
    with pytest.raises(IndexNotFoundError, match="qa build"):
        _open(built, fake_embedder)


def test_the_manifest_records_the_size_and_checksum_of_each_file(built: Settings) -> None:
    build = _build_dir(built)
    files = _manifest(build)["files"]
    for name in (VECTORS, DATABASE):
        data = (build / name).read_bytes()
        assert files[name] == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


# -- the vector index type: flat while small, HNSW when large, recorded in the manifest -------------


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


def test_an_hnsw_build_records_its_parameters_and_searches_like_flat(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    build_index(settings.corpus_dir, settings.index_dir, fake_embedder, CONFIG, vector_index="hnsw")
    build = _build_dir(settings)
    recorded = _manifest(build)["vectors"]
    assert recorded == VectorIndexSpec.hnsw(storage=recorded["storage"]).describe()
    stored = faiss.read_index(str(build / VECTORS))
    assert isinstance(faiss.downcast_index(stored.index), faiss.IndexHNSWFlat)
    index = _open(settings, fake_embedder)
    try:
        assert index.vector_spec.type == "hnsw"
        target = index.passages([7])[0]
        query = fake_embedder.embed_batch([target.text])[0]
        hits = index.search(query, 5)
        assert hits[0][0] == 7
        assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
        # Reconstruction stays exact: search scores candidates from these vectors.
        assert np.allclose(index.vectors([7])[0], query, atol=1e-6)
        allowed = [r for r in range(1, index.passage_count + 1) if r % 3 == 0]
        filtered = index.search(query, 4, allowed)
        assert len(filtered) == 4
        assert all(r % 3 == 0 for r, _ in filtered)
    finally:
        index.close()


def test_a_flat_build_records_flat_and_an_old_manifest_without_the_entry_opens(
    built: Settings, fake_embedder: FakeEmbedder
) -> None:
    build = _build_dir(built)
    assert _manifest(build)["vectors"] == {"type": "flat"}
    manifest = _manifest(build)
    del manifest["vectors"]
    _save_manifest(build, manifest)
    index = _open(built, fake_embedder)
    assert index.vector_spec == VectorIndexSpec()
    index.close()


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (VectorIndexSpec.hnsw().describe(), "manifest records a hnsw"),
        ({"type": "ivf"}, "unknown vector index"),
        ({"type": "hnsw", "M": "many", "ef_construction": 40, "ef_search": 64}, "not positive integers"),
    ],
    ids=["hnsw-recorded-flat-stored", "unknown-type", "bad-parameters"],
)
def test_a_manifest_that_disagrees_with_the_vector_file_is_refused(
    built: Settings, fake_embedder: FakeEmbedder, entry: dict[str, Any], words: str
) -> None:
    build = _build_dir(built)
    manifest = _manifest(build)
    manifest["vectors"] = entry
    _save_manifest(build, manifest)
    with pytest.raises(IndexCorruptError) as caught:
        _open(built, fake_embedder)
    assert words in str(caught.value)
    assert "qa build" in str(caught.value)


def test_an_hnsw_graph_with_another_m_than_recorded_is_refused(tmp_path: Path) -> None:
    path = tmp_path / VECTORS
    faiss.write_index(build_vector_index(_unit(200), VectorIndexSpec.hnsw(M=8)), str(path))
    with pytest.raises(IndexCorruptError, match="M=8"):
        _read_vectors(path, {"vectors": VectorIndexSpec.hnsw(M=16).describe()})
    index = _read_vectors(path, {"vectors": VectorIndexSpec.hnsw(M=8, ef_search=77).describe()})
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


@pytest.mark.parametrize("limit", [0, 10**6], ids=["through-the-graph", "exact-over-allowed"])
def test_a_filtered_hnsw_search_returns_only_allowed_ids_and_k_of_them(
    monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    monkeypatch.setattr(store, "EXACT_FILTER_LIMIT", limit)
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

"""Every way a build on disk can be wrong, each detected at open with the fix in the message."""

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
from qa.errors import IndexCorruptError, IndexNotFoundError
from qa.index.embedded.layout import CURRENT, DATABASE, MANIFEST, VECTORS
from qa.index.location import locate
from qa.index.vector_index import VectorIndexSpec
from qa.ingest.chunking import ChunkerConfig
from tests.helpers import FakeEmbedder, manifest_json, save_manifest_json
from tests.helpers import build_dir as _build_dir
from tests.helpers import open_index as _open

CONFIG = ChunkerConfig()


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


def _rerecord(build: Path) -> None:
    """Record the files' current sizes and checksums, so that a deeper check than the checksum has to notice."""
    manifest = manifest_json(build)
    for name in (VECTORS, DATABASE):
        data = (build / name).read_bytes()
        manifest["segments"][0]["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    save_manifest_json(build, manifest)


def _forget_files(build: Path) -> None:
    """A manifest from before builds recorded their files: only the structural checks remain."""
    manifest = manifest_json(build)
    del manifest["segments"][0]["files"]
    save_manifest_json(build, manifest)


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
    manifest = manifest_json(build)
    del manifest["build_id"]
    save_manifest_json(build, manifest)


def _fault_manifest_without_a_passage_count(build: Path) -> None:
    manifest = manifest_json(build)
    manifest["passages"] = "many"
    save_manifest_json(build, manifest)


def _fault_manifest_not_an_object(build: Path) -> None:
    (build / MANIFEST).write_text("[1, 2, 3]")


FAULTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated-database": (_fault_truncated_database, "passages.sqlite is truncated"),
    "truncated-database-old-manifest": (_fault_truncated_database_old_manifest, "passages.sqlite is truncated"),
    "garbage-database-old-manifest": (_fault_garbage_database_old_manifest, "passages.sqlite is"),
    "corrupt-database": (_fault_corrupt_database, "passages.sqlite is corrupt"),
    "corrupt-database-page-old-manifest": (_fault_corrupt_database_page_old_manifest, "passages.sqlite is"),
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


#: Faults only every byte shows (a file of the recorded size with other content): opening checks sizes
#: and structure, not checksums (qa.index.embedded.integrity); verification (`qa check`, a server in the
#: background) finds them.
SEEN_BY_VERIFICATION_ONLY = {"corrupt-database", "corrupt-vectors"}


@pytest.mark.parametrize("fault", [f for f in FAULTS if f not in SEEN_BY_VERIFICATION_ONLY])
def test_each_fault_is_named_at_open_with_the_fix(built: Settings, fake_embedder: FakeEmbedder, fault: str) -> None:
    damage, words = FAULTS[fault]
    damage(_build_dir(built))
    with pytest.raises(IndexCorruptError) as caught:
        _open(built, fake_embedder)
    message = str(caught.value)
    assert words in message, message
    assert "qa build" in message, message


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_is_named_by_verification_with_the_fix(built: Settings, fault: str) -> None:
    damage, words = FAULTS[fault]
    damage(_build_dir(built))
    with pytest.raises(IndexCorruptError) as caught:
        locate(built.index_dir).verify()
    message = str(caught.value)
    assert words in message, message
    assert "qa build" in message, message


@pytest.mark.parametrize("fault", sorted(SEEN_BY_VERIFICATION_ONLY))
def test_opening_does_not_read_every_byte(built: Settings, fake_embedder: FakeEmbedder, fault: str) -> None:
    """The faults only a checksum shows open (that is what keeps opening fast); verification refuses them."""
    damage, _ = FAULTS[fault]
    damage(_build_dir(built))
    _open(built, fake_embedder).close()
    with pytest.raises(IndexCorruptError):
        locate(built.index_dir).verify()


def test_an_intact_build_verifies(built: Settings) -> None:
    build_id, seconds = locate(built.index_dir).verify()
    assert build_id == _build_dir(built).name
    assert seconds >= 0


def test_an_intact_build_with_an_old_manifest_still_opens(built: Settings, fake_embedder: FakeEmbedder) -> None:
    _forget_files(_build_dir(built))
    _open(built, fake_embedder).close()


def test_an_empty_current_file_says_how_to_build(built: Settings, fake_embedder: FakeEmbedder) -> None:
    (built.index_dir / CURRENT).write_text("")
    with pytest.raises(IndexNotFoundError, match="qa build"):
        _open(built, fake_embedder)


def test_the_manifest_records_the_size_and_checksum_of_each_file(built: Settings) -> None:
    build = _build_dir(built)
    files = manifest_json(build)["segments"][0]["files"]
    for name in (VECTORS, DATABASE):
        data = (build / name).read_bytes()
        assert files[name] == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


# -- the vector index type: flat while small, HNSW when large, recorded in the manifest -------------


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
    manifest = manifest_json(build)
    manifest["vectors"] = entry
    save_manifest_json(build, manifest)
    with pytest.raises(IndexCorruptError) as caught:
        _open(built, fake_embedder)
    assert words in str(caught.value)
    assert "qa build" in str(caught.value)

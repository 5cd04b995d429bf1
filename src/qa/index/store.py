"""Write and open index builds: FAISS vectors, SQLite passages and documents, a manifest.

The folder layout::

    index/
      CURRENT                 name of the live build, replaced atomically (os.replace)
      <build-id>/
        manifest.json         model identity, chunker parameters, corpus hash, counts, format
        vectors.faiss         IndexIDMap2 over an inner-product index (exact flat, or HNSW
                              above a size threshold: see :func:`choose_vector_index`);
                              ids are passage rowids
        passages.sqlite       documents, passages (text, offsets, ids), their sentences with
                              vectors, and FTS5 tables over passages and documents

A build is written into a hidden temporary folder, renamed into place when complete,
and only then named in CURRENT, so a reader sees either the old build or the new one,
never half of one. :class:`Index` is the read side; its public methods (``search``,
``passages``, ``passage``, ``neighbours``, ``documents``, ``document``) are the whole
interface the search and API layers use, so another vector engine can stand behind it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from qa.embedding.base import PROBE_DIMS, Vectors
from qa.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError, IndexStoreError
from qa.ingest.chunking import Passage
from qa.ingest.cleaning import cleaned_text
from qa.ingest.documents import Document

log = logging.getLogger(__name__)
#: faiss as the type checker sees it lacks some of its classes (SearchParametersHNSW) and
#: types some constructors narrowly; those few uses go through this untyped alias.
_faiss: Any = faiss

#: ``([(passage index from 0, start, end), ...], vectors)``: the sentences of a build's passages.
Sentences = tuple[Sequence[tuple[int, int, int]], Vectors]

#: 2: FTS5 tables over passages and documents, each with the title as a column.
#: 3: sentences of each passage with their vectors (highlights and grouping need no model call).
FORMAT_VERSION = 3
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
DATABASE = "passages.sqlite"
TMP_PREFIX = ".tmp-"
LOCK = ".build.lock"
#: How far two loads of the same model may differ on the probe vector.
PROBE_TOLERANCE = 2e-3

#: ``QA_VECTOR_INDEX``: ``auto`` picks by size (:func:`choose_vector_index`), the others force one.
VectorIndexMode = Literal["auto", "flat", "hnsw"]
#: How an HNSW index stores the vectors it links (see :data:`HNSW_STORAGE`).
HnswStorage = Literal["flat", "fp16", "sq8"]
#: Above this many vectors a build is stored in HNSW rather than exact flat. Measured in
#: docs/scaling.md (one query, one thread, 384-d): flat p50 is 1.3 ms at 30k, 2.6 ms at
#: 50k, 4.7 ms at 100k, 50 ms at 1M, growing with the count; HNSW stays under 1 ms at
#: every size. Up to here flat is exact and still about as fast as the model encodes a
#: question, so nothing is approximated where it buys nothing.
HNSW_THRESHOLD = 50_000
#: HNSW parameters, measured on 50k to 1M real MiniLM vectors (docs/scaling.md). M=32
#: beat M=16 on recall at equal latency; efConstruction 80 builds 1M vectors in ~190 s on
#: two cores (160 took ~425 s for +0.002 recall@10 at efSearch 512); efSearch 512 gives
#: recall@10 0.990 and recall@100 0.986 on SciFact queries at 1M for a p50 under 1 ms
#: (FAISS searches with max(efSearch, k), and hybrid asks the dense side for 100).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 512
#: How HNSW stores the vectors it links: ``flat`` is float32 (exact reconstruction:
#: 1.82 kB per vector with the graph, 1,732 MiB at 1M); ``fp16`` is 1.05 kB per vector
#: (1,000 MiB at 1M, same recall measured) with a reconstruction error near 1e-4.
HNSW_STORAGE: HnswStorage = "flat"
#: Above this many vectors HNSW stores fp16, so that the index stays under 2 GB (float32
#: would pass it near 1.1M vectors; fp16 near 1.9M).
HNSW_FP16_THRESHOLD = 1_000_000
#: A filtered search over at most this many allowed passages is answered exactly from
#: their stored vectors rather than through the graph: a graph walk cannot promise ``k``
#: hits when few passages qualify, and scoring this many vectors costs about what the
#: graph walk does (measured in docs/scaling.md).
EXACT_FILTER_LIMIT = 20_000

_SCHEMA = """
CREATE TABLE documents (
    doc_id     TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    title      TEXT NOT NULL,
    author     TEXT,
    url        TEXT,
    published  TEXT,
    outlet     TEXT,
    sha256     TEXT NOT NULL,
    encoding   TEXT NOT NULL,
    text       TEXT NOT NULL,
    cleaned    TEXT NOT NULL
);
CREATE TABLE passages (
    rowid      INTEGER PRIMARY KEY,
    passage_id TEXT NOT NULL UNIQUE,
    doc_id     TEXT NOT NULL REFERENCES documents(doc_id),
    ordinal    INTEGER NOT NULL,
    start      INTEGER NOT NULL,
    "end"      INTEGER NOT NULL,
    section    TEXT,
    n_tokens   INTEGER NOT NULL,
    text       TEXT NOT NULL,
    UNIQUE (doc_id, ordinal)
);
-- Contentless BM25 indexes: the text lives in the tables above. A passage row carries
-- its document's title; a document row its title and its cleaned text.
-- Each passage's sentences as [start, end) in its text, with the model's vector (float32).
CREATE TABLE sentences (
    passage    INTEGER NOT NULL REFERENCES passages(rowid),
    start      INTEGER NOT NULL,
    "end"      INTEGER NOT NULL,
    vector     BLOB NOT NULL,
    PRIMARY KEY (passage, start)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE passages_fts USING fts5(title, text, content='', tokenize='porter unicode61');
CREATE VIRTUAL TABLE documents_fts USING fts5(title, text, content='', tokenize='porter unicode61');
"""
_PASSAGE_COLUMNS = 'rowid, passage_id, doc_id, ordinal, start, "end", section, n_tokens, text'
_DOCUMENT_COLUMNS = "doc_id, source, title, author, url, published, outlet, sha256, encoding"


@dataclass(frozen=True)
class PassageRecord:
    """A passage as stored in a build."""

    rowid: int
    passage_id: str
    doc_id: str
    ordinal: int
    start: int
    end: int
    section: str | None
    n_tokens: int
    text: str


@dataclass(frozen=True)
class DocumentRecord:
    """A document as stored in a build, without its text."""

    doc_id: str
    source: str
    title: str
    author: str | None
    url: str | None
    published: str | None
    outlet: str | None
    sha256: str
    encoding: str
    n_passages: int


@dataclass(frozen=True)
class VectorIndexSpec:
    """Which FAISS index holds a build's vectors; recorded as the manifest's ``vectors`` entry.

    Whatever the type, the index sits inside an ``IndexIDMap2`` whose ids are the passage
    rowids 1..n, uses inner product (vectors are unit length, so it is cosine), and can
    reconstruct every stored vector, because search scores candidates from those vectors.
    A manifest without ``vectors`` was written before there was a choice: it means flat.
    """

    type: Literal["flat", "hnsw"] = "flat"
    M: int = 0
    ef_construction: int = 0
    ef_search: int = 0
    storage: HnswStorage = "flat"

    def describe(self) -> dict[str, Any]:
        if self.type == "flat":
            return {"type": "flat"}
        return {
            "type": "hnsw",
            "M": self.M,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "storage": self.storage,
        }

    @classmethod
    def hnsw(
        cls,
        M: int = HNSW_M,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        ef_search: int = HNSW_EF_SEARCH,
        storage: HnswStorage = "flat",
    ) -> VectorIndexSpec:
        return cls("hnsw", M, ef_construction, ef_search, storage)

    @classmethod
    def from_manifest(cls, entry: Any) -> VectorIndexSpec:
        """The spec a manifest records (``None``: a build from before the choice, so flat)."""
        if entry is None:
            return cls()
        if not isinstance(entry, dict) or entry.get("type") not in ("flat", "hnsw"):
            raise ValueError(f"unknown vector index {entry!r}")
        if entry["type"] == "flat":
            return cls()
        values = [entry.get(name) for name in ("M", "ef_construction", "ef_search")]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
            raise ValueError(f"HNSW parameters {entry!r} are not positive integers")
        storage = entry.get("storage", "flat")
        if storage not in ("flat", "fp16", "sq8"):
            raise ValueError(f"unknown HNSW storage {storage!r}")
        M, ef_construction, ef_search = (int(v) for v in values if v is not None)
        return cls("hnsw", M, ef_construction, ef_search, storage)


def choose_vector_index(count: int, mode: VectorIndexMode = "auto", threshold: int = HNSW_THRESHOLD) -> VectorIndexSpec:
    """The index for ``count`` vectors: exact flat while it is fast enough, HNSW above ``threshold``.

    Flat is exact and needs no parameters; its single-query cost grows linearly with the
    count, and HNSW's roughly with its logarithm, so the switch is where flat stops being
    fast (measured in docs/scaling.md). Above :data:`HNSW_FP16_THRESHOLD` the graph's vectors
    are stored as fp16 to bound memory. ``mode`` (``QA_VECTOR_INDEX``) forces either type
    (an empty build is always flat: there is no graph to make).
    """
    if mode == "flat":
        return VectorIndexSpec()
    if mode == "hnsw" or (mode == "auto" and count > threshold):
        if not count:
            return VectorIndexSpec()
        return VectorIndexSpec.hnsw(storage="fp16" if count > HNSW_FP16_THRESHOLD else HNSW_STORAGE)
    if mode != "auto":
        raise ValueError(f"unknown vector index mode {mode!r} (auto, flat or hnsw)")
    return VectorIndexSpec()


def build_vector_index(vectors: Vectors, spec: VectorIndexSpec) -> Any:
    """An ``IndexIDMap2`` (ids 1..n) over the index ``spec`` names, holding ``vectors``.

    The one place a vector index is made, used by builds and by scripts/bench_scale.py,
    so that what the benchmark measures is what the service opens.
    """
    dimension = int(vectors.shape[1]) if vectors.ndim == 2 else 0
    inner: Any
    if spec.type == "flat":
        inner = faiss.IndexFlatIP(dimension)
    elif spec.storage == "flat":
        inner = faiss.IndexHNSWFlat(dimension, spec.M, faiss.METRIC_INNER_PRODUCT)
    else:
        kind = faiss.ScalarQuantizer.QT_fp16 if spec.storage == "fp16" else faiss.ScalarQuantizer.QT_8bit
        inner = _faiss.IndexHNSWSQ(dimension, kind, spec.M, faiss.METRIC_INNER_PRODUCT)
    if spec.type == "hnsw":
        inner.hnsw.efConstruction = spec.ef_construction
        inner.hnsw.efSearch = spec.ef_search
    index = faiss.IndexIDMap2(inner)
    if len(vectors):
        data = np.ascontiguousarray(vectors, dtype=np.float32)
        if spec.type == "hnsw" and spec.storage == "sq8":
            inner.train(data)  # SQ8 learns each dimension's range; fp16 needs no training
        index.add_with_ids(data, np.arange(1, len(vectors) + 1, dtype=np.int64))
    return index


def search_vectors(
    index: Any, spec: VectorIndexSpec, query: Vectors, k: int, allowed: Sequence[int] | None = None
) -> list[tuple[int, float]]:
    """The ``k`` nearest ids to one query in an index :func:`build_vector_index` made, best first.

    Behind ``Index.search``, and what scripts/bench_scale.py times. Flat is exact, with
    ``allowed`` applied inside FAISS by an ``IDSelectorBatch``. On HNSW the selector rides
    in ``SearchParametersHNSW`` (with the recorded efSearch; FAISS searches with
    ``max(efSearch, k)``), but a graph walk cannot promise ``k`` allowed hits when few
    passages qualify: an allowed set of at most :data:`EXACT_FILTER_LIMIT` is scored
    exactly from its stored vectors instead, and a walk that comes back short falls back
    to the same exact scoring.
    """
    if query.ndim == 1:
        query = query[None, :]
    query = np.ascontiguousarray(query, dtype=np.float32)
    if faiss.omp_get_max_threads() != 1:
        # One query at a time gains nothing from OpenMP, and its thread wake-ups cost more than the
        # search: measured 16 ms against 0.005 ms for 68 passages on this 2-core machine.
        faiss.omp_set_num_threads(1)
    k = min(k, int(index.ntotal) if allowed is None else len(allowed))
    if k <= 0:
        return []
    hnsw = spec.type == "hnsw"
    if hnsw and allowed is not None and len(allowed) <= EXACT_FILTER_LIMIT:
        return _exact_search(index, query, k, allowed)
    params: Any = None
    if hnsw:
        params = _faiss.SearchParametersHNSW()
        params.efSearch = spec.ef_search
    elif allowed is not None:
        params = faiss.SearchParameters()
    selector = None  # kept referenced until the search returns: params holds a bare pointer
    if allowed is not None:
        selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
        params.sel = selector
    scores, ids = index.search(query, k, params=params)
    del selector
    hits = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
    if hnsw and allowed is not None and len(hits) < k:
        return _exact_search(index, query, k, allowed)
    return hits


def _exact_search(index: Any, query: Vectors, k: int, allowed: Sequence[int]) -> list[tuple[int, float]]:
    """The ``k`` best of ``allowed`` by inner product with their stored vectors (any index type)."""
    keys = np.unique(np.asarray(allowed, dtype=np.int64))
    keys = keys[(keys >= 1) & (keys <= int(index.ntotal))]
    if not len(keys):
        return []
    # einsum runs on this thread; a BLAS product would wake a thread pool that, on a
    # busy machine, waits for a scheduler tick (measured at 20k allowed: 8-16 ms instead of 6).
    scores = np.einsum("ij,j->i", _reconstruct(index, keys), query[0])
    k = min(k, len(keys))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(keys[i]), float(scores[i])) for i in top]


def _reconstruct(index: Any, rowids: Sequence[int] | np.ndarray) -> Vectors:
    """Stored vectors by id, in the order asked: exact for flat and HNSW-flat, close for fp16/SQ8.

    Read from the inner index at position ``rowid - 1``: a build's ids are 1..n (checked
    at open), and skipping the id map's hash lookups makes this about 3x faster
    (20,000 vectors: 2.3 ms instead of 7.7 ms), which exact filtered search relies on.
    """
    if not len(rowids):
        return np.zeros((0, int(index.d)), dtype=np.float32)
    keys = np.asarray(rowids, dtype=np.int64)
    if keys.min() < 1 or keys.max() > int(index.ntotal):
        raise KeyError(f"no stored vector for passage {int(keys.min() if keys.min() < 1 else keys.max())}")
    return np.asarray(index.index.reconstruct_batch(keys - 1), dtype=np.float32).reshape(len(keys), -1)


# -- writing -----------------------------------------------------------------------------


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Serialise builds into one index folder (another process waits for the lock)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_build(
    index_dir: Path,
    documents: Sequence[Document],
    passages: Sequence[Passage],
    vectors: Vectors,
    manifest: dict[str, Any],
    started: float | None = None,
    sentences: Sentences | None = None,
    vector_index: VectorIndexMode | VectorIndexSpec = "auto",
) -> str:
    """Write a complete build, switch CURRENT to it, prune old builds; return its id.

    ``sentences`` are ``([(passage index, start, end), ...], vectors)``: each passage's
    sentences as offsets into its text, with their vectors. ``vector_index`` is a mode
    for :func:`choose_vector_index` or an explicit spec; what was used is recorded in the
    manifest's ``vectors`` entry and checked when the build is opened.

    The caller holds :func:`build_lock`. Nothing visible changes until the final rename.
    ``started`` is the ``time.perf_counter()`` at which the build began: the manifest's
    ``build_seconds`` is the wall time from then until the manifest is written.
    """
    if len(passages) != len(vectors):
        raise IndexStoreError(f"{len(passages)} passages but {len(vectors)} vectors")
    remove_partial_builds(index_dir)
    try:
        previous: str | None = current_build_id(index_dir)
    except IndexNotFoundError:
        previous = None
    build_id = _new_build_id(index_dir, manifest)
    tmp = index_dir / f"{TMP_PREFIX}{build_id}-{os.getpid()}"
    tmp.mkdir(parents=True)
    try:
        _write_database(tmp / DATABASE, documents, passages, sentences)
        spec = (
            vector_index
            if isinstance(vector_index, VectorIndexSpec)
            else choose_vector_index(len(vectors), vector_index)
        )
        _write_vectors(tmp / VECTORS, vectors, spec)
        files = {name: _file_digest(tmp / name) for name in (VECTORS, DATABASE)}
        full = {
            **manifest,
            "format_version": FORMAT_VERSION,
            "build_id": build_id,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "documents": len(documents),
            "passages": len(passages),
            "vectors": spec.describe(),
            # What CURRENT named when this build was made: what `qa rollback` goes back to.
            "previous_build": previous,
            # Sizes and sha256 of the data files, checked when the build is opened.
            "files": files,
        }
        if started is not None:
            full["build_seconds"] = round(time.perf_counter() - started, 3)
        _write_file(tmp / MANIFEST, json.dumps(full, indent=2, sort_keys=True) + "\n")
        _fsync_dir(tmp)
        tmp.rename(index_dir / build_id)
        _fsync_dir(index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    switch_current(index_dir, build_id)
    prune_builds(index_dir, keep=2)
    return build_id


def switch_current(index_dir: Path, build_id: str) -> None:
    """Point CURRENT at ``build_id`` with one atomic rename."""
    if not (index_dir / build_id / MANIFEST).is_file():
        raise IndexNotFoundError(f"no complete build {build_id!r} in {index_dir}")
    tmp = index_dir / f"{CURRENT}.{os.getpid()}.tmp"
    _write_file(tmp, build_id + "\n")
    tmp.replace(index_dir / CURRENT)
    _fsync_dir(index_dir)


def list_builds(index_dir: Path) -> list[str]:
    """Complete builds in the folder, oldest first (build ids start with their UTC time)."""
    if not index_dir.is_dir():
        return []
    return sorted(
        p.name for p in index_dir.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file()
    )


def current_build_id(index_dir: Path) -> str:
    """The build CURRENT names, or :class:`IndexNotFoundError`."""
    try:
        build_id = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise IndexNotFoundError(
            f"no index in {index_dir} (there is no CURRENT file): build one with `qa build --index {index_dir}`"
        ) from None
    if not build_id or "/" in build_id or build_id.startswith(".") or not (index_dir / build_id).is_dir():
        raise IndexNotFoundError(
            f"{index_dir / CURRENT} names build {build_id!r}, which does not exist: "
            f"rebuild with `qa build --index {index_dir}`"
        )
    return build_id


def previous_build_id(index_dir: Path) -> str | None:
    """The build to roll back to: the one CURRENT named before the live build was made.

    ``None`` when there is none on disk (the first build, or after a rollback, whose
    target's own previous build has been pruned). When the live build's manifest is
    unreadable, or was written before builds recorded ``previous_build``, it is the
    newest complete build older than the live one.
    """
    current = current_build_id(index_dir)
    builds = list_builds(index_dir)
    try:
        manifest = read_manifest(index_dir / current)
    except IndexStoreError:  # the live build is damaged: exactly when a rollback is wanted
        manifest = {}
    if "previous_build" in manifest:
        previous = manifest["previous_build"]
        return previous if isinstance(previous, str) and previous != current and previous in builds else None
    older = [b for b in builds if b < current]
    return older[-1] if older else None


def prune_builds(index_dir: Path, keep: int = 2) -> list[str]:
    """Remove old builds, keeping the current one and the ones it would roll back to; return what went.

    ``keep`` counts the current build: with 2, the current build and its previous one
    (:func:`previous_build_id`) stay. After a rollback followed by a new build, the
    build that was rolled back from is the one removed, not the build that was serving.
    """
    builds = list_builds(index_dir)
    try:
        chain = [current_build_id(index_dir)]
    except IndexNotFoundError:
        chain = []
    while chain and len(chain) < keep:
        try:
            manifest = read_manifest(index_dir / chain[-1])
        except IndexStoreError:
            break
        previous = manifest.get("previous_build")
        if not isinstance(previous, str) or previous not in builds or previous in chain:
            break
        chain.append(previous)
    # Builds made before manifests recorded their previous build: keep the newest.
    for build_id in reversed(builds):
        if len(chain) >= keep:
            break
        if build_id not in chain:
            chain.append(build_id)
    removed = []
    for build_id in builds:
        if build_id not in chain:
            shutil.rmtree(index_dir / build_id, ignore_errors=True)
            removed.append(build_id)
    return removed


def remove_partial_builds(index_dir: Path) -> list[str]:
    """Delete what interrupted builds left behind: ``.tmp-*`` folders and ``CURRENT.*.tmp`` files.

    The caller holds :func:`build_lock`, so no other build is writing: every such
    leftover belongs to a build that failed or was killed (a process id in the name
    could have been reused since, so it is not consulted). Returns what was removed.
    """
    removed = []
    for tmp in sorted(index_dir.glob(f"{TMP_PREFIX}*")):
        log.warning("removing %s, left by an interrupted build", tmp)
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        removed.append(tmp.name)
    for tmp in sorted(index_dir.glob(f"{CURRENT}.*.tmp")):
        tmp.unlink(missing_ok=True)
        removed.append(tmp.name)
    return removed


def read_manifest(build_dir: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((build_dir / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorruptError(f"{build_dir} has no {MANIFEST}: rebuild with `qa build`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"{build_dir / MANIFEST} is unreadable ({exc}): rebuild with `qa build`") from None
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"{build_dir / MANIFEST} is not a JSON object: rebuild with `qa build`")
    return manifest


def compatibility_problems(manifest: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """How a build's manifest differs from what the running service needs (empty: compatible)."""
    problems = []
    if manifest.get("format_version") != FORMAT_VERSION:
        problems.append(
            f"index format version {manifest.get('format_version')!r}, this qa reads version {FORMAT_VERSION}"
        )
    built, want = manifest.get("model") or {}, expected.get("model") or {}
    if want:
        if built.get("dimension") != want.get("dimension"):
            problems.append(
                f"model dimension {built.get('dimension')} ({built.get('name')}), "
                f"the service's model has {want.get('dimension')} ({want.get('name')})"
            )
        elif not _same_probe(built.get("probe"), want.get("probe")):
            problems.append(
                f"model {built.get('name')!r} ({built.get('revision')}), the service uses "
                f"{want.get('name')!r} ({want.get('revision')}) and their vectors differ"
            )
    built_chunker, want_chunker = manifest.get("chunker") or {}, expected.get("chunker") or {}
    if want_chunker and built_chunker != want_chunker:
        diffs = sorted(k for k in set(built_chunker) | set(want_chunker) if built_chunker.get(k) != want_chunker.get(k))
        problems.append(
            "chunker "
            + ", ".join(f"{k}={built_chunker.get(k)!r} (settings say {want_chunker.get(k)!r})" for k in diffs)
        )
    return problems


# -- reading -----------------------------------------------------------------------------


class Index:
    """One open build: vectors in FAISS, passages and documents in SQLite."""

    def __init__(self, path: Path, manifest: dict[str, Any], db: sqlite3.Connection, vectors: Any) -> None:
        self.path = path
        self.manifest = manifest
        self._db = db
        self._vectors = vectors
        self.vector_spec = VectorIndexSpec.from_manifest(manifest.get("vectors"))
        self._lock = threading.Lock()
        self._doc_ids: dict[int, str] = {}
        self._documents = self._load_documents()

    @classmethod
    def open(cls, index_dir: Path, expected: dict[str, Any] | None = None) -> Index:
        """Open the build CURRENT names, refusing one made with another model or chunker.

        ``expected`` holds ``model`` (see :func:`qa.embedding.base.model_identity`) and
        ``chunker`` (see :meth:`qa.ingest.chunking.ChunkerConfig.describe`).
        """
        build_dir = index_dir / current_build_id(index_dir)
        return cls.open_build(build_dir, expected)

    @classmethod
    def open_build(cls, build_dir: Path, expected: dict[str, Any] | None = None) -> Index:
        """Open one build folder, checking that it is whole and was made the way ``expected`` says.

        Checked, each failure with a message naming the problem and the fix: the manifest
        (present, JSON, the fields a build writes), compatibility with ``expected``, both data
        files present with the size and sha256 the build recorded, the SQLite header and
        ``PRAGMA quick_check``, the FAISS index type, dimension and ids, and that vectors,
        passages and the manifest agree on the count.
        """
        manifest = read_manifest(build_dir)
        problems = compatibility_problems(manifest, expected or {})
        if problems:
            raise IndexMismatchError(
                f"the index {build_dir} was built with "
                + "; ".join(problems)
                + ". Rebuild it with `qa build` using the current settings, or set QA_MODEL and the "
                "chunker settings to those the index was built with."
            )
        _check_manifest(build_dir, manifest)
        _check_files(build_dir, manifest)
        db = _open_database(build_dir / DATABASE)
        try:
            vectors = _read_vectors(build_dir / VECTORS, manifest)
        except IndexStoreError:
            db.close()
            raise
        try:
            index = cls(build_dir, manifest, db, vectors)
            index._check_counts()
        except sqlite3.DatabaseError as exc:
            db.close()
            raise IndexCorruptError(f"{build_dir / DATABASE} is unreadable ({exc}): rebuild with `qa build`") from None
        except IndexStoreError:
            db.close()
            raise
        return index

    @property
    def build_id(self) -> str:
        return str(self.manifest["build_id"])

    @property
    def passage_count(self) -> int:
        return int(self._vectors.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._vectors.d)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- the interface search and the API use -------------------------------------------

    def search(self, query: Vectors, k: int, allowed: Sequence[int] | None = None) -> list[tuple[int, float]]:
        """The ``k`` nearest passages to one query vector, as ``(rowid, inner product)``.

        ``allowed`` restricts the search to those passage rowids (a filter applied inside
        FAISS, before ranking, so a filtered search still returns ``k`` passages; see
        :func:`search_vectors` for how an HNSW build keeps that promise).
        """
        return search_vectors(self._vectors, self.vector_spec, query, k, allowed)

    def vectors(self, rowids: Sequence[int]) -> Vectors:
        """The stored vectors of these passages, in the order asked."""
        return _reconstruct(self._vectors, rowids)

    def lexical_search(
        self, match: str, weights: tuple[float, float], allowed_docs: Sequence[str] | None = None
    ) -> list[tuple[int, float]]:
        """Every passage matching an FTS5 ``match`` expression with its BM25 score, best first.

        ``weights`` are the BM25 weights of the title and text columns; scores are
        positive, higher is better. ``allowed_docs`` restricts the search to those documents.
        FTS5 scores every match anyway, so returning them all costs one pass: callers take
        the best and keep the rest to score other retrievers' candidates.
        """
        sql = "SELECT rowid, -bm25(passages_fts, ?, ?) AS score FROM passages_fts WHERE passages_fts MATCH ?"
        params: list[Any] = [weights[0], weights[1], match]
        if allowed_docs is not None:
            if not allowed_docs:
                return []
            marks = ",".join("?" * len(allowed_docs))
            sql += f" AND rowid IN (SELECT rowid FROM passages WHERE doc_id IN ({marks}))"
            params.extend(allowed_docs)
        rows = self._query(sql + " ORDER BY score DESC", params)
        return [(int(r), float(score)) for r, score in rows]

    def lexical_document_scores(
        self, match: str, doc_ids: Sequence[str], weights: tuple[float, float]
    ) -> dict[str, float]:
        """BM25 scores of these whole documents (title and cleaned text) for ``match``."""
        wanted = set(doc_ids)
        rows = self._query(
            "SELECT rowid, -bm25(documents_fts, ?, ?) FROM documents_fts WHERE documents_fts MATCH ?",
            [weights[0], weights[1], match],
        )
        found = ((self._doc_ids[int(r)], float(score)) for r, score in rows)
        return {doc_id: score for doc_id, score in found if doc_id in wanted}

    def sentences(self, rowids: Sequence[int]) -> dict[int, tuple[list[tuple[int, int]], Vectors]]:
        """Each passage's sentences (offsets into its text, in order) and their stored vectors."""
        out: dict[int, tuple[list[tuple[int, int]], Vectors]] = {}
        if not rowids:
            return out
        marks = ",".join("?" * len(rowids))
        rows = self._query(
            f'SELECT passage, start, "end", vector FROM sentences WHERE passage IN ({marks}) ORDER BY passage, start',
            list(rowids),
        )
        grouped: dict[int, list[tuple[int, int, bytes]]] = {}
        for passage, start, end, blob in rows:
            grouped.setdefault(int(passage), []).append((int(start), int(end), blob))
        for rowid, items in grouped.items():
            vectors = np.frombuffer(b"".join(blob for _, _, blob in items), dtype=np.float32)
            out[rowid] = ([(s, e) for s, e, _ in items], vectors.reshape(len(items), -1))
        return out

    def passage_rowids(self, doc_ids: Sequence[str]) -> list[int]:
        """Rowids of every passage of these documents."""
        if not doc_ids:
            return []
        marks = ",".join("?" * len(doc_ids))
        return [int(r) for (r,) in self._query(f"SELECT rowid FROM passages WHERE doc_id IN ({marks})", doc_ids)]

    def passage_docs(self, rowids: Sequence[int]) -> dict[int, str]:
        """The document of each of these passages."""
        if not rowids:
            return {}
        marks = ",".join("?" * len(rowids))
        rows = self._query(f"SELECT rowid, doc_id FROM passages WHERE rowid IN ({marks})", list(rowids))
        return {int(r): str(d) for r, d in rows}

    def passages(self, rowids: Sequence[int]) -> list[PassageRecord]:
        """Passages by rowid, in the order asked (unknown rowids are left out)."""
        if not rowids:
            return []
        marks = ",".join("?" * len(rowids))
        rows = self._query(f"SELECT {_PASSAGE_COLUMNS} FROM passages WHERE rowid IN ({marks})", list(rowids))
        by_id = {row[0]: PassageRecord(*row) for row in rows}
        return [by_id[r] for r in rowids if r in by_id]

    def passage(self, passage_id: str) -> PassageRecord | None:
        rows = self._query(f"SELECT {_PASSAGE_COLUMNS} FROM passages WHERE passage_id = ?", [passage_id])
        return PassageRecord(*rows[0]) if rows else None

    def neighbours(self, passage: PassageRecord) -> tuple[str | None, str | None]:
        """Ids of the passages just before and after this one in its document."""
        rows = self._query(
            "SELECT ordinal, passage_id FROM passages WHERE doc_id = ? AND ordinal IN (?, ?)",
            [passage.doc_id, passage.ordinal - 1, passage.ordinal + 1],
        )
        found = dict(rows)
        return found.get(passage.ordinal - 1), found.get(passage.ordinal + 1)

    def documents(self) -> list[DocumentRecord]:
        return list(self._documents.values())

    def document(self, doc_id: str) -> DocumentRecord | None:
        return self._documents.get(doc_id)

    def document_text(self, doc_id: str) -> tuple[str, str] | None:
        """A document's original text and its cleaned text."""
        rows = self._query("SELECT text, cleaned FROM documents WHERE doc_id = ?", [doc_id])
        return (rows[0][0], rows[0][1]) if rows else None

    def document_passages(self, doc_id: str) -> list[PassageRecord]:
        rows = self._query(f"SELECT {_PASSAGE_COLUMNS} FROM passages WHERE doc_id = ? ORDER BY ordinal", [doc_id])
        return [PassageRecord(*row) for row in rows]

    # -- internals -----------------------------------------------------------------------

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _load_documents(self) -> dict[str, DocumentRecord]:
        rows = self._query(
            f"SELECT {_DOCUMENT_COLUMNS}, (SELECT COUNT(*) FROM passages p WHERE p.doc_id = d.doc_id) "
            "FROM documents d ORDER BY source",
            [],
        )
        self._doc_ids = {int(r): str(d) for r, d in self._db.execute("SELECT rowid, doc_id FROM documents")}
        return {row[0]: DocumentRecord(*row) for row in rows}

    def _check_counts(self) -> None:
        stored, low, high = self._query("SELECT COUNT(*), MIN(rowid), MAX(rowid) FROM passages", [])[0]
        expected = self.manifest.get("passages")
        if stored != self.passage_count or stored != expected:
            raise IndexCorruptError(
                f"{self.path} is inconsistent: {self.passage_count} vectors, {stored} passages in the "
                f"database, {expected} in the manifest. Rebuild with `qa build`."
            )
        if stored and (low, high) != (1, stored):
            raise IndexCorruptError(
                f"{self.path / DATABASE} numbers its passages {low}..{high}, not 1..{stored} as the vectors "
                "do. Rebuild with `qa build`."
            )
        model = self.manifest.get("model") or {}
        if model.get("dimension") not in (None, self.dimension):
            raise IndexCorruptError(
                f"{self.path / VECTORS} holds {self.dimension}-dimensional vectors but the manifest says "
                f"{model.get('dimension')}. Rebuild with `qa build`."
            )


#: What every manifest a build writes holds, and the type each must have.
_MANIFEST_FIELDS: dict[str, type | tuple[type, ...]] = {
    "build_id": str,
    "passages": int,
    "documents": int,
    "model": dict,
    "chunker": dict,
}
_SQLITE_MAGIC = b"SQLite format 3\0"


def _check_manifest(build_dir: Path, manifest: dict[str, Any]) -> None:
    path = build_dir / MANIFEST
    for name, kind in _MANIFEST_FIELDS.items():
        value = manifest.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise IndexCorruptError(
                f"{path} has no valid {name!r} (found {value!r}); the file is damaged or was not written "
                "by `qa build`. Rebuild with `qa build`."
            )
    dimension = manifest["model"].get("dimension")
    if not isinstance(dimension, int) or isinstance(dimension, bool) or dimension <= 0:
        raise IndexCorruptError(f"{path} has no valid model dimension (found {dimension!r}). Rebuild with `qa build`.")


def _check_files(build_dir: Path, manifest: dict[str, Any]) -> None:
    """Both data files present, and of the size and sha256 the build recorded (when it did)."""
    recorded = manifest.get("files")
    for name in (VECTORS, DATABASE):
        path = build_dir / name
        if not path.is_file():
            raise IndexCorruptError(f"{path} is missing: rebuild with `qa build`")
        if not isinstance(recorded, dict):
            continue  # a build made before the manifest recorded its files
        want = recorded.get(name) or {}
        size = path.stat().st_size
        if size != want.get("bytes"):
            what = "truncated" if isinstance(want.get("bytes"), int) and size < want["bytes"] else "damaged"
            wrote = f"{want['bytes']:,}" if isinstance(want.get("bytes"), int) else repr(want.get("bytes"))
            raise IndexCorruptError(
                f"{path} is {what}: {size:,} bytes, but the build wrote {wrote}. Rebuild with `qa build`."
            )
        if _file_digest(path)["sha256"] != want.get("sha256"):
            raise IndexCorruptError(
                f"{path} is corrupt: its content no longer matches the checksum the build recorded. "
                "Rebuild with `qa build`."
            )


def _file_digest(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _open_database(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise IndexCorruptError(f"{path} is missing: rebuild with `qa build`")
    _check_sqlite_header(path)
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    except sqlite3.DatabaseError as exc:
        raise IndexCorruptError(f"{path} is unreadable ({exc}): rebuild with `qa build`") from None
    try:
        problems = [row[0] for row in db.execute("PRAGMA quick_check(5)").fetchall()]
        if problems != ["ok"]:
            found = " ".join(" ".join(map(str, problems)).split())
            raise IndexCorruptError(f"{path} is corrupt (SQLite quick_check: {found[:200]}): rebuild with `qa build`")
        db.execute("SELECT COUNT(*) FROM documents").fetchone()
        db.execute("SELECT COUNT(*) FROM passages").fetchone()
    except sqlite3.DatabaseError as exc:
        db.close()
        raise IndexCorruptError(f"{path} is unreadable ({exc}): rebuild with `qa build`") from None
    except IndexStoreError:
        db.close()
        raise
    return db


def _check_sqlite_header(path: Path) -> None:
    """The 100-byte SQLite header: the magic string, and a file as long as its page count says."""
    with open(path, "rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise IndexCorruptError(f"{path} is not an SQLite database (bad header): rebuild with `qa build`")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count in the header is valid when the change counter matches "version-valid-for".
    if header[24:28] == header[92:96] and pages and path.stat().st_size < page_size * pages:
        raise IndexCorruptError(
            f"{path} is truncated: {path.stat().st_size:,} bytes, its header says {page_size * pages:,}. "
            "Rebuild with `qa build`."
        )


def _read_vectors(path: Path, manifest: dict[str, Any] | None = None) -> Any:
    """The FAISS index: readable, an id map over the type the manifest records, ids 1..n.

    The manifest's ``vectors`` entry (absent: flat, as builds wrote before the choice) must
    match what the file holds, type, metric and HNSW ``M``; HNSW's ``efSearch`` is set
    from it here, since FAISS does not store it with the graph in every version.
    """
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        log.debug("faiss cannot read %s: %s", path, exc)
        raise IndexCorruptError(
            f"{path} cannot be read as a FAISS index (it is truncated or damaged): rebuild with `qa build`"
        ) from None
    if not isinstance(index, faiss.IndexIDMap2):
        raise IndexCorruptError(
            f"{path} holds a {type(index).__name__}, not the IndexIDMap2 a build writes: rebuild with `qa build`"
        )
    try:
        spec = VectorIndexSpec.from_manifest((manifest or {}).get("vectors"))
    except ValueError as exc:
        raise IndexCorruptError(
            f"{path.parent / MANIFEST} records {exc}, which this qa cannot open: rebuild with `qa build`"
        ) from None
    inner: Any = faiss.downcast_index(index.index)
    if spec.type == "flat":
        wanted: tuple[type, ...] = (faiss.IndexFlatIP,)
    elif spec.storage == "flat":
        wanted = (faiss.IndexHNSWFlat,)
    else:
        wanted = (faiss.IndexHNSWSQ,)
    right_type = isinstance(inner, wanted)  # a bool, so that ``inner`` stays Any for the checks below
    if not right_type or inner.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise IndexCorruptError(
            f"{path} holds a {type(inner).__name__}, but the manifest records a {spec.type} "
            f"({spec.storage}) inner-product index: rebuild with `qa build`"
        )
    if spec.type == "hnsw":
        if int(inner.hnsw.nb_neighbors(1)) != spec.M:
            raise IndexCorruptError(
                f"{path} is an HNSW graph with M={inner.hnsw.nb_neighbors(1)}, but the manifest records "
                f"M={spec.M}: rebuild with `qa build`"
            )
        inner.hnsw.efSearch = spec.ef_search
    ids = faiss.vector_to_array(index.id_map)
    if len(ids) != index.ntotal or not np.array_equal(ids, np.arange(1, index.ntotal + 1, dtype=ids.dtype)):
        raise IndexCorruptError(
            f"{path} has vector ids that are not the passage numbers 1..{index.ntotal}: rebuild with `qa build`"
        )
    return index


def _write_database(
    path: Path, documents: Sequence[Document], passages: Sequence[Passage], sentences: Sentences | None = None
) -> None:
    db = sqlite3.connect(path)
    try:
        db.executescript(_SCHEMA)
        if sentences is not None:
            spans, vectors = sentences
            if len(spans) != len(vectors):
                raise IndexStoreError(f"{len(spans)} sentences but {len(vectors)} sentence vectors")
            rows = np.ascontiguousarray(vectors, dtype=np.float32)
            db.executemany(
                "INSERT INTO sentences VALUES (?, ?, ?, ?)",
                [(i + 1, s, e, rows[n].tobytes()) for n, (i, s, e) in enumerate(spans)],
            )
        db.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    d.doc_id,
                    d.source,
                    d.title,
                    d.author,
                    d.url,
                    d.published,
                    d.outlet,
                    d.sha256,
                    d.encoding,
                    d.text,
                    cleaned_text(d.text, list(d.blocks)),
                )
                for d in documents
            ],
        )
        db.executemany(
            f"INSERT INTO passages ({_PASSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (rowid, p.passage_id, p.doc_id, p.ordinal, p.start, p.end, p.section, p.n_tokens, p.text)
                for rowid, p in enumerate(passages, start=1)
            ],
        )
        titles = {d.doc_id: d.title for d in documents}
        db.executemany(
            "INSERT INTO passages_fts (rowid, title, text) VALUES (?, ?, ?)",
            [(rowid, titles.get(p.doc_id, ""), p.text) for rowid, p in enumerate(passages, start=1)],
        )
        db.execute(
            "INSERT INTO documents_fts (rowid, title, text) "
            "SELECT rowid, title, CASE WHEN cleaned = '' THEN text ELSE cleaned END FROM documents"
        )
        db.commit()
    finally:
        db.close()


def _write_vectors(path: Path, vectors: Vectors, spec: VectorIndexSpec) -> None:
    faiss.write_index(build_vector_index(vectors, spec), str(path))
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


#: The manifest entries a build id's suffix hashes: what was built, not how long it took.
_BUILD_ID_KEYS = ("model", "chunker", "corpus")


def _new_build_id(index_dir: Path, manifest: dict[str, Any]) -> str:
    what = {k: manifest.get(k) for k in _BUILD_ID_KEYS}
    content = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:8]
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}Z"
    build_id = f"{stamp}-{content}"
    n = 2
    while (index_dir / build_id).exists():
        build_id = f"{stamp}-{content}-{n}"
        n += 1
    return build_id


def _same_probe(a: Any, b: Any) -> bool:
    if not isinstance(a, list) or not isinstance(b, list) or len(a) != len(b) or len(a) != PROBE_DIMS:
        return False
    return max(abs(float(x) - float(y)) for x, y in zip(a, b, strict=True)) <= PROBE_TOLERANCE


def _write_file(path: Path, content: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

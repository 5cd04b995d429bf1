"""The FAISS side of a build: which index type holds the vectors, building it, searching it.

Every index sits inside an ``IndexIDMap2`` whose ids are the build's passage positions
1..n. Those ids never leave :mod:`qa.index`: the store maps them to passage ids.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qa.embedding.base import Vectors
from qa.errors import IndexCorruptError
from qa.index.embedded.layout import MANIFEST
from qa.index.vector_index import VectorIndexSpec

log = logging.getLogger(__name__)
#: faiss as the type checker sees it lacks some of its classes (SearchParametersHNSW) and
#: types some constructors narrowly; those few uses go through this untyped alias.
_faiss: Any = faiss

#: A filtered search of HNSW over at most this many allowed passages, and under
#: EXACT_FILTER_SHARE of the collection, is answered exactly from their stored vectors rather
#: than through the graph: a graph walk cannot promise ``k`` hits when few passages qualify,
#: and walks far for them. Measured with the bitmap selector (docs/scaling.md, "Filtered search
#: at 1M"; 100 noisy stored vectors, k=100, p50): at 1M exact wins up to 2-3% (20,000 allowed:
#: 11.7 against 14.0 ms; 30,000: 23.6 against 25.3) and loses at 5% (37.8 against 2.1); at 100k
#: it wins up to 4% (1.30 against 1.48 ms) and loses from 5% (1.71 against 1.52; 20%: 10.7
#: against 1.5).
EXACT_FILTER_LIMIT = 20_000
EXACT_FILTER_SHARE = 0.04
#: A flat index of at least this many vectors is scanned through an fp16 copy of itself (half
#: the bytes to stream; the scan is memory-bound) and its candidates are rescored exactly from
#: the float32 vectors (:func:`half_scan`). On SciFact's 22,233 passages the scan after a
#: question's encode took 3.4 instead of 4.8 ms (docs/benchmarks.md, issue 16 target 2); below
#: a few thousand vectors the whole scan is a few hundredths of a millisecond and gains nothing.
HALF_SCAN_MIN = 5_000
#: Extra candidates the fp16 scan hands to the exact rescoring, so that a passage whose fp16
#: score rounds just below the k-th still reaches it: fp16 cosines are off by ~1e-4, and the
#: scan's top 100 held 99.98% of the exact top 100 on SciFact's test questions without them.
HALF_SCAN_MARGIN = 16


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


def half_scan(index: Any, spec: VectorIndexSpec, minimum: int = HALF_SCAN_MIN) -> Any | None:
    """An fp16 copy of a flat index (same ids) to scan instead of it, or ``None`` (HNSW, or too small).

    Made in memory when a build is opened (nothing is written): half again the flat index's
    memory, 17 MiB for SciFact's 22,233 passages. Below :data:`HNSW_THRESHOLD`, the only
    place flat is chosen, that is at most 37 MiB.
    """
    if spec.type != "flat" or int(index.ntotal) < minimum:
        return None
    inner: Any = faiss.downcast_index(index.index)
    count, dimension = int(inner.ntotal), int(inner.d)
    stored = faiss.rev_swig_ptr(inner.get_xb(), count * dimension).reshape(count, dimension)
    half = faiss.IndexIDMap2(
        _faiss.IndexScalarQuantizer(dimension, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    )
    half.add_with_ids(stored, faiss.vector_to_array(index.id_map))
    return half


def search_vectors(
    index: Any,
    spec: VectorIndexSpec,
    query: Vectors,
    k: int,
    allowed: Sequence[int] | None = None,
    half: Any | None = None,
    bitmap: np.ndarray | None = None,
    exact: tuple[np.ndarray, Vectors] | None = None,
) -> list[tuple[int, float]]:
    """The ``k`` nearest ids to one query in an index :func:`build_vector_index` made, best first.

    Behind ``Index.search``, and what scripts/bench_scale.py times. Flat is exact, with
    ``allowed`` applied inside FAISS by an ``IDSelectorBitmap`` (``bitmap``, :func:`id_bitmap` of
    ``allowed``, made here when not given). On HNSW the selector rides
    in ``SearchParametersHNSW`` (with the recorded efSearch; FAISS searches with
    ``max(efSearch, k)``), but a graph walk cannot promise ``k`` allowed hits when few
    passages qualify: an allowed set of at most :data:`EXACT_FILTER_LIMIT` passages and under
    :data:`EXACT_FILTER_SHARE` of the collection (:func:`scored_exactly`) is scored exactly from
    its stored vectors instead (``exact``: :func:`allowed_vectors` of ``allowed``, read here when
    not given), and a walk that comes back short falls back to the same exact scoring. A flat
    index with its :func:`half_scan` copy (``half``) is searched through the copy for ``k`` +
    :data:`HALF_SCAN_MARGIN` candidates, which are then scored exactly.
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
    if allowed is not None and scored_exactly(spec, len(allowed), int(index.ntotal)):
        keys, vectors = allowed_vectors(index, allowed) if exact is None else exact
        return _best(query, keys, vectors, k)
    params: Any = None
    if hnsw:
        params = _faiss.SearchParametersHNSW()
        params.efSearch = spec.ef_search
    elif allowed is not None:
        params = faiss.SearchParameters()
    selector = None  # kept referenced until the search returns: params holds a bare pointer
    if allowed is not None:
        bitmap = id_bitmap(allowed, int(index.ntotal)) if bitmap is None else bitmap
        selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
        params.sel = selector
    if half is not None and not hnsw:
        _, ids = half.search(query, min(k + HALF_SCAN_MARGIN, int(half.ntotal)), params=params)
        del selector
        return _rescored(index, query, ids[0][ids[0] >= 0], k)
    scores, ids = index.search(query, k, params=params)
    del selector
    hits = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
    if hnsw and allowed is not None and len(hits) < k:
        return _best(query, *allowed_vectors(index, allowed), k)
    return hits


def scored_exactly(spec: VectorIndexSpec, allowed: int, total: int) -> bool:
    """Whether a search of ``spec``'s index of ``total`` vectors filtered to ``allowed`` of them
    scores the allowed vectors one by one instead of walking the graph (:func:`search_vectors`)."""
    return spec.type == "hnsw" and allowed <= min(EXACT_FILTER_LIMIT, EXACT_FILTER_SHARE * total)


def allowed_vectors(index: Any, allowed: Sequence[int]) -> tuple[np.ndarray, Vectors]:
    """The allowed ids (ascending, distinct, stored) and their stored vectors, for exact filtered
    search; a store keeps them per filter, since reading them is most of that search's time
    (10,000 of 1M: about 3.5 of 4.2 ms; scoring them is 0.6 ms)."""
    keys = np.unique(np.asarray(allowed, dtype=np.int64))
    keys = keys[(keys >= 1) & (keys <= int(index.ntotal))]
    return keys, reconstruct(index, keys)


def id_bitmap(ids: Sequence[int] | np.ndarray, count: int) -> np.ndarray:
    """Ids 0..``count`` as FAISS's ``IDSelectorBitmap`` reads them: bit ``i & 7`` of byte ``i >> 3``.

    A bitmap, not an ``IDSelectorBatch``: the batch selector hashes every allowed id when it is
    made, which took 30 ms of a 20% filter's HNSW search at 1M passages against 1.8 ms with a
    bitmap (same results; docs/scaling.md). A store keeps one per filter.
    """
    bits = np.zeros(count + 1, dtype=bool)
    bits[np.asarray(ids, dtype=np.int64)] = True
    return np.packbits(bits, bitorder="little")


def _rescored(index: Any, query: Vectors, keys: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The ``k`` best of ``keys`` (ids 1..n) by inner product with their stored vectors, best first."""
    return _best(query, keys, reconstruct(index, keys), k)


def _best(query: Vectors, keys: np.ndarray, vectors: Vectors, k: int) -> list[tuple[int, float]]:
    """The ``k`` best of ``keys`` by inner product of their ``vectors`` with ``query``, best first."""
    if not len(keys):
        return []
    # einsum runs on this thread; a BLAS product would wake a thread pool that, on a
    # busy machine, waits for a scheduler tick (measured at 20k allowed: 8-16 ms instead of 6).
    scores = np.einsum("ij,j->i", vectors, query[0])
    k = min(k, len(keys))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(keys[i]), float(scores[i])) for i in top]


def reconstruct(index: Any, rowids: Sequence[int] | np.ndarray) -> Vectors:
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


def read_vectors(path: Path, entry: Any = None) -> Any:
    """The FAISS index: readable, an id map over the type the manifest records, ids 1..n.

    ``entry`` is the manifest's ``vectors`` entry (absent: flat, as builds wrote before the choice); it must
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
        spec = VectorIndexSpec.from_manifest(entry)
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


def write_vectors(path: Path, vectors: Vectors, spec: VectorIndexSpec) -> None:
    faiss.write_index(build_vector_index(vectors, spec), str(path))
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())

"""Which vector index a build holds: exact flat or HNSW, its parameters, and how one is chosen by size.

Both stores record it as the manifest's ``vectors`` entry and check it when a build is opened;
the embedded store builds and searches it with FAISS (:mod:`qa.index.embedded.vectors`),
PostgreSQL with pgvector (:mod:`qa.index.postgres`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

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

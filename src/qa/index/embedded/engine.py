"""The embedded store's engine: segments and commits as build folders of FAISS + SQLite files.

The lifecycle (:mod:`qa.index.lifecycle`) is the same for every store; this is what an index
folder does for it. A segment is written into a hidden temporary folder (the SQLite database
with passages, sentences and postings, the FAISS index), its files' sizes and sha256 recorded;
committing it writes the manifest last and renames the folder into place (both made durable);
switching is one ``os.replace`` of ``CURRENT``. Today a commit holds one segment, whose folder
is the commit's own (``index/<build id>/``, :mod:`qa.index.embedded.layout`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qa.embedding.identity import ModelIdentity
from qa.errors import IndexStoreError
from qa.index.embedded.cache import EmbeddingCache, model_key
from qa.index.embedded.database import open_database, write_database
from qa.index.embedded.folder import (
    build_lock,
    current_build_id,
    list_builds,
    publish,
    remove_partial_builds,
    switch_current,
)
from qa.index.embedded.integrity import check_files, file_digest
from qa.index.embedded.layout import DATABASE, TMP_PREFIX, VECTORS
from qa.index.embedded.store import EmbeddedStore
from qa.index.embedded.vectors import write_vectors
from qa.index.engine import Segment
from qa.index.manifest import BuildIdentity, read_manifest
from qa.index.prepare import Prepared
from qa.index.vector_index import VectorIndexSpec
from qa.ingest.documents import Document


class IndexFolder:
    """An index folder (``QA_INDEX_DIR``): build folders, ``CURRENT``, the embedding cache, the lock."""

    name = "embedded"

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self.where = str(index_dir)
        #: Segments written but not yet committed: their temporary folders.
        self._pending: dict[str, Path] = {}

    @contextmanager
    def lock(self) -> Iterator[None]:
        with build_lock(self.index_dir):
            remove_partial_builds(self.index_dir)  # the lock is held: whatever a killed build left is stale
            yield

    def commits(self) -> list[str]:
        return list_builds(self.index_dir)

    def current(self) -> str:
        return current_build_id(self.index_dir)

    def manifest(self, commit_id: str) -> dict[str, Any]:
        return read_manifest(self.index_dir / commit_id)

    def reuse(self, model: ModelIdentity) -> EmbeddingCache:
        """The folder's embedding cache, its new rows under a pending name until the build commits."""
        return EmbeddingCache(
            self.index_dir, model_key(model.to_json()), model.dimension, f"pending-{uuid.uuid4().hex}"
        )

    def write_segment(
        self, segment_id: str, documents: Sequence[Document], prepared: Prepared, spec: VectorIndexSpec
    ) -> Segment:
        if len(prepared.passages) != len(prepared.vectors):
            raise IndexStoreError(f"{len(prepared.passages)} passages but {len(prepared.vectors)} vectors")
        tmp = self.index_dir / f"{TMP_PREFIX}{segment_id}-{os.getpid()}"
        tmp.mkdir(parents=True)
        try:
            sentences = (prepared.spans, prepared.sentence_vectors)
            write_database(tmp / DATABASE, documents, prepared.passages, sentences)
            write_vectors(tmp / VECTORS, prepared.vectors, spec)
            # Sizes and sha256 of the data files, checked when the build is opened.
            files = {name: file_digest(tmp / name) for name in (VECTORS, DATABASE)}
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._pending[segment_id] = tmp
        return Segment(segment_id, {"files": files})

    def write_commit(self, commit_id: str, segments: Sequence[Segment], manifest: dict[str, Any]) -> None:
        """Publish the commit: its one segment's folder, the manifest written last, renamed to ``commit_id``."""
        if len(segments) != 1 or segments[0].segment_id not in self._pending:
            raise IndexStoreError(f"an index folder commits one segment it has just written, not {segments!r}")
        tmp = self._pending.pop(segments[0].segment_id)
        try:
            publish(tmp, self.index_dir / commit_id, manifest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def switch(self, commit_id: str) -> None:
        switch_current(self.index_dir, commit_id)

    def open_commit(self, commit_id: str, expected: BuildIdentity | None) -> EmbeddedStore:
        return EmbeddedStore.open_build(self.index_dir / commit_id, expected)

    def verify_commit(self, commit_id: str) -> None:
        """Every byte opening leaves out: the data files' sha256 and SQLite's ``quick_check`` (no FAISS
        index or store is loaded: at 1M passages that would be a second 1.7 GB graph in memory)."""
        build_dir = self.index_dir / commit_id
        check_files(build_dir, read_manifest(build_dir), checksums=True)
        open_database(build_dir / DATABASE, verify=True).close()

    def drop_unused(self, kept: Sequence[str]) -> list[str]:
        dropped = []
        for build_id in self.commits():
            if build_id not in kept:
                shutil.rmtree(self.index_dir / build_id, ignore_errors=True)
                dropped.append(build_id)
        return dropped

    def close(self) -> None:
        """Nothing is held open between calls."""

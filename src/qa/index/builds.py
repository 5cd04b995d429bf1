"""The build lifecycle of an index folder: writing a build, CURRENT, locking, pruning, rollback targets.

A build is written into a hidden temporary folder, renamed into place when complete, and
only then named in CURRENT (one ``os.replace``), so a reader sees either the old build or
the new one, never half of one. See :mod:`qa.index.layout` for the folder's names.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from qa.embedding.base import Vectors
from qa.errors import IndexNotFoundError, IndexStoreError
from qa.index.database import Sentences, write_database
from qa.index.integrity import file_digest
from qa.index.layout import CURRENT, DATABASE, LOCK, MANIFEST, TMP_PREFIX, VECTORS
from qa.index.manifest import FORMAT_VERSION, read_manifest
from qa.index.vectors import VectorIndexMode, VectorIndexSpec, choose_vector_index, write_vectors
from qa.ingest.chunking import Passage
from qa.ingest.documents import Document

log = logging.getLogger(__name__)

#: Builds kept after a new one: the live build and the one ``qa rollback`` goes back to.
KEEP_BUILDS = 2
#: Hex digits of the content hash at the end of a build id: enough to tell builds of one
#: second apart at a glance (the timestamp before it already orders them).
_BUILD_ID_HASH = 8


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

    The caller holds :func:`build_lock`; nothing visible changes until the final rename.
    ``started`` is the ``time.perf_counter()`` at which the build began (the manifest's
    ``build_seconds`` runs from then to the manifest).
    """
    if len(passages) != len(vectors):
        raise IndexStoreError(f"{len(passages)} passages but {len(vectors)} vectors")
    remove_partial_builds(index_dir)
    previous = _current_or_none(index_dir)
    build_id = _new_build_id(index_dir, manifest)
    tmp = index_dir / f"{TMP_PREFIX}{build_id}-{os.getpid()}"
    tmp.mkdir(parents=True)
    try:
        spec = (
            vector_index
            if isinstance(vector_index, VectorIndexSpec)
            else choose_vector_index(len(vectors), vector_index)
        )
        write_database(tmp / DATABASE, documents, passages, sentences)
        write_vectors(tmp / VECTORS, vectors, spec)
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
            "files": {name: file_digest(tmp / name) for name in (VECTORS, DATABASE)},
        }
        if started is not None:
            full["build_seconds"] = round(time.perf_counter() - started, 3)
        _publish(tmp, index_dir / build_id, full)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    switch_current(index_dir, build_id)
    prune_builds(index_dir, keep=KEEP_BUILDS)
    return build_id


def _current_or_none(index_dir: Path) -> str | None:
    try:
        return current_build_id(index_dir)
    except IndexNotFoundError:
        return None


def _publish(tmp: Path, final: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest last, then rename the finished folder into place (both made durable)."""
    _write_file(tmp / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    _fsync_dir(tmp)
    tmp.rename(final)
    _fsync_dir(final.parent)


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


def prune_builds(index_dir: Path, keep: int = KEEP_BUILDS) -> list[str]:
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


#: The manifest entries a build id's suffix hashes: what was built, not how long it took.
_BUILD_ID_KEYS = ("model", "chunker", "corpus")


def _new_build_id(index_dir: Path, manifest: dict[str, Any]) -> str:
    return new_build_id(manifest, lambda build_id: (index_dir / build_id).exists())


def new_build_id(manifest: dict[str, Any], taken: Callable[[str], bool]) -> str:
    """``<UTC time to the ms>-<hash of what was built>``, with ``-2``, ``-3``... while ``taken`` says so."""
    what = {k: manifest.get(k) for k in _BUILD_ID_KEYS}
    content = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:_BUILD_ID_HASH]
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}Z"
    build_id = f"{stamp}-{content}"
    n = 2
    while taken(build_id):
        build_id = f"{stamp}-{content}-{n}"
        n += 1
    return build_id


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

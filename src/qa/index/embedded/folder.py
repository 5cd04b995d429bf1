"""An index folder's commits on disk: ``CURRENT``, complete build folders, the lock, what interrupted writes leave.

A build is written into a hidden temporary folder, renamed into place when complete, and
only then named in CURRENT (one ``os.replace``), so a reader sees either the old build or
the new one, never half of one. See :mod:`qa.index.embedded.layout` for the folder's names and
:mod:`qa.index.embedded.engine` for the engine that writes them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qa.errors import IndexNotFoundError
from qa.index.embedded.layout import CURRENT, LOCK, MANIFEST, TMP_PREFIX

log = logging.getLogger(__name__)


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


def publish(tmp: Path, final: Path, manifest: dict[str, Any]) -> None:
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

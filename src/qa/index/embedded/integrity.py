"""Integrity checks of a build's files: both present, of the size the build recorded, and (verified
whole, :func:`check_files` with ``checksums``) of the sha256 it recorded.

Opening a build checks sizes only: hashing every byte is what made opening a 1M-passage build take
49-65 s (12 GB, docs/scaling.md) and a SciFact one 0.30 instead of 0.05 s (the sha256 of its
312 MB was 0.17 s of it, SQLite's quick_check 0.08 s; measured 2026-12-08). The checksums are
verified by ``qa check`` and by a server, in the background, once a build is open
(:meth:`qa.index.lifecycle.StoreLocation.verify`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qa.errors import IndexCorruptError
from qa.files import sha256_file
from qa.index.embedded.layout import DATABASE, VECTORS


def check_files(build_dir: Path, manifest: dict[str, Any], checksums: bool = False) -> None:
    """Both data files present, and of the size (and with ``checksums``, the sha256) the build recorded.

    A build folder holds one segment today: its files are the manifest's one segment's ``files``.
    """
    segments = manifest.get("segments")
    segment = segments[0] if isinstance(segments, list) and len(segments) == 1 else None
    recorded = segment.get("files") if isinstance(segment, dict) else None
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
        if checksums and file_digest(path)["sha256"] != want.get("sha256"):
            raise IndexCorruptError(
                f"{path} is corrupt: its content no longer matches the checksum the build recorded. "
                "Rebuild with `qa build`."
            )


def file_digest(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}

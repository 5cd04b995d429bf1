"""Checksums of files, read in blocks so that a large index or model file is never held in memory; and of
the source of modules, for cache keys that change when the code that made the cached thing does."""

from __future__ import annotations

import functools
import hashlib
import importlib
from pathlib import Path

#: Bytes read at a time (1 MiB, what each of the copies this replaced read).
BLOCK_BYTES = 1 << 20


def sha256_file(path: Path) -> str:
    """The hex sha256 of the file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


@functools.cache
def code_digest(*modules: str) -> str:
    """The hex sha256 of these modules' source files (by module name, in order), read once per process."""
    digest = hashlib.sha256()
    for name in modules:
        digest.update(Path(importlib.import_module(name).__file__ or "").read_bytes())
    return digest.hexdigest()

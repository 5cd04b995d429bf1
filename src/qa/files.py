"""Checksums of files, read in blocks so that a large index or model file is never held in memory."""

from __future__ import annotations

import hashlib
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

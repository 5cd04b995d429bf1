"""qa.files: the sha256 of a file, read in blocks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from qa.files import BLOCK_BYTES, sha256_file


@pytest.mark.parametrize("size", [0, 1, BLOCK_BYTES - 1, BLOCK_BYTES, 2 * BLOCK_BYTES + 7])
def test_sha256_file_is_the_sha256_of_the_bytes(tmp_path: Path, size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        sha256_file(tmp_path / "missing")


def test_code_digest_is_the_sha256_of_the_modules_sources_in_order() -> None:
    import hashlib
    from pathlib import Path

    import qa.files
    import qa.text
    from qa.files import code_digest

    both = hashlib.sha256(Path(qa.text.__file__).read_bytes() + Path(qa.files.__file__).read_bytes()).hexdigest()
    assert code_digest("qa.text", "qa.files") == both
    assert code_digest("qa.files", "qa.text") != both

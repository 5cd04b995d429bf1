"""Which files a corpus folder holds, and what changed in them since a build: a stat per file first.

:func:`scan_corpus` lists a corpus folder's articles and ``.meta.json`` sidecars with their
size, ``st_mtime_ns`` and sha256. Given the files a build recorded (its manifest's corpus
record, :meth:`CorpusScan.record`), a file whose size and mtime equal the record keeps the
recorded sha256 without being opened; only files that look changed, and new ones, are read
and hashed. So the staleness check of an unchanged folder (``qa build --if-stale``) and the
fingerprint of a rebuild read no file, and :func:`corpus_fingerprint` is the same hash of
every file's path and bytes it has always been.

What a stat cannot see, as git says of its index: a file rewritten with the same size whose
mtime is then forced back to the recorded one (``touch -d``, ``os.utime``, some copy and
restore tools) looks unchanged and keeps its old hash, and a build keeps the document read
from the old bytes, until the file's mtime moves again (``touch`` it).

A "racy" file is hashed anyway, as git does: one whose recorded mtime is not at least
:data:`RACY_MARGIN_NS` older than the moment the recording build began to read the corpus
(``read_at_ns``). Such a file may have been written again within the same mtime tick after
the build hashed it, leaving its size and mtime as recorded but its bytes not.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.files import sha256_file
from qa.ingest.extract import FORMATS, extractor_for

SUFFIXES = tuple(FORMATS)
META_SUFFIX = ".meta.json"
#: A recorded file is trusted by its stat only when its mtime is this much older than the moment
#: the recording build began reading: 2 s is the coarsest mtime tick of a filesystem a corpus may
#: sit on (FAT's; ext4, XFS, btrfs and tmpfs keep nanoseconds but stamp from a clock that advances
#: once per kernel tick, at most 10 ms at HZ=100), so a file written again after it was hashed
#: cannot have kept its recorded mtime.
RACY_MARGIN_NS = 2_000_000_000
#: Errors of ``stat`` that mean "no file there" (those ``Path.is_file()`` answers False to).
_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})


@dataclass(frozen=True)
class FileState:
    """What a build knew of one file: size, ``st_mtime_ns`` and the sha256 of its bytes."""

    size: int
    mtime_ns: int
    sha256: str


@dataclass
class CorpusScan:
    """A corpus folder's articles and sidecars, each with its state or the error reading it gave."""

    corpus_dir: Path
    #: ``time.time_ns()`` when the scan began: a later scan trusts a stat only if older than this.
    read_at_ns: int
    #: Article files, sorted by source path (what :func:`corpus_files` lists).
    articles: list[Path] = field(default_factory=list)
    #: Every readable article and sidecar by path relative to the corpus, in fingerprint order.
    files: dict[str, FileState] = field(default_factory=dict)
    #: Files that could not be read, by relative path, with the ``errno`` they gave.
    unreadable: dict[str, int | None] = field(default_factory=dict)
    #: Relative paths of every file the fingerprint counts, readable or not, in its order.
    order: list[str] = field(default_factory=list)
    #: How many files were opened and hashed (the rest kept their recorded hash).
    hashed: int = 0

    def sha256(self, source: str) -> str | None:
        """The sha256 of the file at ``source`` (relative path), ``None`` if absent or unreadable."""
        state = self.files.get(source)
        return state.sha256 if state else None

    def extractors(self) -> dict[str, dict[str, str]]:
        """Name and version of the extractor of each format the corpus holds (plain text needs none)."""
        formats = sorted({FORMATS[path.suffix.lower()] for path in self.articles})
        return {fmt: extractor.describe() for fmt in formats if (extractor := extractor_for(fmt)) is not None}

    def fingerprint(self) -> str:
        """A hash of every article and sidecar file's path and bytes (see :func:`corpus_fingerprint`)."""
        digest = hashlib.sha256()
        used = self.extractors()
        if used:  # a corpus of .txt and .md alone keeps the fingerprint it always had
            digest.update(json.dumps(used, sort_keys=True).encode() + b"\0")
        for rel in self.order:
            digest.update(rel.encode() + b"\0")
            state = self.files.get(rel)
            if state is not None:
                digest.update(bytes.fromhex(state.sha256))
            else:
                digest.update(f"unreadable: {self.unreadable.get(rel)}".encode())
        return digest.hexdigest()

    def record(self) -> dict[str, Any]:
        """What the manifest keeps for the next scan: ``read_at_ns`` and ``files`` as
        ``{path: "size mtime_ns sha256"}``. One string per file, not an object or a list: it lands in
        every manifest, which the embedded store writes indented (a list would take a line per item)."""
        return {
            "read_at_ns": self.read_at_ns,
            "files": {rel: f"{s.size} {s.mtime_ns} {s.sha256}" for rel, s in self.files.items()},
        }


def corpus_fingerprint(corpus_dir: Path, recorded: Mapping[str, Any] | None = None) -> str:
    """A hash of every article and sidecar file's path and bytes: changes when any of them does.

    A file that cannot be read counts by its path and the error, so the fingerprint
    changes when it becomes readable. Each extractor's name and version count too (see
    :meth:`CorpusScan.extractors`), so upgrading one rebuilds. With ``recorded`` (a live
    manifest's corpus record), files whose stat matches it are not read (:func:`scan_corpus`).
    """
    return scan_corpus(corpus_dir, recorded).fingerprint()


def extractors_used(corpus_dir: Path) -> dict[str, dict[str, str]]:
    """Name and version of the extractor of each format the corpus holds (plain text needs none)."""
    return CorpusScan(corpus_dir, 0, articles=list(corpus_files(corpus_dir))).extractors()


def scan_corpus(corpus_dir: Path, recorded: Mapping[str, Any] | None = None) -> CorpusScan:
    """Every article and sidecar under ``corpus_dir`` with its size, mtime and sha256.

    A file whose size and ``st_mtime_ns`` equal ``recorded``'s (a manifest's corpus record) and
    whose recorded mtime is safely older than the recording build's read (:data:`RACY_MARGIN_NS`)
    keeps its recorded sha256 unread; every other file is read and hashed.
    """
    previous, read_at = recorded_files(recorded)
    scan = CorpusScan(corpus_dir, time.time_ns(), articles=list(corpus_files(corpus_dir)))
    for path in scan.articles:
        source = path.relative_to(corpus_dir).as_posix()
        sidecar = source[: len(source) - len(path.name)] + path.stem + META_SUFFIX
        for part, rel in ((path, source), (path.with_name(path.stem + META_SUFFIX), sidecar)):
            try:
                info = part.stat()
            except OSError as exc:
                if exc.errno in _ABSENT:  # what Path.is_file() takes for "no such file", as before
                    continue
                # Seen by the listing but not to be examined: counted by its error.
                scan.order.append(rel)
                scan.unreadable[rel] = exc.errno
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            scan.order.append(rel)
            known = previous.get(rel)
            if known is not None and _trusted(known, info, read_at):
                scan.files[rel] = known  # kept unread
                continue
            try:
                digest = sha256_file(part)
            except OSError as exc:
                scan.unreadable[rel] = exc.errno
                continue
            scan.hashed += 1
            scan.files[rel] = FileState(info.st_size, info.st_mtime_ns, digest)
    return scan


def _trusted(known: FileState, info: os.stat_result, read_at_ns: int) -> bool:
    """The recorded sha256 still holds by a stat alone: same size and mtime, and not racy (the mtime
    was safely older than the recording build's read, so no write can hide in the same tick)."""
    same = (known.size, known.mtime_ns) == (info.st_size, info.st_mtime_ns)
    return same and known.mtime_ns + RACY_MARGIN_NS < read_at_ns


def recorded_files(recorded: Mapping[str, Any] | None) -> tuple[dict[str, FileState], int]:
    """The files a corpus record lists and when its build read them (nothing, from an older or damaged one)."""
    files = (recorded or {}).get("files")
    read_at = (recorded or {}).get("read_at_ns")
    if not isinstance(files, dict) or not isinstance(read_at, int):
        return {}, 0
    found: dict[str, FileState] = {}
    for rel, entry in files.items():
        parts = entry.split(" ") if isinstance(entry, str) else []
        if len(parts) == 3 and parts[0].isdigit() and parts[1].lstrip("-").isdigit() and len(parts[2]) == 64:
            found[rel] = FileState(int(parts[0]), int(parts[1]), parts[2])
    return found, read_at


def corpus_files(corpus_dir: Path) -> Iterator[Path]:
    """Article files under ``corpus_dir`` sorted by source path, hidden files and folders left out."""
    for path, problem in candidates(corpus_dir):
        if not problem:
            yield path


def candidates(corpus_dir: Path) -> Iterator[tuple[Path, str]]:
    """Every non-hidden path with an article suffix, and why it cannot be an article ('' if it can).

    Folders with an article suffix are left out silently. Nothing here opens a file, so a
    FIFO never blocks the build. Symbolic links to folders are not followed (``rglob``).
    """
    # Each path made relative once (pathlib's relative_to is most of a scan's time on 5,183 files).
    listed = sorted(((path.relative_to(corpus_dir).as_posix(), path) for path in corpus_dir.rglob("*")), key=_first)
    for rel, path in listed:
        if any(part.startswith(".") for part in rel.split("/")) or path.suffix.lower() not in SUFFIXES:
            continue
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            yield path, "it is a broken symbolic link" if path.is_symlink() else "it disappeared"
            continue
        except OSError as exc:  # a symlink loop, a permission problem on the way
            yield path, f"it cannot be examined ({exc.strerror or exc})"
            continue
        if stat.S_ISDIR(mode):
            continue
        if stat.S_ISREG(mode):
            yield path, ""
        else:
            yield path, f"it is not a regular file (it is a {_file_kind(mode)})"


def _first(item: tuple[str, Path]) -> str:
    return item[0]


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"  # pragma: no cover - no other kinds on Linux

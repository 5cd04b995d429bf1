"""What each store implements for the one build lifecycle (:mod:`qa.index.lifecycle`): an :class:`Engine`.

An engine knows how to write a segment, write a commit, switch to a commit, open one, verify one
whole, drop what no kept commit uses, and lock; and what a build may reuse (:class:`Reuse`). The
embedded store's engine is :class:`qa.index.embedded.engine.IndexFolder`, PostgreSQL's
:class:`qa.index.postgres.engine.PostgresEngine`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from qa.embedding.identity import ModelIdentity
from qa.index.manifest import BuildIdentity
from qa.index.prepare import Prepared, VectorSource
from qa.index.protocol import PassageStore
from qa.index.vector_index import VectorIndexSpec
from qa.ingest.documents import Document
from qa.ingest.extract import ExtractionCache


@dataclass(frozen=True)
class Segment:
    """What an engine wrote for one segment: its id and what the commit's manifest keeps of it
    (the engine's own entries: a build folder's file sizes and checksums, a database schema)."""

    segment_id: str
    record: dict[str, Any]


class Reuse(VectorSource, Protocol):
    """What a build reuses from the builds an engine keeps: vectors, passage boundaries, extractions."""

    def extractions(self) -> ExtractionCache | None:
        """Where a corpus folder's extracted files are kept between builds (``None``: not kept)."""
        ...

    def committed(self, commit_id: str, kept: Sequence[str]) -> None:
        """The build became ``commit_id``; only ``kept`` commits remain: forget what none of them uses."""
        ...

    def close(self) -> None: ...


class Engine(Protocol):
    """How one kind of store writes, switches, opens and drops segments and commits."""

    #: Where, for messages and logs: a folder, or a URL without its password.
    where: str
    #: The manifest's ``store`` entry: ``embedded`` or ``postgresql``.
    name: str

    def lock(self) -> AbstractContextManager[None]:
        """One writer at a time (another waits); taking it clears what an interrupted write left."""
        ...

    def commits(self) -> list[str]:
        """Complete commits, oldest first."""
        ...

    def current(self) -> str:
        """The live commit, or :class:`IndexNotFoundError` saying how to make one."""
        ...

    def manifest(self, commit_id: str) -> dict[str, Any]:
        """A commit's manifest as JSON (:class:`IndexStoreError` when it is missing or unreadable)."""
        ...

    def reuse(self, model: ModelIdentity) -> Reuse:
        """What a build with ``model`` may reuse (called under :meth:`lock`)."""
        ...

    def write_segment(
        self, segment_id: str, documents: Sequence[Document], prepared: Prepared, spec: VectorIndexSpec
    ) -> Segment:
        """Write one immutable segment: documents, passages, sentences, vectors (in ``spec``'s index), postings."""
        ...

    def write_commit(self, commit_id: str, segments: Sequence[Segment], manifest: dict[str, Any]) -> None:
        """Record a complete commit of ``segments`` with its manifest; nothing is live until :meth:`switch`."""
        ...

    def switch(self, commit_id: str) -> None:
        """Make ``commit_id`` the live commit, atomically for every reader."""
        ...

    def open_commit(self, commit_id: str, expected: BuildIdentity | None) -> PassageStore:
        """Open a commit for reading, checked whole and made as ``expected`` says (invariant 6)."""
        ...

    def verify_commit(self, commit_id: str) -> None:
        """Check what opening a commit leaves out so that it stays fast: every byte where the engine can
        (:class:`IndexCorruptError` naming what is wrong; :mod:`qa.index.embedded.integrity`)."""
        ...

    def drop_unused(self, kept: Sequence[str]) -> list[str]:
        """Drop every commit not in ``kept`` and the segments no kept commit uses; return the commits dropped."""
        ...

    def close(self) -> None: ...

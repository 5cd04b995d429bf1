"""One build lifecycle for every engine: build, switch, rollback, prune, staleness and the manifest.

The live corpus is a *commit*: the segments that hold it and the manifest that describes them
(model, chunker, corpus, counts, the commit it replaced). Today a build is a commit of one
segment holding every document; the verbs are already those of segments and commits, so that
a commit of several segments and delete sets needs no new lifecycle, only new engine work.

An :class:`Engine` is what differs between the stores, and it is kept narrow: write a segment,
write a commit, switch to a commit, open a commit, drop what no kept commit uses, lock. The
embedded store's engine (:mod:`qa.index.embedded.engine`: build folders, ``CURRENT``) and
PostgreSQL's (:mod:`qa.index.postgres.engine`: one schema per segment, ``qa.live``) are its two
implementations. Everything else is written here once: :class:`StoreLocation` builds under the
engine's lock, names the build, assembles its manifest, makes it live, keeps the live build and
the one it rolls back to (:data:`KEEP_BUILDS`), rolls back after opening the target exactly as
a server would, and says why a live build is stale.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qa.embedding.base import Embedder
from qa.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError, IndexStoreError, RollbackError
from qa.index.engine import Engine
from qa.index.manifest import FORMAT_VERSION, BuildIdentity, corpus_record, manifest_stale_reason
from qa.index.prepare import BuildReport, Prepared, Progress, prepare
from qa.index.protocol import PassageStore
from qa.index.vector_index import VectorIndexMode, VectorIndexSpec, choose_vector_index
from qa.ingest.changes import scan_corpus
from qa.ingest.chunking import ChunkerConfig
from qa.ingest.documents import Document, Skipped, read_corpus
from qa.ingest.extract import ExtractionCache

log = logging.getLogger(__name__)

#: Builds kept after a new one: the live build and the one ``qa rollback`` goes back to.
KEEP_BUILDS = 2
#: Hex digits of the content hash at the end of a build id: enough to tell builds of one
#: second apart at a glance (the timestamp before it already orders them).
_BUILD_ID_HASH = 8
#: The manifest entries a build id's suffix hashes: what was built, not how long it took.
_BUILD_ID_KEYS = ("model", "chunker", "corpus")
#: The corpus record's entries a build id's suffix leaves out: stat data, not content.
_CORPUS_STAT_KEYS = ("files", "read_at_ns")

#: A build's documents, or how to read them once the engine's caches are open (a corpus folder).
Documents = Sequence[Document] | Callable[[ExtractionCache | None], Sequence[Document]]


class StoreLocation:
    """Builds in one place, the live one named by a pointer only a complete build can take.

    What the service opens builds from, writes builds into, switches and rolls back, whichever
    engine holds them (:func:`qa.index.location.locate` picks it from a folder or a URL).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.where = engine.where

    # -- reading -------------------------------------------------------------------------------

    def current_build_id(self) -> str:
        return self.engine.current()

    def manifest(self, build_id: str) -> dict[str, Any]:
        return self.engine.manifest(build_id)

    def live_manifest(self) -> dict[str, Any]:
        return self.engine.manifest(self.engine.current())

    def open(self, expected: BuildIdentity | None, build_id: str | None = None) -> PassageStore:
        """The live build (or ``build_id``), refused unless it was made as ``expected`` says.

        ``expected=None`` skips the model and chunker check: only for readers that embed nothing.
        """
        return self.engine.open_commit(build_id or self.engine.current(), expected)

    def verify(self, build_id: str | None = None, opened: bool = False) -> tuple[str, float]:
        """Check the live build (or ``build_id``) whole: what opening checks, then every byte opening leaves
        out (``qa check``); ``opened``: the build was just opened, so only the latter (a server, in the
        background). Return which build and how many seconds it took."""
        build_id = build_id or self.engine.current()
        started = time.perf_counter()
        if not opened:
            self.engine.open_commit(build_id, None).close()
        self.engine.verify_commit(build_id)
        return build_id, time.perf_counter() - started

    def stale_reason(
        self, corpus_dir: Path, embedder: Embedder, config: ChunkerConfig, vector_index: VectorIndexMode = "auto"
    ) -> str | None:
        """Why the live build no longer matches the corpus and settings, or ``None`` if it does."""
        try:
            manifest = self.live_manifest()
        except IndexStoreError as exc:
            return str(exc)
        return manifest_stale_reason(manifest, corpus_dir, embedder, config, vector_index)

    # -- writing -------------------------------------------------------------------------------

    def build_corpus(
        self,
        corpus_dir: Path,
        embedder: Embedder,
        config: ChunkerConfig,
        progress: Progress | None = None,
        vector_index: VectorIndexMode = "auto",
    ) -> BuildReport:
        """Build the articles in ``corpus_dir`` into a new build and make it live (see :meth:`build`)."""
        # A stat per file against the live build's record: only files that look changed are hashed (and read).
        scan = scan_corpus(corpus_dir, self._live_corpus())
        corpus = corpus_record(corpus_dir, scan)
        skipped: list[Skipped] = []

        def read(extractions: ExtractionCache | None) -> Sequence[Document]:
            found = read_corpus(corpus_dir, extractions, scan)
            skipped.extend(found.skipped)
            # Every skipped file with its reason: `qa build` lists them, /healthz counts them.
            corpus["skipped"] = [{"source": s.source, "reason": s.reason} for s in found.skipped]
            return found.documents

        report = self.build(read, embedder, config, corpus, progress, vector_index)
        return dataclasses.replace(report, skipped=tuple(skipped))

    def build(
        self,
        documents: Documents,
        embedder: Embedder,
        config: ChunkerConfig,
        corpus: dict[str, Any],
        progress: Progress | None = None,
        vector_index: VectorIndexMode = "auto",
    ) -> BuildReport:
        """Build ``documents`` into a new build, make it live and drop builds no longer kept.

        ``vector_index`` (``QA_VECTOR_INDEX``) picks the vector index: ``auto`` by the passage
        count (:func:`qa.index.vector_index.choose_vector_index`), or ``flat``/``hnsw`` forced. A build
        that fails leaves the live one serving; builds into one place take turns (the engine's lock).
        """
        started = time.perf_counter()
        identity = embedder.identity()
        with self.engine.lock():
            reuse = self.engine.reuse(identity)
            try:
                if callable(documents):  # a corpus folder, read with the engine's extraction cache open
                    documents = documents(reuse.extractions())
                prepared = prepare(documents, embedder, config, reuse, progress, identity)
                record = {
                    "model": identity.to_json(),
                    "chunker": config.describe(),
                    "corpus": corpus,
                    "embedded": prepared.embedded,
                    "reused": len(prepared.passages) - prepared.embedded,
                }
                build_id = self.commit(documents, prepared, record, vector_index, started)
                reuse.committed(build_id, self.engine.commits())
            finally:
                reuse.close()
        seconds = time.perf_counter() - started
        log.info(
            "build %s in %s: %d passages (%d embedded, %d reused) in %.1f s",
            build_id,
            self.where,
            len(prepared.passages),
            prepared.embedded,
            len(prepared.passages) - prepared.embedded,
            seconds,
        )
        return BuildReport(build_id, len(documents), len(prepared.passages), seconds, prepared.embedded)

    def commit(
        self,
        documents: Sequence[Document],
        prepared: Prepared,
        record: dict[str, Any],
        vector_index: VectorIndexMode | VectorIndexSpec = "auto",
        started: float | None = None,
    ) -> str:
        """Write prepared passages as a segment, commit it, make it live, prune; return the build id.

        The caller holds the engine's lock (:meth:`build` does). ``record`` is what the manifest
        says of the build beyond its counts (model, chunker, corpus, ...); ``started`` is the
        ``time.perf_counter()`` the build began at (the manifest's ``build_seconds`` runs from it).
        """
        previous = self._current_or_none()
        taken = set(self.engine.commits())
        build_id = new_build_id(record, taken.__contains__)
        spec = (
            vector_index
            if isinstance(vector_index, VectorIndexSpec)
            else choose_vector_index(len(prepared.passages), vector_index)
        )
        segment = self.engine.write_segment(build_id, documents, prepared, spec)
        manifest = {
            **record,
            "format_version": FORMAT_VERSION,
            "build_id": build_id,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "documents": len(documents),
            "passages": len(prepared.passages),
            "vectors": spec.describe(),
            # What was live when this build was made: what `qa rollback` goes back to.
            "previous_build": previous,
            "store": self.engine.name,
            "segments": [{"id": segment.segment_id, **segment.record}],
        }
        if started is not None:
            manifest["build_seconds"] = round(time.perf_counter() - started, 3)
        self.engine.write_commit(build_id, [segment], manifest)
        self.engine.switch(build_id)
        self.prune()
        return build_id

    def rollback(self, expected: BuildIdentity | None) -> tuple[str, str]:
        """Make the build the live one replaced live again; return ``(rolled back from, rolled back to)``.

        The target is opened and checked first, exactly as a server would open it, against
        ``expected``: a build made with another model or chunker, or a damaged one, is refused
        and the live build stays. Builds are never deleted here; a build in progress is waited
        for (both hold the engine's lock).
        """
        self.engine.current()  # no index at all: say so before taking the lock
        with self.engine.lock():
            current = self.engine.current()
            target = self.previous_build_id(current)
            if target is None:
                raise RollbackError(
                    f"there is no previous build to roll back to in {self.where}: {current} is the only one "
                    f"kept (a rollback does not chain). Build again with `qa build` instead."
                )
            try:
                self.open(expected, target).close()
                self.engine.verify_commit(target)  # every byte: an operator's command, not a server's open
            except IndexMismatchError as exc:
                raise IndexMismatchError(f"refusing to roll back to build {target}: {exc}") from None
            except IndexStoreError as exc:
                raise IndexCorruptError(f"refusing to roll back to build {target}: {exc}") from None
            self.engine.switch(target)
        log.info("rolled back %s: live %s -> %s", self.where, current, target)
        return current, target

    def previous_build_id(self, current: str | None = None) -> str | None:
        """The build to roll back to: the one that was live when ``current`` (default: the live one) was made.

        ``None`` when it is not kept (the first build, or after a rollback, whose target's own
        previous build has been dropped). When the live build's manifest is unreadable, or was
        written before builds recorded ``previous_build``, it is the newest build older than it.
        """
        current = current or self.engine.current()
        builds = self.engine.commits()
        try:
            manifest = self.engine.manifest(current)
        except IndexStoreError:  # the live build is damaged: exactly when a rollback is wanted
            manifest = {}
        if "previous_build" in manifest:
            previous = manifest["previous_build"]
            return previous if isinstance(previous, str) and previous != current and previous in builds else None
        older = [b for b in builds if b < current]
        return older[-1] if older else None

    def prune(self, keep: int = KEEP_BUILDS) -> list[str]:
        """Drop every build but the live one and the ones it rolls back to; return what went.

        ``keep`` counts the live build: with 2, the live build and its previous one stay. After a
        rollback followed by a new build, the build that was rolled back from is the one dropped,
        not the build that was serving.
        """
        builds = self.engine.commits()
        chain = [b for b in [self._current_or_none()] if b is not None]
        while chain and len(chain) < keep:
            try:
                previous = self.engine.manifest(chain[-1]).get("previous_build")
            except IndexStoreError:
                break
            if not isinstance(previous, str) or previous not in builds or previous in chain:
                break
            chain.append(previous)
        # Builds made before manifests recorded their previous build: keep the newest.
        for build_id in reversed(builds):
            if len(chain) >= keep:
                break
            if build_id not in chain:
                chain.append(build_id)
        dropped = self.engine.drop_unused(chain)
        for build_id in dropped:
            log.info("dropped build %s from %s", build_id, self.where)
        return dropped

    def close(self) -> None:
        self.engine.close()

    def _live_corpus(self) -> dict[str, Any] | None:
        """The live build's corpus record, ``None`` when there is no readable one."""
        try:
            corpus = self.live_manifest().get("corpus")
        except IndexStoreError:
            return None
        return corpus if isinstance(corpus, dict) else None

    def _current_or_none(self) -> str | None:
        try:
            return self.engine.current()
        except IndexNotFoundError:
            return None


def new_build_id(record: dict[str, Any], taken: Callable[[str], bool]) -> str:
    """``<UTC time to the ms>-<hash of what was built>``, with ``-2``, ``-3``... while ``taken`` says so."""
    what = {k: record.get(k) for k in _BUILD_ID_KEYS}
    if isinstance(what["corpus"], dict):  # the files' mtimes and the time they were read are not what was built
        what["corpus"] = {k: v for k, v in what["corpus"].items() if k not in _CORPUS_STAT_KEYS}
    content = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:_BUILD_ID_HASH]
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}Z"
    build_id = f"{stamp}-{content}"
    n = 2
    while taken(build_id):
        build_id = f"{stamp}-{content}-{n}"
        n += 1
    return build_id

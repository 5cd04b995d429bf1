"""The build a running server answers from, swapped for a new one between requests.

:class:`LiveIndex` holds one open :class:`~qa.search.retrieval.Searcher` at a time. A request
takes a :class:`Lease` on it and gives it back when done; a reload opens the build
``CURRENT`` now names, makes it the one new leases get, and closes the old build only
when its last lease is returned, so requests in flight finish on the build they started
on. A build that cannot be opened (damaged, or made with another model or chunker)
is logged and the old one keeps serving. A watcher thread polls ``CURRENT`` every
``interval`` seconds; :meth:`LiveIndex.reload` does the same on demand.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from qa.embedding.base import Embedder
from qa.errors import IndexStoreError, ModelError, QAError
from qa.index.lifecycle import StoreLocation
from qa.index.location import locate
from qa.index.manifest import BuildIdentity
from qa.index.protocol import PassageStore
from qa.search.retrieval import Searcher
from qa.service import open_searcher

log = logging.getLogger(__name__)


class NotServing(Exception):
    """No build is open; ``cause`` says why (``None`` before the first attempt)."""

    def __init__(self, cause: QAError | None) -> None:
        super().__init__(str(cause) if cause else "no build is open")
        self.cause = cause


@dataclass
class _Build:
    searcher: Searcher
    users: int = 0
    retired: bool = False


@dataclass(frozen=True)
class ReloadResult:
    changed: bool
    build_id: str
    previous_build_id: str | None


class Lease:
    """One request's hold on a build; :meth:`release` exactly once."""

    def __init__(self, owner: LiveIndex, build: _Build) -> None:
        self._owner = owner
        self._build: _Build | None = build
        self.searcher = build.searcher

    def release(self) -> None:
        build, self._build = self._build, None
        if build is not None:
            self._owner._release(build)


class LiveIndex:
    """The open build of a location (an index folder or a database), reloaded when its live build changes.

    ``expected`` is what every build must have been made with; it is computed once, by the caller.
    """

    def __init__(self, where: Path | StoreLocation, embedder: Embedder, expected: BuildIdentity) -> None:
        #: Where builds live: the index folder, or a database (where every replica sees the same live build).
        self.location = locate(where)
        #: The same, for messages: a folder, or a URL without its password.
        self.where = self.location.where
        self.embedder = embedder
        self.expected = expected
        #: Why nothing is being served (``None`` while a build is open).
        self.error: QAError | None = None
        self.reloads_ok = 0
        self.reloads_failed = 0
        self._build: _Build | None = None
        self._failed_build: str | None = None
        self._lock = threading.Lock()  # guards _build and the lease counts
        self._reload_lock = threading.Lock()  # one reload at a time (watcher or admin)
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- what requests use ------------------------------------------------------------------

    def acquire(self) -> Lease:
        """A lease on the open build, or :class:`NotServing`."""
        with self._lock:
            build = self._build
            if build is None:
                raise NotServing(self.error)
            build.users += 1
            return Lease(self, build)

    @contextmanager
    def lease(self) -> Iterator[Searcher]:
        held = self.acquire()
        try:
            yield held.searcher
        finally:
            held.release()

    def current(self) -> PassageStore | None:
        """The open build, for reading its figures (not for queries: take a lease)."""
        build = self._build
        return build.searcher.store if build is not None else None

    # -- opening and reloading ----------------------------------------------------------------

    def open(self) -> None:
        """Open the build CURRENT names now; on failure remember why (the watcher retries later)."""
        with suppress(IndexStoreError, ModelError):  # logged and remembered by reload
            self.reload()

    def reload(self, force: bool = False) -> ReloadResult:
        """Switch to the build CURRENT names if it is not the open one (or ``force``).

        Raises :class:`~qa.errors.IndexStoreError` or :class:`~qa.errors.ModelError` when
        that build cannot be opened; whatever was open keeps serving.
        """
        with self._reload_lock:
            open_store = self.current()
            previous = open_store.build_id if open_store is not None else None
            try:
                build_id = self.location.current_build_id()
                if build_id == previous and not force:
                    return ReloadResult(False, build_id, previous)
                searcher = open_searcher(self.location, self.embedder, self.expected, build_id)
            except (IndexStoreError, ModelError) as exc:
                self._failed(exc, previous)
                raise
            except Exception as exc:  # an OS or library error the store did not name: still a bad build
                error = IndexStoreError(f"cannot open the build in {self.where}: {type(exc).__name__}: {exc}")
                self._failed(error, previous)
                raise error from exc
            self._swap(searcher)
            self._failed_build = None
            if previous is not None:
                self.reloads_ok += 1
            store = searcher.store
            log.info("now serving build %s (%d passages; was %s)", store.build_id, store.passage_count, previous)
            self._verify_soon(store.build_id)
            return ReloadResult(True, store.build_id, previous)

    def poll(self) -> None:
        """One watcher step: reload if CURRENT names another build than the open one.

        A build that already failed to open is not retried until CURRENT changes again
        (an explicit :meth:`reload` always tries).
        """
        try:
            build_id = self.location.current_build_id()
        except IndexStoreError:
            return  # nothing new to switch to
        open_store = self.current()
        if build_id == self._failed_build or (open_store is not None and build_id == open_store.build_id):
            return
        with suppress(IndexStoreError, ModelError):  # logged and counted by reload
            self.reload()

    def start_watching(self, interval: float) -> None:
        """Poll CURRENT every ``interval`` seconds on a daemon thread (0 means never)."""
        if interval <= 0 or self._watcher is not None:
            return
        self._watcher = threading.Thread(target=self._watch, args=(interval,), name="qa-reload-watcher", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        """Stop watching and close the open build once its last lease is returned."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
        with self._lock:
            build, self._build = self._build, None
            if build is not None:
                build.retired = True
            idle = build is not None and build.users == 0
        if build is not None and idle:
            build.searcher.store.close()
        self.location.close()

    # -- internals ------------------------------------------------------------------------------

    def _verify_soon(self, build_id: str) -> None:
        """Check the build just opened whole, on a thread of its own: opening checked sizes, not every
        byte (qa.index.embedded.integrity), so that a reload costs little; a build that fails is no
        longer served (503 with the reason, as a build that fails to open), and not retried until
        the live build changes."""

        def verify() -> None:
            try:
                self.location.verify(build_id, opened=True)
            except IndexStoreError as exc:
                self._unverified(build_id, exc)
            except Exception:  # the verifier must never take the server down
                log.exception("verifying build %s failed", build_id)

        threading.Thread(target=verify, name=f"qa-verify-{build_id}", daemon=True).start()

    def _unverified(self, build_id: str, exc: IndexStoreError) -> None:
        with self._lock:
            build = self._build
            if build is None or build.searcher.store.build_id != build_id:
                return  # another build is open by now: nothing to retire
            self._build = None
            build.retired = True
            idle = build.users == 0
            self.error = exc
            self._failed_build = build_id
            self.reloads_failed += 1
        log.error("build %s failed verification; no longer serving it: %s", build_id, exc)
        if idle:
            build.searcher.store.close()

    def _watch(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.poll()
            except Exception:  # the watcher must outlive any one bad poll
                log.exception("checking %s for a new build failed", self.where)

    def _swap(self, searcher: Searcher) -> None:
        with self._lock:
            old, self._build = self._build, _Build(searcher)
            self.error = None
            if old is not None:
                old.retired = True
            idle = old is not None and old.users == 0
        if old is not None and idle:
            old.searcher.store.close()

    def _release(self, build: _Build) -> None:
        with self._lock:
            build.users -= 1
            idle = build.retired and build.users == 0
        if idle:
            build.searcher.store.close()

    def _failed(self, exc: QAError, previous: str | None) -> None:
        try:
            self._failed_build = self.location.current_build_id()
        except IndexStoreError:
            self._failed_build = None
        if previous is None:
            self.error = exc
            log.error("no index to serve: %s", exc)
        else:
            self.reloads_failed += 1
            log.error("cannot switch to the new build; still serving %s: %s", previous, exc)

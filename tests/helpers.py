"""Constants and the fake embedder shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from qa.config import Settings
from qa.embedding.base import Embedder, Vectors, probe_identity
from qa.embedding.identity import ModelIdentity
from qa.index.embedded.folder import current_build_id
from qa.index.embedded.store import EmbeddedStore
from qa.index.manifest import BuildIdentity
from qa.index.protocol import PassageStore
from qa.index.records import PassageRecord
from qa.ingest.chunking import ChunkerConfig

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SHARED = ROOT.parent / "shared"
QUESTIONS = SHARED / "eval" / "questions.jsonl"
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


class FakeEmbedder:
    """Hashes words into a small vector: deterministic, instant, and similar texts score higher."""

    revision = "test"
    max_seq_length = 256

    def __init__(self, dimension: int = 64, seed: str = "a", name: str = "fake-hashing") -> None:
        self.dimension = dimension
        self.seed = seed
        self.name = name
        self.embedded = 0

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(f"{self.seed}:{word}".encode(), digest_size=8).digest()
                out[row, digest[0] % self.dimension] += 1.0 if digest[1] & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm == 0.0:
                out[row, 0], norm = 1.0, 1.0
            out[row] /= norm
        self.embedded += len(texts)
        return out

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, list[Vectors]]:
        """Pools nothing: each sentence is hashed from its own words, as a text of its own."""
        vectors = self.embed_batch(texts)
        flat = [t[s:e] for t, own in zip(texts, spans, strict=True) for s, e in own]
        pooled = self.embed_batch(flat) if flat else np.zeros((0, self.dimension), dtype=np.float32)
        bounds = np.cumsum([0, *(len(own) for own in spans)])
        return vectors, [pooled[a:b] for a, b in itertools.pairwise(bounds)]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_TOKEN_RE.findall(t)) + 2 for t in texts]

    def identity(self) -> ModelIdentity:
        return probe_identity(self)


class FailingEmbedder(FakeEmbedder):
    """Raises on its n-th call, like a model crashing halfway through a build (call 1 is the probe)."""

    def __init__(self, fail_on: int) -> None:
        super().__init__()
        self.calls = 0
        self.fail_on = fail_on

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("simulated failure while embedding")
        return super().embed_batch(texts)


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Run ``app`` under a real uvicorn on 127.0.0.1 (a free port) in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="test-uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def qa_env() -> dict[str, str]:
    """The environment a ``qa`` subprocess runs with: offline, no ``QA_*`` setting from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    return env


def qa_command() -> str:
    """The ``qa`` script installed beside the running interpreter."""
    return str(Path(sys.executable).parent / "qa")


@contextmanager
def qa_serve(index_dir: Path, log_path: Path, ready_in: float = 90) -> Iterator[str]:
    """``qa serve`` in its own process on 127.0.0.1 (a free port), once /readyz answers 200; its base URL."""
    port = free_port()
    command = [qa_command(), "serve", "--index", str(index_dir), "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=qa_env(), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_in
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"qa serve exited with {process.returncode}:\n{log_path.read_text(errors='replace')}"
                )
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"qa serve was not ready in {ready_in} s:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.25)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def all_passages(store: PassageStore) -> list[PassageRecord]:
    """Every passage of a build, in build order (through the store's own verbs)."""
    found = [p for d in store.documents() for p in store.document_passages(d.doc_id)]
    return sorted(found, key=lambda p: p.position)


def manifest_json(build: Path) -> dict[str, Any]:
    """A build's manifest.json as written, to damage or inspect it."""
    manifest: dict[str, Any] = json.loads((build / "manifest.json").read_text())
    return manifest


def save_manifest_json(build: Path, manifest: dict[str, Any]) -> None:
    (build / "manifest.json").write_text(json.dumps(manifest))


def open_index(settings: Settings, embedder: Embedder, config: ChunkerConfig | None = None) -> EmbeddedStore:
    """The build CURRENT names in ``settings.index_dir``, checked against ``embedder`` and ``config``."""
    return EmbeddedStore.open(settings.index_dir, BuildIdentity.of(embedder, config or ChunkerConfig()))


def build_dir(settings: Settings) -> Path:
    """The folder of the build CURRENT names in ``settings.index_dir``."""
    return settings.index_dir / current_build_id(settings.index_dir)


#: How far back :func:`age` sets files' mtimes: well past RACY_MARGIN_NS, so a stat is trusted.
AGED_NS = 60 * 1_000_000_000


def age(folder: Path) -> None:
    """Every file's mtime a minute back: written long before any build reads them (not racy)."""
    old = time.time_ns() - AGED_NS
    for path in folder.rglob("*"):
        os.utime(path, ns=(old, old))

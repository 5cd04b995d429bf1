"""Constants and the fake embedder shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.embedding import Vectors

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

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_TOKEN_RE.findall(t)) + 2 for t in texts]

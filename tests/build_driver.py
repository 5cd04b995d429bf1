"""A build that stops at a chosen stage and waits there to be killed, for tests/index/test_pipeline.py.

    python -m tests.build_driver CORPUS INDEX MARKER embedding|writing
    python -m tests.build_driver CORPUS postgresql://... MARKER postgres-writing

It writes MARKER once it is inside the stage, then sleeps: the test SIGKILLs it there.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from qa.embedding.base import Vectors
from qa.index import sentence_vectors as indexing
from qa.index.embedded import engine
from qa.index.location import build_index
from qa.index.vector_index import VectorIndexSpec
from qa.ingest.chunking import ChunkerConfig
from tests.helpers import FakeEmbedder

STALL_SECONDS = 600


class StallingEmbedder(FakeEmbedder):
    """Embeds normally until call ``stall_on``, then announces itself and hangs."""

    def __init__(self, marker: Path, stall_on: int | None) -> None:
        super().__init__()
        self.marker = marker
        self.stall_on = stall_on
        self.calls = 0

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        if self.calls == self.stall_on:
            self.marker.write_text("embedding")
            time.sleep(STALL_SECONDS)
        return super().embed_batch(texts)


def main(corpus: Path, index: str, marker: Path, stage: str) -> None:
    if stage == "embedding":
        indexing.EMBED_CHUNK = 1
        # Call 1 is the model probe; call 2 embeds (and caches) one new passage; call 3 hangs.
        embedder = StallingEmbedder(marker, stall_on=3)
    elif stage == "writing":
        embedder = StallingEmbedder(marker, stall_on=None)
        write_vectors = engine.write_vectors

        def stalled(path: Path, vectors: Vectors, spec: VectorIndexSpec) -> None:
            write_vectors(path, vectors, spec)
            marker.write_text("writing")
            time.sleep(STALL_SECONDS)

        engine.write_vectors = stalled
    elif stage == "postgres-writing":
        from qa.index.location import locate
        from qa.index.postgres import loading as postgres_loading

        render = postgres_loading.render

        def stalled_render(template: str, schema: str, **numbers: int) -> object:
            if template == postgres_loading.BUILD_INDEXES:  # rows copied, inside the build's transaction
                marker.write_text("postgres-writing")
                time.sleep(STALL_SECONDS)
            return render(template, schema, **numbers)

        postgres_loading.render = stalled_render  # type: ignore[assignment]
        locate(index).build_corpus(corpus, FakeEmbedder(), ChunkerConfig())
        return
    else:
        raise SystemExit(f"unknown stage {stage!r}")
    build_index(corpus, Path(index), embedder, ChunkerConfig())


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4])

#!/usr/bin/env python
"""Copy the vectors of a PostgreSQL store's live build into an index folder's embedding cache.

    python scripts/cache_from_postgres.py --store postgresql://... --index bench-results/index-scifact

A following `qa build --index` of the same corpus with the same model then embeds nothing:
both stores hold the very same vectors, so a comparison of the two (docs/postgresql.md,
SciFact parity) measures the stores, not two runs of the model. Vectors are keyed as the
cache keys them (the model's identity, the sha256 of the text the model saw).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from qa.index.embedded.cache import EmbeddingCache, model_key
from qa.index.location import locate
from qa.index.postgres.schema import schema_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--index", type=Path, required=True)
    args = parser.parse_args()
    location = locate(args.store)
    build_id = location.current_build_id()
    identity = location.manifest(build_id)["model"]
    location.close()
    cache = EmbeddingCache(args.index, model_key(identity), int(identity["dimension"]), f"copied-{build_id}")
    schema = sql.Identifier(schema_name(build_id))
    copied = 0
    with psycopg.connect(args.store) as conn:
        for query in (
            sql.SQL("SELECT DISTINCT ON (text_key) text_key, embedding::text FROM {}.passages").format(schema),
            sql.SQL("SELECT DISTINCT ON (text_key) text_key, vector FROM {}.sentences").format(schema),
        ):
            rows = conn.execute(query).fetchall()
            vectors = [
                np.array(v.strip("[]").split(","), dtype=np.float32)
                if isinstance(v, str)
                else np.frombuffer(bytes(v), dtype=np.float32)
                for _, v in rows
            ]
            cache.put([str(k) for k, _ in rows], np.vstack(vectors) if vectors else np.zeros((0, 1)))
            copied += len(rows)
    cache.close()
    print(f"{copied} vectors of build {build_id} copied into {args.index}")


if __name__ == "__main__":
    main()

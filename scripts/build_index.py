#!/usr/bin/env python
"""Rebuild the index from the project's seeds/ into its index/: `qa build` with the project's defaults.

    .venv/bin/python scripts/build_index.py            # always rebuild
    .venv/bin/python scripts/build_index.py --if-stale # only when articles or settings changed

Extra arguments are passed to `qa build` (see `qa build --help`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from qa.cli.commands import main

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    main(["build", "--corpus", str(ROOT / "seeds"), "--index", str(ROOT / "index"), *sys.argv[1:]])

"""The index package's layers: two engines that never import each other, and shared code that names neither.

What both stores share (protocol, records, manifest, lifecycle, BM25, ...) sits beside the two
engine folders; only :mod:`qa.index.location` picks an engine, by a folder or a URL.
"""

from __future__ import annotations

import ast
from pathlib import Path

INDEX = Path(__file__).resolve().parents[2] / "src" / "qa" / "index"
ENGINES = ("embedded", "postgres")
#: The one shared module that may name an engine: it maps a folder or a URL to one.
CHOOSER = "location.py"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_neither_engine_imports_the_other() -> None:
    for engine in ENGINES:
        other = next(e for e in ENGINES if e != engine)
        for path in (INDEX / engine).rglob("*.py"):
            crossing = sorted(m for m in _imports(path) if m.startswith(f"qa.index.{other}"))
            assert not crossing, f"{path.relative_to(INDEX)} imports {crossing}"


def test_shared_index_code_names_no_engine_but_the_chooser() -> None:
    for path in INDEX.glob("*.py"):
        if path.name == CHOOSER:
            continue
        naming = sorted(m for m in _imports(path) if m.startswith(tuple(f"qa.index.{e}" for e in ENGINES)))
        assert not naming, f"{path.name} imports {naming}"


def test_the_chooser_names_both_engines() -> None:
    """The check above is not vacuous: location.py does import the engines."""
    imported = _imports(INDEX / CHOOSER)
    assert {"qa.index.embedded.engine", "qa.index.postgres.engine"} <= imported

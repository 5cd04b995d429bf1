"""``qa.__all__`` is the library's deliberate public surface: what a program using qa calls.

Changing it means changing EXPECTED here too, so that adding or dropping a public name is a decision.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import qa
from tests.helpers import ROOT

EXPECTED = {
    "__version__",
    # configuration and embedders
    "Settings",
    "Embedder",
    "make_encoder",
    # building and maintaining an index
    "ChunkerConfig",
    "build_index",
    "BuildReport",
    "stale_reason",
    "rollback",
    # opening and asking
    "EmbeddedStore",
    "BuildIdentity",
    "Searcher",
    "Service",
    "Answer",
    "Result",
    # citing and checking quotes
    "Citation",
    "PassageView",
    "resolve_passage",
    "csl_item",
    "bibtex_entry",
    "markdown_report",
    "Verifier",
    "VerifyReport",
    # errors
    "QAError",
    "CorpusError",
    "ModelError",
    "IndexStoreError",
    "IndexNotFoundError",
    "IndexCorruptError",
    "IndexMismatchError",
    "RollbackError",
    "NotFoundError",
    "DocumentNotFoundError",
    "PassageNotFoundError",
    "InvalidQueryError",
}
PUBLIC = sorted(EXPECTED - {"__version__"})


def test_all_is_the_expected_list_without_repeats() -> None:
    assert len(qa.__all__) == len(set(qa.__all__))
    assert set(qa.__all__) == EXPECTED


def test_every_name_imports_from_qa() -> None:
    namespace: dict[str, object] = {}
    exec(f"from qa import {', '.join(qa.__all__)}", namespace)  # noqa: S102 - a fixed list of names
    assert all(name in namespace for name in qa.__all__)
    assert isinstance(qa.__version__, str)
    assert qa.__version__


def test_nothing_private_is_exported() -> None:
    assert not [name for name in PUBLIC if name.startswith("_")]
    for name in PUBLIC:
        module = getattr(qa, name).__module__
        assert module.startswith("qa."), f"{name} comes from {module}"
        assert not any(part.startswith("_") for part in module.split(".")), f"{name} lives in private {module}"


@pytest.mark.parametrize("name", PUBLIC)
def test_every_exported_member_has_its_own_docstring(name: str) -> None:
    member = getattr(qa, name)
    # A class's own docstring, not one inherited or generated (dataclasses write "Name(field: type, ...)").
    doc = member.__dict__.get("__doc__") if inspect.isclass(member) else member.__doc__
    assert doc, f"qa.{name} has no docstring"
    assert doc.strip()
    assert not doc.startswith(f"{name}("), f"qa.{name} has only the docstring dataclass generates"


@pytest.mark.parametrize("name", PUBLIC)
def test_every_exported_member_is_the_one_in_its_module(name: str) -> None:
    member = getattr(qa, name)
    assert getattr(importlib.import_module(member.__module__), name) is member


def _imports_from_qa(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "qa" and node.level == 0
        for alias in node.names
    ]


def test_scripts_tests_and_the_package_import_only_public_names_from_qa() -> None:
    """Internals are imported from their own modules, so dropping one from ``__all__`` breaks nothing."""
    wrong = {
        path.relative_to(ROOT).as_posix(): sorted(set(names) - EXPECTED)
        for folder in ("src", "scripts", "tests")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (names := _imports_from_qa(path))
    }
    assert {path: names for path, names in wrong.items() if names} == {}

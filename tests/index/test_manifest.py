"""Manifests: invariant 6 (a build opens only with the model and chunker that made it) and the typed form."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qa.config import Settings
from qa.errors import IndexCorruptError, IndexMismatchError
from qa.index.embedded.layout import MANIFEST
from qa.index.embedded.store import EmbeddedStore
from qa.index.manifest import FORMAT_VERSION, BuildIdentity, Manifest, read_manifest
from qa.index.vector_index import VectorIndexSpec
from qa.ingest.chunking import ChunkerConfig
from tests.helpers import FakeEmbedder
from tests.helpers import build_dir as _build_dir
from tests.helpers import open_index as _open

CONFIG = ChunkerConfig()


@pytest.mark.parametrize(
    ("other", "config", "words"),
    [
        (FakeEmbedder(dimension=32), CONFIG, ["dimension 64", "32", "qa build"]),
        (FakeEmbedder(seed="b", name="another-model"), CONFIG, ["another-model", "vectors differ", "qa build"]),
        (FakeEmbedder(), ChunkerConfig(max_tokens=200), ["max_tokens=96", "200", "qa build"]),
        (FakeEmbedder(), ChunkerConfig(overlap_sentences=1), ["overlap_sentences=0", "qa build"]),
    ],
    ids=["dimension", "model", "budget", "overlap"],
)
def test_an_index_from_another_model_or_chunker_is_refused(
    built: Settings, other: FakeEmbedder, config: ChunkerConfig, words: list[str]
) -> None:
    """Invariant 6: refused at open, with a message saying what differs and how to rebuild."""
    with pytest.raises(IndexMismatchError) as caught:
        _open(built, other, config)
    message = str(caught.value)
    for word in words:
        assert word in message, message


def test_an_index_from_another_format_version_is_refused(built: Settings, fake_embedder: FakeEmbedder) -> None:
    path = _build_dir(built) / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 999
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="format version 999"):
        _open(built, fake_embedder)


def test_the_typed_manifest_reads_what_the_build_wrote(built: Settings, fake_embedder: FakeEmbedder) -> None:
    build = _build_dir(built)
    raw = read_manifest(build)
    manifest = Manifest.from_json(raw, build)
    assert manifest.build_id == raw["build_id"] == build.name
    assert manifest.format_version == FORMAT_VERSION
    assert manifest.model.name == fake_embedder.name
    assert manifest.model.dimension == fake_embedder.dimension
    assert manifest.model.to_json() == raw["model"]  # the typed identity loses nothing the build wrote
    assert manifest.vectors == VectorIndexSpec()
    assert manifest.build_seconds is not None
    assert manifest.build_seconds > 0
    assert manifest.previous_build is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"model": {"name": "m", "dimension": 0}}, "model dimension"),
        ({"model": {"name": "m", "dimension": 64, "probe": "abc"}}, "probe"),
        ({"passages": "many"}, "'passages'"),
    ],
    ids=["dimension", "probe", "count"],
)
def test_a_manifest_with_a_wrong_entry_is_refused_by_name(built: Settings, change: dict[str, Any], words: str) -> None:
    build = _build_dir(built)
    with pytest.raises(IndexCorruptError, match=words):
        Manifest.from_json({**read_manifest(build), **change}, build)


def test_opening_without_an_identity_is_an_explicit_choice(built: Settings, fake_embedder: FakeEmbedder) -> None:
    """``expected=None`` trusts the build; any identity given is checked (invariant 6)."""
    EmbeddedStore.open(built.index_dir, expected=None).close()
    with pytest.raises(IndexMismatchError):
        EmbeddedStore.open(built.index_dir, BuildIdentity.of(FakeEmbedder(seed="b", name="other"), CONFIG))

"""A build's manifest: read as JSON, checked, and typed for every reader above the store; what a
build is made with (:class:`BuildIdentity`) and whether a live build still matches the corpus and
settings (:func:`manifest_stale_reason`), whichever store holds it.

The JSON keys are the ones builds have always written; :class:`Manifest` is what the rest of the
service reads: ``manifest.model.name``, not ``manifest["model"]["name"]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.embedding.base import Embedder
from qa.embedding.identity import ModelIdentity
from qa.errors import IndexCorruptError, IndexMismatchError
from qa.index.vector_index import VectorIndexMode, VectorIndexSpec, choose_vector_index
from qa.ingest.changes import CorpusScan, corpus_fingerprint, scan_corpus
from qa.ingest.chunking import ChunkerConfig

#: The file a build folder's manifest is written to (and what manifest messages name).
MANIFEST = "manifest.json"
#: 2: FTS5 tables over passages and documents, each with the title as a column.
#: 3: sentences of each passage with their vectors (highlights and grouping need no model call).
#: 4: documents record their format and a PDF's page map.
#: 5: sentence vectors may be pooled from the passage's own pass (the chunker entry's ``sentence_vectors``).
#: 6: one lexical pipeline: documents' postings beside the passages', scored by qa.index.bm25 in both
#:    stores (a build without them has no FTS5 fallback left to be read with); a build is a commit of
#:    segments (the manifest's ``segments``, each with what its engine records of it: a build
#:    folder's files, sizes and sha256; a database schema).
FORMAT_VERSION = 6
#: What every manifest a build writes holds, and the type each must have.
_MANIFEST_FIELDS: dict[str, type | tuple[type, ...]] = {
    "build_id": str,
    "passages": int,
    "documents": int,
    "model": dict,
    "chunker": dict,
}


@dataclass(frozen=True)
class BuildIdentity:
    """What a build is made with, and what opening it checks: the model that embedded it and the
    chunker that cut its passages (invariant 6). :meth:`of` gives the identity a build made now
    with an embedder and a chunker would record; a reader opens a build against it."""

    model: ModelIdentity
    #: :meth:`qa.ingest.chunking.ChunkerConfig.describe`: the chunker's parameters and version.
    chunker: dict[str, Any]

    @classmethod
    def of(cls, embedder: Embedder, chunker: dict[str, Any] | Any) -> BuildIdentity:
        """The identity of builds made with ``embedder`` and a chunker config (or its description)."""
        described = chunker if isinstance(chunker, dict) else chunker.describe()
        return cls(embedder.identity(), dict(described))


@dataclass(frozen=True)
class Manifest:
    """What a build records about itself, typed (see :func:`read_manifest` for the raw JSON)."""

    build_id: str
    documents: int
    passages: int
    model: ModelIdentity
    chunker: dict[str, Any]
    vectors: VectorIndexSpec
    format_version: int | None = None
    corpus: dict[str, Any] | None = None
    built_at: str | None = None
    #: Wall time of the build, from its start to its manifest (``None`` for older builds).
    build_seconds: float | None = None
    previous_build: str | None = None
    #: The JSON as read, for the entries no reader needs typed (``files``, ``embedded``, ...).
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, raw: dict[str, Any], build_dir: Path) -> Manifest:
        """The typed manifest, or :class:`IndexCorruptError` naming the entry that is wrong."""
        check_manifest(build_dir, raw)
        try:
            model = ModelIdentity.from_json(raw["model"])
            vectors = VectorIndexSpec.from_manifest(raw.get("vectors"))
        except ValueError as exc:
            raise IndexCorruptError(f"{build_dir / MANIFEST} records {exc}: rebuild with `qa build`") from None
        seconds = raw.get("build_seconds")
        previous = raw.get("previous_build")
        corpus = raw.get("corpus")
        return cls(
            build_id=raw["build_id"],
            documents=raw["documents"],
            passages=raw["passages"],
            model=model,
            chunker=dict(raw["chunker"]),
            vectors=vectors,
            format_version=raw.get("format_version"),
            corpus=corpus if isinstance(corpus, dict) else None,
            built_at=raw.get("built_at") if isinstance(raw.get("built_at"), str) else None,
            build_seconds=float(seconds) if isinstance(seconds, int | float) else None,
            previous_build=previous if isinstance(previous, str) else None,
            raw=raw,
        )


def check_manifest(build_dir: Path, manifest: dict[str, Any]) -> None:
    """The fields every build writes are there, with their types, and a positive dimension."""
    path = build_dir / MANIFEST
    for name, kind in _MANIFEST_FIELDS.items():
        value = manifest.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise IndexCorruptError(
                f"{path} has no valid {name!r} (found {value!r}); the file is damaged or was not written "
                "by `qa build`. Rebuild with `qa build`."
            )
    dimension = manifest["model"].get("dimension")
    if not isinstance(dimension, int) or isinstance(dimension, bool) or dimension <= 0:
        raise IndexCorruptError(f"{path} has no valid model dimension (found {dimension!r}). Rebuild with `qa build`.")


def read_manifest(build_dir: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((build_dir / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorruptError(f"{build_dir} has no {MANIFEST}: rebuild with `qa build`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"{build_dir / MANIFEST} is unreadable ({exc}): rebuild with `qa build`") from None
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"{build_dir / MANIFEST} is not a JSON object: rebuild with `qa build`")
    return manifest


def compatibility_problems(manifest: dict[str, Any], expected: BuildIdentity | None) -> list[str]:
    """How a build's manifest differs from what the running service needs (empty: compatible).

    ``expected=None`` checks the format only: for readers that embed nothing (quote checks).
    """
    problems = []
    if manifest.get("format_version") != FORMAT_VERSION:
        problems.append(
            f"index format version {manifest.get('format_version')!r}, this qa reads version {FORMAT_VERSION}"
        )
    if expected is None:
        return problems
    built, want = manifest.get("model") or {}, expected.model
    try:
        recorded: ModelIdentity | None = ModelIdentity.from_json(built)
    except ValueError:
        recorded = None
    if built.get("dimension") != want.dimension:
        problems.append(
            f"model dimension {built.get('dimension')} ({built.get('name')}), "
            f"the service's model has {want.dimension} ({want.name})"
        )
    elif recorded is None or not recorded.same_vectors(want):
        problems.append(
            f"model {built.get('name')!r} ({built.get('revision')}), the service uses "
            f"{want.name!r} ({want.revision}) and their vectors differ"
        )
    built_chunker, want_chunker = manifest.get("chunker") or {}, expected.chunker
    if want_chunker and built_chunker != want_chunker:
        diffs = sorted(k for k in set(built_chunker) | set(want_chunker) if built_chunker.get(k) != want_chunker.get(k))
        problems.append(
            "chunker "
            + ", ".join(f"{k}={built_chunker.get(k)!r} (settings say {want_chunker.get(k)!r})" for k in diffs)
        )
    return problems


def check_compatible(manifest: dict[str, Any], expected: BuildIdentity | None, what: str) -> None:
    """:class:`IndexMismatchError` unless the build ``what`` names (a folder, or a database and build)
    was made as ``expected`` says: the one message every store gives for another model or chunker."""
    problems = compatibility_problems(manifest, expected)
    if problems:
        raise IndexMismatchError(
            f"the index {what} was built with "
            + "; ".join(problems)
            + ". Rebuild it with `qa build` using the current settings, or set QA_MODEL and the "
            "chunker settings to those the index was built with."
        )


def corpus_record(corpus_dir: Path, scan: CorpusScan | None = None) -> dict[str, Any]:
    """What a manifest records of a corpus folder: its path, fingerprint, the extractors it needs, and each
    file read with its size, mtime and sha256 (``files``, ``read_at_ns``: what the next staleness check
    and build compare a stat against, :func:`qa.ingest.changes.scan_corpus`). ``scan`` is a scan of
    ``corpus_dir`` already made (by default, one is made here, reading every file)."""
    scan = scan or scan_corpus(corpus_dir)
    corpus: dict[str, Any] = {"path": str(corpus_dir), "sha256": scan.fingerprint()}
    extractors = scan.extractors()
    if extractors:
        corpus["extractors"] = extractors
    corpus.update(scan.record())
    return corpus


def manifest_stale_reason(
    manifest: dict[str, Any],
    corpus_dir: Path,
    embedder: Embedder,
    config: ChunkerConfig,
    vector_index: VectorIndexMode = "auto",
) -> str | None:
    """Why a live build with this manifest no longer matches the corpus and settings (any store)."""
    expected = BuildIdentity.of(embedder, config)
    problems = compatibility_problems(manifest, expected)
    if problems:
        return "; ".join(problems)
    built_with = (manifest.get("model") or {}).get("encoder") or "torch"
    if built_with != expected.model.encoder_name:
        return (
            f"build {manifest.get('build_id')} was embedded by the {built_with} encoder, "
            f"settings say {expected.model.encoder_name}"
        )
    recorded = manifest.get("corpus") if isinstance(manifest.get("corpus"), dict) else None
    # Stat-first against the build's own record: an unchanged folder is checked without reading a file.
    if (recorded or {}).get("sha256") != corpus_fingerprint(corpus_dir, recorded):
        return f"the articles in {corpus_dir} changed since build {manifest.get('build_id')}"
    wanted = choose_vector_index(int(manifest.get("passages") or 0), vector_index).describe()
    held = manifest.get("vectors") or {"type": "flat"}
    if held != wanted:
        return f"build {manifest.get('build_id')} holds a {held} vector index, settings ask for {wanted}"
    return None

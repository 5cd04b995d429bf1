"""Read a corpus folder into :class:`Document` objects.

Every ``.txt`` and ``.md`` file under the folder is one document whose ``doc_id`` is
the file's stem. ``text`` is the file exactly as decoded (no newline translation), so
``[start, end)`` offsets index the file's own characters. Title and author are
inferred from the text (headline line, byline) and a sidecar ``<stem>.meta.json``
with ``title``, ``author``, ``url``, ``published`` and ``outlet`` overrides them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from qa.cleaning import Block, analyse, byline_author, count_words, title_text
from qa.errors import CorpusError
from qa.sentences import split_sentences

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md")
META_SUFFIX = ".meta.json"
META_FIELDS = ("title", "author", "url", "published", "outlet")
#: A title derived from a first sentence keeps at most this many words.
TITLE_WORDS = 12


@dataclass(frozen=True)
class Document:
    """One article: its original text, where it came from, and what is known about it."""

    doc_id: str
    source: str
    text: str
    title: str
    author: str | None = None
    url: str | None = None
    published: str | None = None
    outlet: str | None = None
    sha256: str = ""
    encoding: str = "utf-8"
    blocks: tuple[Block, ...] = field(default=(), repr=False, compare=False)


def load_corpus(corpus_dir: Path) -> list[Document]:
    """Every readable article under ``corpus_dir``, sorted by source path.

    A file that cannot be read is skipped with a warning naming it; a folder with no
    articles at all is an error.
    """
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist or is not a folder")
    documents: list[Document] = []
    seen: dict[str, str] = {}
    for path in corpus_files(corpus_dir):
        source = path.relative_to(corpus_dir).as_posix()
        if path.stem in seen:
            log.warning("skipping %s: its id %r is already used by %s", source, path.stem, seen[path.stem])
            continue
        try:
            doc = read_document(path, corpus_dir)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            log.warning("skipping %s: %s", source, exc)
            continue
        if doc is None:
            continue
        seen[doc.doc_id] = source
        documents.append(doc)
    if not documents:
        raise CorpusError(f"no readable .txt or .md articles in {corpus_dir}")
    return documents


def corpus_files(corpus_dir: Path) -> Iterator[Path]:
    """Article files under ``corpus_dir`` sorted by source path, hidden files and folders left out."""
    for path in sorted(corpus_dir.rglob("*"), key=lambda p: p.relative_to(corpus_dir).as_posix()):
        rel = path.relative_to(corpus_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() in SUFFIXES and path.is_file():
            yield path


def corpus_fingerprint(corpus_dir: Path) -> str:
    """A hash of every article and sidecar file's path and bytes: changes when any of them does."""
    digest = hashlib.sha256()
    for path in corpus_files(corpus_dir):
        for part in (path, path.with_name(path.stem + META_SUFFIX)):
            if part.is_file():
                digest.update(part.relative_to(corpus_dir).as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(part.read_bytes()).digest())
    return digest.hexdigest()


def read_document(path: Path, corpus_dir: Path) -> Document | None:
    """Read one article, or ``None`` (with a warning) when it holds no text."""
    source = path.relative_to(corpus_dir).as_posix()
    data = path.read_bytes()
    text, encoding = decode(data)
    blocks = tuple(analyse(text))
    if not blocks:  # nothing but whitespace, a byte-order mark or zero-width spaces
        log.warning("skipping %s: the file is empty", source)
        return None
    title = _headline(text, blocks) or _first_sentence_title(text, blocks) or path.stem
    author = next(
        (byline_author(b.text(text)) for b in blocks if b.kind == "byline"),
        None,
    )
    meta = read_sidecar(path.with_name(path.stem + META_SUFFIX), source)
    return Document(
        doc_id=path.stem,
        source=source,
        text=text,
        title=meta.get("title") or title,
        author=meta.get("author") or author,
        url=meta.get("url"),
        published=meta.get("published"),
        outlet=meta.get("outlet"),
        sha256=hashlib.sha256(data).hexdigest(),
        encoding=encoding,
        blocks=blocks,
    )


def decode(data: bytes) -> tuple[str, str]:
    """Text of a file and the encoding that read it: UTF-8, else Windows-1252, else Latin-1.

    Files with NUL bytes are binary and raise ``ValueError``.
    """
    if b"\0" in data[:8192]:
        raise ValueError("the file is binary (it contains NUL bytes)")
    for encoding in ("utf-8", "cp1252", "latin-1"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise ValueError("the file is not text in UTF-8, Windows-1252 or Latin-1")  # pragma: no cover


def read_sidecar(path: Path, source: str) -> dict[str, str]:
    """The sidecar's known fields as strings; a malformed sidecar is ignored with a warning."""
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("ignoring metadata %s for %s: %s", path.name, source, exc)
        return {}
    if not isinstance(raw, dict):
        log.warning("ignoring metadata %s for %s: expected a JSON object", path.name, source)
        return {}
    unknown = sorted(set(raw) - set(META_FIELDS))
    if unknown:
        log.warning("metadata %s: ignoring unknown fields %s", path.name, ", ".join(unknown))
    meta: dict[str, str] = {}
    for key in META_FIELDS:
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            log.warning("metadata %s: ignoring %s, which is not a string", path.name, key)
            continue
        if str(value).strip():
            meta[key] = str(value).strip()
    return meta


def _headline(text: str, blocks: tuple[Block, ...]) -> str | None:
    block = next((b for b in blocks if b.kind == "title"), None)
    return title_text(block.text(text)) if block else None


def _first_sentence_title(text: str, blocks: tuple[Block, ...]) -> str | None:
    block = next((b for b in blocks if b.kind == "prose"), None)
    if block is None:
        return None
    sentences = split_sentences(text, block.start, block.end)
    first = " ".join(text[slice(*sentences[0])].split()) if sentences else ""
    if count_words(first) <= TITLE_WORDS:
        return first.rstrip(".")
    words = first.split()
    return " ".join(words[:TITLE_WORDS]).rstrip(",;:") + "\u2026"

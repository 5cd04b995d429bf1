"""Read a corpus folder into :class:`Document` objects.

Every ``.txt``, ``.md``, ``.html``/``.htm``, ``.pdf`` and ``.docx`` file under the folder is
one document whose ``doc_id`` is the file's stem. For ``.txt`` and ``.md``, ``text`` is the
file exactly as decoded (no newline translation: ``\r\n`` and a lone ``\r`` stay in the
text); for the other formats it is the text their extractor (:mod:`qa.ingest.extract`)
made, which the build stores as the document's text. Either way ``[start, end)`` offsets
index the stored text's own characters, and ``sha256`` is the hash of the file's bytes.
A PDF also gets its page map (:attr:`Document.pages`).

Title, author, date, URL and outlet come from the file's own metadata (web pages, PDFs,
Word files), then from the text (headline line, byline); a sidecar ``<stem>.meta.json``
with ``title``, ``author``, ``url``, ``published`` and ``outlet`` overrides them all.

One bad file never stops a build: empty and blank files, binary files (NUL bytes, or
mostly control characters), broken symbolic links, FIFOs, sockets and devices, files
that cannot be read, and files whose text cannot be extracted (an encrypted or scanned
PDF, a damaged file, a zip bomb, a page too large, a file whose name lies about its
format) are skipped with a warning naming the file, and listed by :func:`read_corpus`
with the reason; a malformed
sidecar is ignored with a warning naming it. Text that is not UTF-8 is decoded by
:func:`decode` (UTF-16 and UTF-32 with a byte-order mark, UTF-8 with stray
Windows-1252 bytes, Windows-1252, Latin-1).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import CorpusError
from qa.files import code_digest
from qa.ingest.changes import META_SUFFIX, SUFFIXES, CorpusScan, candidates
from qa.ingest.cleaning import Block, analyse, byline_author, title_text
from qa.ingest.decoding import decode
from qa.ingest.extract import (
    FORMATS,
    ExtractionCache,
    ExtractionError,
    Extractor,
    Format,
    PageSpan,
    check_kind,
    extractor_for,
    kind_of_text,
)
from qa.ingest.sentences import split_sentences
from qa.text import count_words

log = logging.getLogger(__name__)

META_FIELDS = ("title", "author", "url", "published", "outlet")
#: A title derived from a first sentence keeps at most this many words.
TITLE_WORDS = 12
#: The first sentence (for a title) is looked for in this many characters of the first prose block.
TITLE_SEARCH_CHARS = 4000
#: What :meth:`Document.to_json` keeps besides the page map and blocks.
_STORED_FIELDS = ("text", "title", "author", "url", "published", "outlet", "sha256", "encoding", "format")
#: The modules whose code decides what a document read from a file is: a change to any of them
#: reads every file again instead of serving a document cached by an older reader.
_READER_MODULES = ("qa.text", "qa.ingest.decoding", "qa.ingest.cleaning", "qa.ingest.sentences", __name__)


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
    #: How the file was read: ``text`` (.txt, .md), ``html``, ``pdf`` or ``docx``.
    format: Format = "text"
    #: A PDF's pages: number, printed label and ``[start, end)`` in ``text`` (empty for other formats).
    pages: tuple[PageSpan, ...] = ()

    def to_json(self) -> str:
        """Everything read from the file but its id and source (they are the cache key's): what a
        build keeps so an unchanged file is not decoded and cleaned again (:func:`read_corpus`).

        ASCII-escaped, so a lone surrogate in a decoded text survives the cache's UTF-8."""
        fields = {name: getattr(self, name) for name in _STORED_FIELDS}
        fields["pages"] = [[p.page, p.label, p.start, p.end] for p in self.pages]
        fields["blocks"] = [[b.start, b.end, b.kind, b.reason] for b in self.blocks]
        return json.dumps(fields, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str, doc_id: str, source: str) -> Document | None:
        """The document :meth:`to_json` wrote, or ``None`` when ``raw`` is not one."""
        try:
            data: dict[str, Any] = json.loads(raw)
            pages = tuple(PageSpan(int(n), str(label), int(a), int(b)) for n, label, a, b in data["pages"])
            blocks = tuple(Block(int(a), int(b), kind, str(reason)) for a, b, kind, reason in data["blocks"])
            fields = {name: data[name] for name in _STORED_FIELDS}
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(fields["text"], str) or fields["format"] not in FORMATS.values():
            return None
        return cls(doc_id=doc_id, source=source, blocks=blocks, pages=pages, **fields)


@dataclass(frozen=True)
class Skipped:
    """A file of the corpus that was not read, and why."""

    source: str
    reason: str


@dataclass(frozen=True)
class Corpus:
    """What a corpus folder gave: its documents, and the files skipped with their reasons."""

    documents: list[Document]
    skipped: list[Skipped]


def load_corpus(corpus_dir: Path) -> list[Document]:
    """Every readable article under ``corpus_dir``, sorted by source path (see :func:`read_corpus`)."""
    return read_corpus(corpus_dir).documents


def read_corpus(corpus_dir: Path, cache: ExtractionCache | None = None, scan: CorpusScan | None = None) -> Corpus:
    """Every readable article under ``corpus_dir``, sorted by source path, and the files skipped.

    A file that cannot be read is skipped with a warning naming it and the reason; a folder
    with no articles at all is an error. With ``cache``, a web page, PDF or Word file whose
    bytes and extractor are unchanged since a kept build is not extracted again; with ``scan``
    too (:func:`qa.ingest.changes.scan_corpus`, which knows each file's sha256 mostly without
    reading it), a file whose bytes, sidecar and reader are unchanged is not even opened: its
    document comes from the cache as it was read (:func:`document_key`).
    """
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist or is not a folder")
    documents: list[Document] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    listed = list(candidates(corpus_dir))
    keys = _document_keys(corpus_dir, listed, scan) if cache is not None and scan is not None else {}
    kept = _kept_documents(cache, keys)
    fresh: dict[str, str] = {}

    def skip(source: str, reason: str) -> None:
        log.warning("skipping %s: %s", source, reason)
        skipped.append(Skipped(source, reason))

    for path, problem in listed:
        source = path.relative_to(corpus_dir).as_posix()
        if problem:
            skip(source, problem)
            continue
        if path.stem in seen:
            skip(source, f"its id {path.stem!r} is already used by {seen[path.stem]}")
            continue
        doc = kept.get(source)
        if doc is None:
            try:
                doc = read_document(path, corpus_dir, cache)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                skip(source, str(exc))
                continue
            # Kept only when the bytes read are the ones the scan hashed (the file did not change between).
            if doc is not None and source in keys and scan is not None and doc.sha256 == scan.sha256(source):
                fresh[keys[source]] = doc.to_json()
        if doc is None:
            skipped.append(Skipped(source, "the file is empty"))
            continue
        seen[doc.doc_id] = source
        documents.append(doc)
    if cache is not None and fresh:
        cache.put_documents(fresh)
    if not documents:
        raise CorpusError(f"no readable articles ({', '.join(SUFFIXES)}) in {corpus_dir}")
    return Corpus(documents, skipped)


def document_key(source: str, sha256: str, sidecar_sha256: str) -> str:
    """What a document read from a file is cached under: the reader's code (:data:`_READER_MODULES`), the
    format's extractor and version, the file's path (its id and the title fallback), its bytes' sha256
    and its sidecar's ('' when it has none). A change to any of them reads the file again."""
    extractor = extractor_for(FORMATS[Path(source).suffix.lower()])
    reader = f"{extractor.name}:{extractor.version}" if extractor is not None else "text"
    data = "\0".join((code_digest(*_READER_MODULES), reader, source, sha256, sidecar_sha256))
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()


def _document_keys(corpus_dir: Path, listed: list[tuple[Path, str]], scan: CorpusScan) -> dict[str, str]:
    """The cache key of each listed article whose file and sidecar the scan hashed (or knew unchanged)."""
    keys: dict[str, str] = {}
    for path, problem in listed:
        source = path.relative_to(corpus_dir).as_posix()
        sidecar = path.with_name(path.stem + META_SUFFIX).relative_to(corpus_dir).as_posix()
        sha256 = scan.sha256(source)
        if problem or sha256 is None or sidecar in scan.unreadable:
            continue
        keys[source] = document_key(source, sha256, scan.sha256(sidecar) or "")
    return keys


def _kept_documents(cache: ExtractionCache | None, keys: Mapping[str, str]) -> dict[str, Document]:
    """The documents ``cache`` keeps under ``keys`` (by source), each as read by a kept build."""
    if cache is None or not keys:
        return {}
    payloads = cache.get_documents(list(keys.values()))
    kept: dict[str, Document] = {}
    for source, key in keys.items():
        raw = payloads.get(key)
        doc = Document.from_json(raw, Path(source).stem, source) if raw is not None else None
        if doc is not None:
            kept[source] = doc
    return kept


def read_document(path: Path, corpus_dir: Path, cache: ExtractionCache | None = None) -> Document | None:
    """Read one article, or ``None`` (with a warning) when it holds no text.

    Raises ``ValueError`` (an :class:`~qa.ingest.extract.ExtractionError` for the extracted
    formats) naming the reason when the file cannot be read as its name says.
    """
    source = path.relative_to(corpus_dir).as_posix()
    data = path.read_bytes()
    fmt = FORMATS[path.suffix.lower()]
    extractor = extractor_for(fmt)
    if extractor is None:
        really = kind_of_text(data)
        if really:
            raise ExtractionError(f"the file is named as text but is {really}")
        text, encoding = decode(data)
        found: dict[str, str | None] = {}
        pages: tuple[PageSpan, ...] = ()
    else:
        if not data:
            log.warning("skipping %s: the file is empty", source)
            return None
        text, encoding, pages, found = _extracted(fmt, extractor, data, cache)
    blocks = tuple(analyse(text))
    if not blocks:  # nothing but whitespace, a byte-order mark or zero-width spaces
        log.warning("skipping %s: the file is empty", source)
        return None
    title = found.get("title") or _headline(text, blocks) or _first_sentence_title(text, blocks) or path.stem
    author = found.get("author") or next(
        (byline_author(b.text(text)) for b in blocks if b.kind == "byline"),
        None,
    )
    sidecar = path.with_name(path.stem + META_SUFFIX)
    meta = read_sidecar(sidecar, Path(source).with_name(sidecar.name).as_posix())
    return Document(
        doc_id=path.stem,
        source=source,
        text=text,
        title=meta.get("title") or title,
        author=meta.get("author") or author,
        url=meta.get("url") or found.get("url"),
        published=meta.get("published") or found.get("published"),
        outlet=meta.get("outlet") or found.get("outlet"),
        sha256=hashlib.sha256(data).hexdigest(),
        encoding=encoding,
        blocks=blocks,
        format=fmt,
        pages=pages,
    )


def _extracted(
    fmt: Format, extractor: Extractor, data: bytes, cache: ExtractionCache | None
) -> tuple[str, str, tuple[PageSpan, ...], dict[str, str | None]]:
    """A web page's, PDF's or Word file's text, encoding (its format), page map and the metadata it
    carries, from ``cache`` when its bytes and extractor are unchanged since a kept build."""
    check_kind(fmt, data)
    key = extractor.cache_key(hashlib.sha256(data).hexdigest())
    cached = cache.get_extraction(key) if cache is not None else None
    extraction = cached or extractor.read(data)
    if cache is not None and cached is None:
        cache.put_extraction(key, extraction)
    found = {
        "title": extraction.title,
        "author": extraction.author,
        "url": extraction.url,
        "published": extraction.published,
        "outlet": extraction.outlet,
    }
    return extraction.text, fmt, extraction.pages, found


def read_sidecar(path: Path, source: str) -> dict[str, str]:
    """The sidecar's known fields as strings; a malformed sidecar is ignored with a warning.

    ``source`` is the sidecar's path relative to the corpus folder, used in warnings.
    """
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("ignoring the malformed metadata file %s: %s", source, exc)
        return {}
    if not isinstance(raw, dict):
        log.warning("ignoring the malformed metadata file %s: expected a JSON object", source)
        return {}
    unknown = sorted(set(raw) - set(META_FIELDS))
    if unknown:
        log.warning("metadata %s: ignoring unknown fields %s", source, ", ".join(unknown))
    meta: dict[str, str] = {}
    for key in META_FIELDS:
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            log.warning("metadata %s: ignoring %s, which is not a string", source, key)
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
    # Only the start of the block: a one-paragraph article of many megabytes is not split twice.
    sentences = split_sentences(text, block.start, min(block.end, block.start + TITLE_SEARCH_CHARS))
    first = " ".join(text[slice(*sentences[0])].split()) if sentences else ""
    if count_words(first) <= TITLE_WORDS:
        return first.rstrip(".")
    words = first.split()
    return " ".join(words[:TITLE_WORDS]).rstrip(",;:") + "\u2026"

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
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import CorpusError
from qa.files import sha256_file
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

SUFFIXES = tuple(FORMATS)
META_SUFFIX = ".meta.json"
META_FIELDS = ("title", "author", "url", "published", "outlet")
#: A title derived from a first sentence keeps at most this many words.
TITLE_WORDS = 12
#: The first sentence (for a title) is looked for in this many characters of the first prose block.
TITLE_SEARCH_CHARS = 4000


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


def read_corpus(corpus_dir: Path, cache: ExtractionCache | None = None) -> Corpus:
    """Every readable article under ``corpus_dir``, sorted by source path, and the files skipped.

    A file that cannot be read is skipped with a warning naming it and the reason; a folder
    with no articles at all is an error. With ``cache``, a web page, PDF or Word file whose
    bytes and extractor are unchanged since a kept build is not extracted again.
    """
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist or is not a folder")
    documents: list[Document] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}

    def skip(source: str, reason: str) -> None:
        log.warning("skipping %s: %s", source, reason)
        skipped.append(Skipped(source, reason))

    for path, problem in _candidates(corpus_dir):
        source = path.relative_to(corpus_dir).as_posix()
        if problem:
            skip(source, problem)
            continue
        if path.stem in seen:
            skip(source, f"its id {path.stem!r} is already used by {seen[path.stem]}")
            continue
        try:
            doc = read_document(path, corpus_dir, cache)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            skip(source, str(exc))
            continue
        if doc is None:
            skipped.append(Skipped(source, "the file is empty"))
            continue
        seen[doc.doc_id] = source
        documents.append(doc)
    if not documents:
        raise CorpusError(f"no readable articles ({', '.join(SUFFIXES)}) in {corpus_dir}")
    return Corpus(documents, skipped)


def corpus_files(corpus_dir: Path) -> Iterator[Path]:
    """Article files under ``corpus_dir`` sorted by source path, hidden files and folders left out."""
    for path, problem in _candidates(corpus_dir):
        if not problem:
            yield path


def _candidates(corpus_dir: Path) -> Iterator[tuple[Path, str]]:
    """Every non-hidden path with an article suffix, and why it cannot be an article ('' if it can).

    Folders with an article suffix are left out silently. Nothing here opens a file, so a
    FIFO never blocks the build. Symbolic links to folders are not followed (``rglob``).
    """
    for path in sorted(corpus_dir.rglob("*"), key=lambda p: p.relative_to(corpus_dir).as_posix()):
        rel = path.relative_to(corpus_dir)
        if any(part.startswith(".") for part in rel.parts) or path.suffix.lower() not in SUFFIXES:
            continue
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            yield path, "it is a broken symbolic link" if path.is_symlink() else "it disappeared"
            continue
        except OSError as exc:  # a symlink loop, a permission problem on the way
            yield path, f"it cannot be examined ({exc.strerror or exc})"
            continue
        if stat.S_ISDIR(mode):
            continue
        if stat.S_ISREG(mode):
            yield path, ""
        else:
            yield path, f"it is not a regular file (it is a {_file_kind(mode)})"


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"  # pragma: no cover - no other kinds on Linux


def corpus_fingerprint(corpus_dir: Path) -> str:
    """A hash of every article and sidecar file's path and bytes: changes when any of them does.

    A file that cannot be read counts by its path and the error, so the fingerprint
    changes when it becomes readable. Each extractor's name and version count too (see
    :func:`extractors_used`), so upgrading one rebuilds.
    """
    digest = hashlib.sha256()
    used = extractors_used(corpus_dir)
    if used:  # a corpus of .txt and .md alone keeps the fingerprint it always had
        digest.update(json.dumps(used, sort_keys=True).encode() + b"\0")
    for path in corpus_files(corpus_dir):
        for part in (path, path.with_name(path.stem + META_SUFFIX)):
            if part.is_file():
                digest.update(part.relative_to(corpus_dir).as_posix().encode() + b"\0")
                try:
                    digest.update(bytes.fromhex(sha256_file(part)))
                except OSError as exc:
                    digest.update(f"unreadable: {exc.errno}".encode())
    return digest.hexdigest()


def extractors_used(corpus_dir: Path) -> dict[str, dict[str, str]]:
    """Name and version of the extractor of each format the corpus holds (plain text needs none)."""
    formats = sorted({FORMATS[path.suffix.lower()] for path in corpus_files(corpus_dir)})
    return {fmt: extractor.describe() for fmt in formats if (extractor := extractor_for(fmt)) is not None}


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

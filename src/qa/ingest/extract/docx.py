"""Word files: paragraphs and tables in order, headings as sections, core properties (python-docx).

Each non-empty paragraph becomes one line (a blank line between lines); a table becomes
one line per row, its cells joined by `` | ``. Heading and Title styles become lines of
their own, which :func:`qa.ingest.cleaning.analyse` reads as the title and the section
headings. Title, author and date come from the file's core properties, without the
placeholders templates leave there (author ``python-docx`` or ``anonymous``, the date of
python-docx's own template). Word files have no reliable pages (pagination is done by
the program that shows them), so no page map.

The archive is checked before it is opened: a file whose members would expand to more
than ``MAX_UNPACKED_BYTES`` or by more than ``MAX_RATIO`` times (a zip bomb) is refused.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime

from qa.ingest.extract import Extraction, ExtractionError

#: qa's rules on top of python-docx; bump when they change the text or metadata that come out.
RULES_VERSION = 1
#: A Word file whose members would unpack to more than this is refused. A 300-page report with
#: pictures unpacks to tens of MB; the pictures are never read, only the XML parts are.
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
#: ... or whose members expand by more than this factor overall (XML compresses about 10 times; a
#: zip bomb by thousands).
MAX_RATIO = 200
_PLACEHOLDER_AUTHORS = frozenset(
    {"python-docx", "anonymous", "unknown", "user", "author", "admin", "windows user", "microsoft office user"}
)
#: python-docx's default template's creation time, left in every file it writes unless set.
_TEMPLATE_DATES = frozenset({"2013-12-23"})


def extract(data: bytes) -> Extraction:
    _check_archive(data)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises KeyError, ValueError, lxml errors... for damaged parts
        raise ExtractionError(f"the Word file is damaged ({type(exc).__name__}: {exc})") from None
    lines: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            line = " ".join(block.text.split())
            if line:
                lines.append(line)
        elif isinstance(block, Table):
            for row in block.rows:
                cells = [" ".join(cell.text.split()) for cell in row.cells]
                unique = [c for i, c in enumerate(cells) if c and (i == 0 or c != cells[i - 1])]  # merged cells repeat
                if unique:
                    lines.append(" | ".join(unique))
    if not lines:
        raise ExtractionError("the Word file has no text")
    props = document.core_properties
    author = " ".join((props.author or "").split()) or None
    if author and author.casefold() in _PLACEHOLDER_AUTHORS:
        author = None
    return Extraction(
        text="\n\n".join(lines) + "\n",
        title=" ".join((props.title or "").split()) or None,
        author=author,
        published=_date(props.created),
    )


def _date(value: datetime | None) -> str | None:
    if value is None:
        return None
    day = value.date().isoformat()
    return None if day in _TEMPLATE_DATES or value.year < 1990 else day


def _check_archive(data: bytes) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ExtractionError(f"the Word file is damaged or truncated (not a readable ZIP archive: {exc})") from None
    with archive:
        members = archive.infolist()
        names = {m.filename for m in members}
        if "word/document.xml" not in names:
            raise ExtractionError("the file is a ZIP archive but not a Word document (it has no word/document.xml)")
        unpacked = sum(m.file_size for m in members)
        packed = sum(m.compress_size for m in members)
        if unpacked > MAX_UNPACKED_BYTES or unpacked > MAX_RATIO * max(packed, 1):
            raise ExtractionError(
                f"the Word file would unpack to {unpacked / 1e6:,.0f} MB from {len(data) / 1e6:,.1f} MB "
                "(a zip bomb?): refused"
            )

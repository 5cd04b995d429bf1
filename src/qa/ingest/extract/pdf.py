"""PDF files: text page by page, running headers and footers dropped, paragraphs rebuilt (pypdfium2).

PDFium gives each page's characters in content order with a box each, and line breaks
between lines. On top of that:

* A line whose centre lies in the top or bottom band of its page (``BAND`` of the page
  height) is a running header or footer, and dropped, when it is a page number or
  repeats (digits aside) on another page. Text-only repeat detection deletes body lines
  that happen to repeat; a position test does not.
* Lines are joined into paragraphs: a new paragraph starts after a vertical gap of more
  than ``PARAGRAPH_GAP`` line pitches, at a first-line indent, and after a line that
  stops short of its column's right edge by more than the next line's first word (a
  line is only broken early at a paragraph's end). A paragraph that runs over a page or
  column break stays one paragraph unless its last line stopped short or ended a sentence.
* A hyphen at a line's end before a lower-case letter is removed and the word rejoined.

The text is the paragraphs with a blank line between them; the page map gives each page's
``[start, end)`` in it (a page runs from its first character to the next page's first),
and each page's printed label (``"xii"``), or its 1-based number when the file has none.
"""

from __future__ import annotations

import itertools
import re
import statistics
from dataclasses import dataclass

from qa.ingest.extract import Extraction, ExtractionError, PageSpan

#: qa's rules on top of PDFium; bump when they change the text or the page map.
RULES_VERSION = 1
#: Share of the page height, at the top and at the bottom, where running headers and footers live.
#: Body text with the usual 2.5 cm margins starts at 12% of an A4 page; fpdf2's 1 cm top margin puts
#: a body's first line at 5%: such a line is kept unless it repeats on another page.
BAND = 0.10
#: A vertical gap of more than this many line pitches between two lines starts a paragraph.
PARAGRAPH_GAP = 1.45
#: A line indented by more than this share of the page width past the previous one starts a paragraph.
INDENT_SHARE = 0.012
#: A line ends its paragraph when the next line's first word (and a space) would have fitted after it, in
#: characters of the line's own average width times this (a wide word's letters are wider than average).
ROOM_SLACK = 1.2
#: Lines whose left edges are closer than this share of the page width are in the same column.
COLUMN_SHARE = 0.25
_PAGE_NUMBER_RE = re.compile(r"^(?:page\s+)?(?:\d+|[ivxlcdm]+)(?:\s*(?:/|of)\s*\d+)?$", re.IGNORECASE)
#: Titles that converters and printer drivers leave: "Microsoft Word - draft3.docx", "untitled", a file name.
_JUNK_TITLE_RE = re.compile(
    r"^(?:microsoft (?:word|powerpoint|excel) - |untitled\b|document\d*$)|\.(?:docx?|pdf|pptx?|xlsx?|odt|rtf|txt)$",
    re.IGNORECASE,
)
_SENTENCE_END = ".!?:;\u2026\"'\u201d\u2019)]"
_HYPHENS = "-\u00ad\u2010"
_SOFT_HYPHENS = "\x02\ufffe"


@dataclass
class _Line:
    text: str
    left: float
    right: float
    #: Distance of the line's top and bottom from the top of the page (points).
    top: float
    bottom: float

    @property
    def centre(self) -> float:
        return (self.top + self.bottom) / 2


def extract(data: bytes) -> Extraction:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise ExtractionError("the PDF is encrypted (it needs a password to open)") from None
        raise ExtractionError(f"the PDF is damaged or truncated ({exc})") from None
    try:
        pages: list[list[_Line]] = []
        heights: list[float] = []
        widths: list[float] = []
        labels: list[str] = []
        for i in range(len(pdf)):
            page = pdf[i]
            try:
                width, height = page.get_size()
                textpage = page.get_textpage()
                try:
                    pages.append(_lines(textpage, height))
                finally:
                    textpage.close()
            finally:
                page.close()
            widths.append(width)
            heights.append(height)
            labels.append(_label(pdf, i))
        title, author, published = _metadata(pdf)
    except pdfium.PdfiumError as exc:
        raise ExtractionError(f"the PDF is damaged ({exc})") from None
    finally:
        pdf.close()
    if not any(line.text.strip() for lines in pages for line in lines):
        raise ExtractionError(
            f"the PDF has no text layer ({len(pages)} page{'' if len(pages) == 1 else 's'} of images, a scan?): "
            "OCR is not done, so it has no text"
        )
    kept = _drop_running_lines(pages, heights, labels)
    text, spans = _paragraphs(kept, widths, labels)
    return Extraction(text=text, title=title, author=author, published=published, pages=spans)


def _label(pdf: object, index: int) -> str:
    get = getattr(pdf, "get_page_label", None)
    label = get(index) if callable(get) else ""
    label = " ".join(str(label or "").split())
    return label or str(index + 1)


def _lines(textpage: object, height: float) -> list[_Line]:
    """The page's lines in content order, each with its box (top-down coordinates)."""
    text: str = textpage.get_text_range()  # type: ignore[attr-defined]
    count: int = textpage.count_chars()  # type: ignore[attr-defined]
    get_box = textpage.get_charbox  # type: ignore[attr-defined]
    exact = len(text) == count  # PDFium's text is one character per index, except for some non-BMP text
    lines: list[_Line] = []
    for match in re.finditer(r"[^\r\n]+", text):
        chunk = match.group(0)
        if not chunk.strip():
            continue
        boxes = []
        if exact:
            boxes = [get_box(match.start() + o) for o, char in enumerate(chunk) if not char.isspace()]
        boxes = [b for b in boxes if b[2] > b[0] or b[3] > b[1]]
        if not boxes:  # no usable boxes: a line in the body, never taken for a header or footer
            lines.append(_Line(chunk, 0.0, 0.0, height / 2, height / 2))
            continue
        left = min(b[0] for b in boxes)
        right = max(b[2] for b in boxes)
        # Centre of the characters' boxes: a band test by the centre of each character (median).
        tops = sorted(b[3] for b in boxes)
        bottoms = sorted(b[1] for b in boxes)
        mid = len(tops) // 2
        lines.append(_Line(chunk, left, right, height - tops[mid], height - bottoms[mid]))
    return lines


def _normalised(text: str, label: str) -> str:
    """The line with its page's label and every number as ``#``: the same on every page for a running line."""
    words = ["#" if w == label.casefold() else w for w in " ".join(text.split()).casefold().split(" ")]
    return re.sub(r"\d+", "#", " ".join(words))


def _drop_running_lines(pages: list[list[_Line]], heights: list[float], labels: list[str]) -> list[list[_Line]]:
    """Pages without the running headers, footers and page numbers in their top and bottom bands."""

    def in_band(line: _Line, height: float) -> bool:
        return line.centre < BAND * height or line.centre > (1 - BAND) * height

    seen: dict[str, set[int]] = {}
    for number, (lines, height) in enumerate(zip(pages, heights, strict=True)):
        for line in lines:
            if in_band(line, height):
                seen.setdefault(_normalised(line.text, labels[number]), set()).add(number)
    kept = []
    for number, (lines, height) in enumerate(zip(pages, heights, strict=True)):
        page_lines = []
        for line in lines:
            if in_band(line, height):
                words = " ".join(line.text.split())
                if _PAGE_NUMBER_RE.match(words) or words == labels[number]:
                    continue
                if len(seen.get(_normalised(line.text, labels[number]), ())) > 1:
                    continue
            page_lines.append(line)
        kept.append(page_lines)
    return kept


def _ends_sentence(text: str) -> bool:
    return text.rstrip()[-1:] in _SENTENCE_END


def _paragraphs(pages: list[list[_Line]], widths: list[float], labels: list[str]) -> tuple[str, tuple[PageSpan, ...]]:
    """The text (paragraphs, a blank line between them) and each page's span in it."""
    pitches = [
        b.top - a.top
        for lines in pages
        for a, b in itertools.pairwise(lines)
        if 0 < b.top - a.top < 3 * max(a.bottom - a.top, 1.0)
    ]
    pitch = statistics.median(pitches) if pitches else 14.0
    paragraphs: list[list[tuple[int, str]]] = []  # each a list of (page index, line text)
    previous: _Line | None = None
    previous_right = 0.0
    previous_page = -1
    for number, lines in enumerate(pages):
        width = widths[number]
        runs = _runs(lines)
        rights: dict[tuple[int, float], float] = {}  # (run, left edge) -> its column's right edge
        for i, line in enumerate(lines):
            key = (id(runs[i]), line.left)
            if key not in rights:
                rights[key] = max(
                    (x.right for x in runs[i] if abs(x.left - line.left) < COLUMN_SHARE * width), default=line.right
                )
            column_right = rights[key]
            new = previous is None
            if previous is not None:
                ended = _room_for(previous, previous_right, line) or _ends_sentence(previous.text)
                if previous_page == number and line.top > previous.top:
                    new = (
                        line.top - previous.top > PARAGRAPH_GAP * pitch
                        or line.left - previous.left > INDENT_SHARE * width
                        or _room_for(previous, previous_right, line)
                    )
                else:  # a new page or column: the paragraph goes on unless it visibly ended
                    new = ended
            if new:
                paragraphs.append([])
            paragraphs[-1].append((number, line.text.strip()))
            previous, previous_right, previous_page = line, column_right, number
    return _assemble(paragraphs, labels)


def _runs(lines: list[_Line]) -> list[list[_Line]]:
    """For each line, the lines of its run: lines going down the page until the text jumps back up (a new column)."""
    runs: list[list[_Line]] = []
    of_line: list[list[_Line]] = []
    for i, line in enumerate(lines):
        if i == 0 or line.top <= lines[i - 1].top:
            runs.append([])
        runs[-1].append(line)
        of_line.append(runs[-1])
    return of_line


def _room_for(previous: _Line, column_right: float, line: _Line) -> bool:
    """Whether the first word of ``line`` would have fitted at the end of ``previous``: then ``previous``
    ended its paragraph (a line is only broken early at a paragraph's end)."""
    text = previous.text.strip()
    if not text or previous.right <= previous.left:
        return False
    char = (previous.right - previous.left) / len(text)
    word = len(line.text.split()[0]) if line.text.split() else 0
    return column_right - previous.right > char * (word + 1) * ROOM_SLACK


def _assemble(paragraphs: list[list[tuple[int, str]]], labels: list[str]) -> tuple[str, tuple[PageSpan, ...]]:
    parts: list[str] = []
    first_char: dict[int, int] = {}
    length = 0
    for paragraph in paragraphs:
        if parts:
            parts.append("\n\n")
            length += 2
        soft = False  # the previous line ended with PDFium's mark of a line-end hyphen
        for i, (number, raw) in enumerate(paragraph):
            # PDFium marks a hyphen it found at a line's end as U+0002 or U+FFFE (and sometimes joins the two
            # lines itself): the word is rejoined without it.
            line = raw.rstrip(_SOFT_HYPHENS).replace("\ufffe", "").replace("\x02", "")
            if i and not soft:
                before = parts[-1]
                if before[-1:] in _HYPHENS and len(before) > 1 and before[-2].isalpha() and line[:1].islower():
                    parts[-1] = before[:-1]
                    length -= 1
                else:
                    parts.append(" ")
                    length += 1
            soft = raw.endswith(tuple(_SOFT_HYPHENS))
            first_char.setdefault(number, length)
            parts.append(line)
            length += len(line)
    text = "".join(parts) + "\n"
    spans = []
    starts = [first_char.get(n) for n in range(len(labels))]
    for number, label in enumerate(labels):
        start = starts[number]
        following = next((s for s in starts[number + 1 :] if s is not None), len(text))
        if start is None:  # a page without text: an empty span where it sits
            start = following
        spans.append(PageSpan(number + 1, label, start, following))
    return text, tuple(spans)


def _metadata(pdf: object) -> tuple[str | None, str | None, str | None]:
    get = getattr(pdf, "get_metadata_dict", None)
    meta = get() if callable(get) else {}
    title = " ".join(str(meta.get("Title") or "").split()) or None
    if title and _JUNK_TITLE_RE.search(title):  # what a printer driver or converter wrote, not a title
        title = None
    author = " ".join(str(meta.get("Author") or "").split()) or None
    if author and author.casefold() in {"anonymous", "unknown", "user", "admin", "author"}:
        author = None
    date = str(meta.get("CreationDate") or "")
    match = re.match(r"(?:D:)?(\d{4})(\d{2})?(\d{2})?", date)
    published = None
    if match and match.group(1) and int(match.group(1)) > 1900:
        published = "-".join(p for p in match.groups() if p)
    return title, author, published

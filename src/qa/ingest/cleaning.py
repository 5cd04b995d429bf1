"""Find the article inside a scraped page: which spans are prose, which are boilerplate.

The text is cut into *blocks* (one per line, or one per paragraph when the file is
hard-wrapped) and each block gets a kind:

``title``       the headline on the first line of content
``heading``     a short line that is not a sentence, followed by prose
``byline``      "Written by …", "Author: …", "By …"
``prose``       sentences of the article: the only kind that becomes passages
``boilerplate`` everything else, with a ``reason``: ``image`` (file names, "click to
                see the full-size image", short captions ending in a credit),
                ``number`` (numbers alone, or a label and a number: "Posts: 1,204"),
                ``navigation`` (menus, breadcrumbs, "Continue Reading", "RELATED: …"),
                ``comments`` (comment widgets), ``disclaimer`` (rights, terms and
                cookie notices), ``repeated`` (a line seen before), ``short`` (a short
                non-sentence line that heads no prose)

The rules are general (shape of the line, a vocabulary of widget and navigation
words, position) rather than a list of the seeds' strings; ``tests/ingest/test_cleaning.py``
checks them on articles written for the tests as well as on the seeds. Offsets are
always into the original text, so whatever is kept can be cited verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from qa.text import BYLINE_NAME_WORDS, SPACES, count_words, normalize

BlockKind = Literal["title", "heading", "byline", "prose", "boilerplate"]

_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")
#: A block that ends like a sentence: terminal punctuation, then closing quotes or brackets.
_SENTENCE_END_RE = re.compile(r"[.!?\u2026](?:[\"'\u201d\u2019)\]]*)$")

#: Prose needs this many words when it ends like a sentence ...
MIN_SENTENCE_WORDS = 4
#: ... and this many when it does not (a long caption or an unpunctuated paragraph).
MIN_UNPUNCTUATED_PROSE_WORDS = 16
#: Widget and navigation vocabulary only applies to lines this short.
MAX_WIDGET_WORDS = 12
#: A first heading of more words than this is not the title (only a Markdown heading can be this
#: long: other headings have fewer than MIN_UNPUNCTUATED_PROSE_WORDS).
MAX_TITLE_WORDS = 25
#: A line that starts with a bare "By" and ends like a sentence is read as a sentence, not a
#: byline, when it has more words than this ("By Monday, officials had left the town.").
MAX_BYLINE_SENTENCE_WORDS = 4
#: A name after a bare "By" has at most this many words.
MAX_BYLINE_NAME_WORDS = 6
#: A line with this many disclaimer cues is a disclaimer at any length ...
MIN_DISCLAIMER_CUES = 2
#: ... and a line with one cue only when it has at most this many words ("Privacy policy").
MAX_ONE_CUE_DISCLAIMER_WORDS = 6
#: A menu or breadcrumb is at least this many items, each of at most MAX_MENU_ITEM_WORDS words.
MIN_MENU_ITEMS = 2
MAX_MENU_ITEM_WORDS = 4

# Hard-wrapped text (see _wrap_width). Chosen by hand in d603162, no measurement recorded; what
# checks them is tests/ingest/test_cleaning.py (articles wrapped at 60, 72 and 79 characters are
# rejoined; a short page with long paragraphs is not). Measured with them: none of the 5 seeds,
# the 24 SQuAD articles or the 5,183 SciFact abstracts is taken as hard-wrapped.
#: Hard-wrapped text is wrapped at a width in this range (characters).
MIN_WRAP_WIDTH = 40
MAX_WRAP_WIDTH = 100
#: The wrap width is the length of the line at this quantile of line lengths (the longest few
#: lines, a URL or a table row, do not set it).
WRAP_WIDTH_QUANTILE = 0.95
#: A line is *filled* when it reaches this share of the wrap width; in wrapped text a filled
#: line is continued by the next one.
FILLED_SHARE = 0.6
#: Wrapped text has at least this many filled lines ...
MIN_FILLED_LINES = 3
#: ... and at least this share of its lines filled ...
MIN_FILLED_LINE_SHARE = 0.3
#: ... and at most this share of its lines *overlong*: longer than the width by more than
#: OVERLONG_SLACK_CHARS or OVERLONG_SLACK_SHARE of the width, whichever is more.
MAX_OVERLONG_LINE_SHARE = 0.05
OVERLONG_SLACK_CHARS = 8
OVERLONG_SLACK_SHARE = 0.1

_IMAGE_RE = re.compile(
    r"(?i)(?:\b[\w\-]+\.(?:jpe?g|png|gif|webp|svg|bmp|tiff?|heic|avif)\b"
    r"|^!\[[^\]]*\]\([^)]*\)$"
    r"|^\W*(?:click|tap)\b.{0,40}\b(?:image|photo|picture|enlarge|full[- ]?size)\b"
    r"|^\W*(?:view|see|open)\b.{0,20}\b(?:full[- ]?size|larger) (?:image|photo|picture|version)\b"
    r"|^(?:image|photo|picture|photograph)(?: credit)?s?\s*[:(]"
    r")"
)
#: A photo credit closing a line: "(Via Reuters)", "(Photo: AP)", "(©Ministry ...)".
_CREDIT_RE = re.compile(r"(?i)[(\[](?:via|photo|image|picture|credit|courtesy|source|file photo|©|\(c\))[^)\]]*[)\]]$")
_NUMBER_RE = re.compile(r"^[\d\s.,:;%/+\-\u2013\u2014()#]+$")
_VALUE = r"(?:\d[\d,.:/\-]*|[A-Z][a-z]{2,8}\.?|[ap]\.?m\.?)"
#: A field label and a value made of numbers and dates: forum statistics, member details.
_FIELD_NUMBER_RE = re.compile(rf"^[^\W\d_][\w' ]{{0,30}}:\s*(?=[^:]*\d){_VALUE}(?:[\s,]+{_VALUE})*$")
_SYMBOLS_RE = re.compile(r"^[\W_]+$")
_NAV_SEPARATORS_RE = re.compile(r"\s+[|\u2022\u00b7\u00bb\u00ab\u203a\u2039/>\u2192]\s+|\s*\|\s*")
_NAVIGATION_RE = re.compile(
    r"(?i)^(?:home|menu|search|back|top|back to top|next|previous|prev|older|newer"
    r"|skip to (?:main )?content|read more|read next|read also|see also|continue reading"
    r"|continue|more|more (?:on|about) (?:the|this) (?:topic|story|subject)|related"
    r"|related (?:articles?|posts?|stories|news|content|topics?)|you may also like"
    r"|recommended(?: for you)?|trending(?: now)?|popular(?: posts)?|latest(?: news| posts)?"
    r"|share|share (?:this|on)(?: \w+)?|print|email|e-mail|tweet|facebook|twitter|x|linkedin"
    r"|whatsapp|telegram|reddit|pinterest|copy link|sign in|sign up|log ?in|log ?out"
    r"|register|subscribe(?: now| to .*)?|newsletter|follow us(?: on .*)?|tags?|categories"
    r"|category|advertisement|sponsored(?: content)?|ad|source|sources|loading(?:\.\.\.)?"
    r"|forum statistics|threads|messages|members|latest member|online now|statistics"
    r"|you are here|breadcrumbs?|navigation|main menu|close|open|toggle"
    r"|about us|contact(?: us)?|careers|advertise(?: with us)?|faq"
    r"|page \d+(?: of \d+)?|new (?:topic|thread|post)|who is online|users? online"
    r"|(?:tags?|categor(?:y|ies)|filed under|topics?)\s*:.*"
    r"|(?:related(?: \w+)?|read (?:more|also|next)|see also|also read|watch|listen)\s*:\s.*)\s*[:.!\u2026\u00bb>]*$"
)
_COMMENTS_RE = re.compile(
    r"(?i)^(?:\d+\s+(?:comments?|replies|responses|thoughts|feedbacks?)(?:\s+(?:on|to)\s.*)?$"
    r"|(?:view|show|load|see|read|hide) (?:all |more |the )?(?:\d+ )?(?:comments?|replies)\b"
    r"|comments? (?:are|is) (?:closed|disabled)\b"
    r"|(?:leave|post|add|write|submit) (?:a |your |new )?(?:comment|reply|response)\b"
    r"|notify (?:me )?of\b|inline feedbacks?$|guest$|newest$|oldest$|most voted$"
    r"|(?:log ?in|sign in) to (?:comment|reply|post)\b|join the (?:discussion|conversation)\b"
    r"|be the first to (?:comment|reply)\b|(?:reply|replies|comments?|feedbacks?|quote|reply with quote)$)"
)
_DISCLAIMER_CUES = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\brights reserved\b",
        r"\bfor reference only\b",
        r"\b(?:legal |original |rightful )+owners?\b",
        r"\bterms (?:&|and) conditions\b",
        r"\bterms of (?:use|service)\b",
        r"\bprivacy (?:policy|notice)\b",
        r"\bcookies? (?:policy|settings|preferences)\b",
        r"\b(?:we|site|website) uses? cookies\b",
        r"\buse of cookies\b",
        r"\b(?:this|our) (?:web ?)?site\b",
        r"\bby (?:continuing to (?:browse|use)|using this (?:web ?)?site)\b",
        r"\bdisclaimer\b",
        r"(?:\u00a9|\(c\)|\bcopyright\b)\s*\d{4}",
        r"\b(?:3rd|third)[- ]party (?:sources|sites|content)\b",
        r"\b(?:do not|don't) (?:necessarily )?reflect\b",
        r"\bwithout (?:prior )?(?:written )?permission\b",
    )
]
_BYLINE_RE = re.compile(
    r"^(?:(?P<marker>(?:written|posted|reported|edited|compiled)\s+by|authors?\s*:)"
    r"|by(?=\s+[^\W\d_]))"
    r"[\s\u00a0:]*(?P<name>.+)$",
    re.IGNORECASE,
)
_MONTHS = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
#: Where a name in a byline ends: a comma, a separator (dash, bar, bullet, arrow), a date,
#: a number or "on …".
_BYLINE_NAME_END_RE = re.compile(
    r"\s*(?:[,;|/\u00bb\u00ab\u203a\u2039\u2022\u00b7]|\s[-\u2013\u2014]\s|\s+on\s+\w|\s+\(|\s+\d"
    rf"|\s+{_MONTHS}\s+\d|\s+(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day\b)"
)
#: Markdown emphasis around words ("**bold**", "_italic_"), never inside a word ("snake_case").
_MARKDOWN_EMPHASIS_RE = re.compile(r"(?<!\w)(\*{1,3}|_{1,3})(?=\S)(.+?)(?<=\S)\1(?!\w)")
#: A markdown link or image: only its text counts when matching widget vocabulary.
_MARKDOWN_LINK_RE = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKDOWN_HEADING_RE = re.compile(r"^#{1,6}\s+")
_MARKDOWN_LIST_RE = re.compile(r"^(?:[-*+]|\d+[.)])\s+")


@dataclass(frozen=True, slots=True)
class Block:
    """A span ``[start, end)`` of the original text, trimmed, and what it is."""

    start: int
    end: int
    kind: BlockKind
    reason: str = ""

    def text(self, source: str) -> str:
        return source[self.start : self.end]


def analyse(text: str) -> list[Block]:
    """Cut ``text`` into blocks and classify each one. Blank lines produce no block."""
    spans = list(_logical_lines(text))
    kinds: list[tuple[BlockKind, str]] = [_classify_alone(text[s:e]) for s, e in spans]

    # Repeated lines: a later copy of any earlier block is boilerplate (repeated headlines,
    # pull quotes, widgets shown twice).
    seen: set[str] = set()
    for i, (s, e) in enumerate(spans):
        key = normalize(text[s:e])
        if key in seen and kinds[i][0] != "boilerplate":
            kinds[i] = ("boilerplate", "repeated")
        seen.add(key)

    # The headline: the first block of content, when it is short and not a sentence.
    first = next((i for i, (k, _) in enumerate(kinds) if k not in ("boilerplate", "byline")), None)
    if (
        first is not None
        and kinds[first][0] == "heading"
        and count_words(text[slice(*spans[first])]) <= MAX_TITLE_WORDS
    ):
        kinds[first] = ("title", "")

    # A short non-sentence line is a heading only when prose follows it.
    for i, (kind, _) in enumerate(kinds):
        if kind == "heading" and (i + 1 == len(kinds) or kinds[i + 1][0] != "prose"):
            kinds[i] = ("boilerplate", "short")

    return [Block(s, e, k, r) for (s, e), (k, r) in zip(spans, kinds, strict=True)]


def byline_author(line: str) -> str | None:
    """The author's name in a byline such as "Written by Ahmed Adel, researcher".

    A line that starts with a bare "By" is a byline only when capitalised words follow
    and it does not read as a sentence ("By Monday, officials had left the town.").
    """
    stripped = _bare(line.strip(SPACES)).strip(SPACES + "*_")
    match = _BYLINE_RE.match(stripped)
    if match is None:
        return None
    name = match.group("name").strip(SPACES)
    end = _BYLINE_NAME_END_RE.search(name)
    if end is not None:
        name = name[: end.start()]
    name = name.strip(SPACES + ".:;-\u2013\u2014|*_")
    if not name:
        return None
    if match.group("marker") is None:
        words = name.split()
        sentence = bool(_SENTENCE_END_RE.search(stripped)) and count_words(stripped) > MAX_BYLINE_SENTENCE_WORDS
        if (
            sentence
            or len(words) > MAX_BYLINE_NAME_WORDS
            or not all(w[0].isupper() or w in BYLINE_NAME_WORDS for w in words)
        ):
            return None
    return name


def title_text(line: str) -> str:
    """A headline line as a title: markdown markers, emphasis and surrounding space removed."""
    stripped = _MARKDOWN_HEADING_RE.sub("", line.strip(SPACES))
    stripped = _MARKDOWN_EMPHASIS_RE.sub(r"\2", stripped)
    return " ".join(stripped.strip("*_ ").split())


def cleaned_text(text: str, blocks: list[Block]) -> str:
    """The article without boilerplate: headings and prose, one block per paragraph."""
    return "\n\n".join(b.text(text) for b in blocks if b.kind in ("heading", "prose"))


def _classify_alone(line: str) -> tuple[BlockKind, str]:
    """Classify one block by its own text; position-dependent rules come later."""
    words = count_words(line)
    if _SYMBOLS_RE.match(line):
        return "boilerplate", "short"
    if _NUMBER_RE.match(line):
        return "boilerplate", "number"
    if _IMAGE_RE.search(line) and words <= MAX_WIDGET_WORDS:
        return "boilerplate", "image"
    cues = sum(1 for cue in _DISCLAIMER_CUES if cue.search(line))
    if cues >= MIN_DISCLAIMER_CUES or (cues == 1 and words <= MAX_ONE_CUE_DISCLAIMER_WORDS):
        return "boilerplate", "disclaimer"
    if words <= MAX_WIDGET_WORDS:
        bare = _bare(line)
        if _COMMENTS_RE.search(bare):
            return "boilerplate", "comments"
        if byline_author(bare):
            return "byline", ""
        if _NAVIGATION_RE.match(bare) or _is_menu(bare):
            return "boilerplate", "navigation"
        if _FIELD_NUMBER_RE.match(bare):
            return "boilerplate", "number"
    sentence_like = bool(_SENTENCE_END_RE.search(line))
    if _MARKDOWN_HEADING_RE.match(line):
        return ("heading", "") if words else ("boilerplate", "short")
    if (sentence_like and words >= MIN_SENTENCE_WORDS) or words >= MIN_UNPUNCTUATED_PROSE_WORDS:
        return "prose", ""
    if words == 0:
        return "boilerplate", "short"
    if _CREDIT_RE.search(line):
        return "boilerplate", "image"
    return "heading", ""


def _bare(line: str) -> str:
    """A short line without markdown: heading and list markers, emphasis, link targets."""
    bare = _MARKDOWN_LIST_RE.sub("", _MARKDOWN_HEADING_RE.sub("", line))
    return _MARKDOWN_LINK_RE.sub(r"\1", bare).strip("*_[]() ")


def _is_menu(line: str) -> bool:
    """Two or more short items separated by bars, bullets or arrows: a menu or breadcrumb."""
    parts = [p for p in _NAV_SEPARATORS_RE.split(line) if p.strip()]
    return len(parts) >= MIN_MENU_ITEMS and all(count_words(p) <= MAX_MENU_ITEM_WORDS for p in parts)


def _physical_lines(text: str) -> Iterator[tuple[int, int]]:
    """``[start, end)`` of each line, without its line break."""
    for match in _LINE_RE.finditer(text):
        start, end = match.span()
        if start == end:
            break
        line = match.group()
        yield start, start + len(line.rstrip("\r\n"))


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in SPACES:
        start += 1
    while end > start and text[end - 1] in SPACES:
        end -= 1
    return start, end


def _logical_lines(text: str) -> Iterator[tuple[int, int]]:
    """Trimmed, non-blank blocks: lines, or whole paragraphs when the text is hard-wrapped.

    A hard-wrapped file (lines between about 40 and 100 characters wide, most filled close
    to a common width, almost none longer) has its paragraphs rejoined: a line is continued
    by the next one when it reaches most of the width and the next line does not start a
    list or heading. A page with long unwrapped paragraphs is never rejoined, however few
    lines it has, so its short menu and title lines stay blocks of their own.
    """
    lines = [_trim(text, s, e) for s, e in _physical_lines(text)]
    lengths = sorted(e - s for s, e in lines if e > s)
    if not lengths:
        return
    width = _wrap_width(lengths)

    current: tuple[int, int] | None = None
    for s, e in lines:
        if e == s:
            if current is not None:
                yield current
                current = None
            continue
        line = text[s:e]
        joins = (
            width is not None
            and current is not None
            and current[1] - _line_start(text, current[1]) >= FILLED_SHARE * width
            and not _MARKDOWN_LIST_RE.match(line)
            and not _MARKDOWN_HEADING_RE.match(line)
        )
        if joins and current is not None:
            current = (current[0], e)
        else:
            if current is not None:
                yield current
            current = (s, e)
    if current is not None:
        yield current


def _wrap_width(lengths: list[int]) -> int | None:
    """The width the text is hard-wrapped at, from its sorted non-blank line lengths; ``None`` when
    it is not hard-wrapped."""
    width = lengths[int(WRAP_WIDTH_QUANTILE * (len(lengths) - 1))]
    filled = sum(1 for n in lengths if n >= FILLED_SHARE * width)
    overlong = sum(1 for n in lengths if n > width + max(OVERLONG_SLACK_CHARS, OVERLONG_SLACK_SHARE * width))
    wrapped = (
        MIN_WRAP_WIDTH <= width <= MAX_WRAP_WIDTH
        and filled >= MIN_FILLED_LINES
        and filled >= MIN_FILLED_LINE_SHARE * len(lengths)
        and overlong <= MAX_OVERLONG_LINE_SHARE * len(lengths)
    )
    return width if wrapped else None


def _line_start(text: str, pos: int) -> int:
    """Start of the physical line that contains ``pos - 1``, for measuring its length."""
    return max(text.rfind("\n", 0, pos), text.rfind("\r", 0, pos)) + 1

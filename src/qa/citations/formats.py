"""A passage's citation in the formats a report writer pastes: Markdown, plain text, CSL-JSON, BibTeX.

Markdown and plain text are the strings every :class:`~qa.citations.cite.Citation` carries
(``markdown`` and ``formatted``). CSL-JSON follows the CSL 1.0.2 data schema
(``qa/citations/schemas/csl-data.json`` holds the subset this module writes); BibTeX is an
``@article`` whose key is stable across rebuilds (it is made from the passage's content
hash), with every BibTeX special character escaped.

Also renders a whole :class:`~qa.search.models.Answer` as a Markdown block for a report: block
quotes with numbered footnotes.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import TYPE_CHECKING, Any, Literal

from qa.errors import InvalidQueryError
from qa.text import FAMILY_NAME_PARTICLES

if TYPE_CHECKING:
    from qa.citations.cite import PassageView
    from qa.search.models import Answer

CiteFormat = Literal["markdown", "text", "csl-json", "bibtex"]
#: Every format :func:`render_citation` writes, in the order they are offered.
CITE_FORMATS: tuple[CiteFormat, ...] = ("markdown", "text", "csl-json", "bibtex")
#: The media type each format is sent with.
MEDIA_TYPES: dict[CiteFormat, str] = {
    "markdown": "text/markdown; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "csl-json": "application/vnd.citationstyles.csl+json",
    "bibtex": "application/x-bibtex; charset=utf-8",
}

_DATE_RE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"})
_AUTHOR_SPLIT_RE = re.compile(r"\s*(?:;|&|\band\b|,(?=\s*\S+\s+\S+))\s*")
#: A one-comma byline is read as "Family, Given" only when the family part has at most this many
#: words ("de la Cruz, Ana"); a longer one is a list of names.
MAX_FAMILY_NAME_WORDS = 3
#: A BibTeX key is <name><year>-<hash>: the name cut to this many ASCII characters ...
BIBTEX_KEY_NAME_CHARS = 24
#: ... and this many hex digits of the passage id's content hash (stable across rebuilds).
BIBTEX_KEY_HASH_CHARS = 8
#: Without an author, a BibTeX key starts with the title's first word of four letters or more.
_TITLE_WORD_RE = re.compile(r"[^\W\d_]{4,}")
#: One pass over the text, so the backslashes an escape adds are never escaped again.
_BIBTEX_ESCAPES = str.maketrans(
    {
        "\\": r"\textbackslash{}",
        "{": r"\{",
        "}": r"\}",
        "$": r"\$",
        "&": r"\&",
        "%": r"\%",
        "#": r"\#",
        "_": r"\_",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
)


def date_parts(published: str | None) -> list[int] | None:
    """``[year, month?, day?]`` from an ISO date (``2024-09-30``, ``2024-09``, ``2024``, or a timestamp)."""
    match = _DATE_RE.match(published or "")
    if not match:
        return None
    parts = [int(p) for p in match.groups() if p is not None]
    if len(parts) > 1 and not 1 <= parts[1] <= 12:
        return parts[:1]
    if len(parts) > 2 and not 1 <= parts[2] <= 31:
        return parts[:2]
    return parts


def parse_authors(author: str | None) -> list[dict[str, str]]:
    """CSL names from a byline: ``"S. Jaishankar and Ana de la Cruz"`` -> family/given pairs.

    ``"Family, Given"`` is read as such when the byline is one name; a single word, or a
    name that cannot be split, becomes ``{"literal": ...}``.
    """
    text = " ".join((author or "").split())
    if not text:
        return []
    if text.count(",") == 1 and " and " not in text and "&" not in text and ";" not in text:
        family, given = (p.strip() for p in text.split(","))
        if (
            family
            and given
            and len(family.split()) <= MAX_FAMILY_NAME_WORDS
            and given.casefold().rstrip(".") not in _SUFFIXES
        ):
            return [{"family": family, "given": given}]
    names = [n for n in _AUTHOR_SPLIT_RE.split(text) if n]
    return [_one_name(n) for n in names]


def _one_name(name: str) -> dict[str, str]:
    words = name.split()
    suffix = ""
    if len(words) > 2 and words[-1].casefold().rstrip(",") in _SUFFIXES:
        suffix = words.pop().rstrip(",")
        words[-1] = words[-1].rstrip(",")
    if len(words) < 2:
        return {"literal": name}
    cut = len(words) - 1
    particle = cut
    while particle > 1 and words[particle - 1].islower() and words[particle - 1] in FAMILY_NAME_PARTICLES:
        particle -= 1
    out = {"family": words[-1], "given": " ".join(words[:particle])}
    if particle < cut:
        out["non-dropping-particle"] = " ".join(words[particle:cut])
    if suffix:
        out["suffix"] = suffix
    return out


def locator_note(view: PassageView) -> str:
    c = view.citation
    return f"Passage {view.passage_id}, characters {c.start}\u2013{c.end} of {c.source}"


def page_range(view: PassageView, dash: str) -> str | None:
    """``12`` or ``12<dash>13`` (first and last page the passage touches); ``None`` without pages."""
    pages = view.citation.pages
    if not pages:
        return None
    return pages[0] if len(pages) == 1 else f"{pages[0]}{dash}{pages[-1]}"


def csl_item(view: PassageView) -> dict[str, Any]:
    """One CSL-JSON item for the passage's article; the passage's place is in ``note`` and ``custom``."""
    c = view.citation
    item: dict[str, Any] = {
        "id": view.passage_id,
        "type": "article-newspaper" if c.outlet else "article",
        "title": c.title,
    }
    authors = parse_authors(c.author)
    if authors:
        item["author"] = authors
    if c.outlet:
        item["container-title"] = c.outlet
    if c.url:
        item["URL"] = c.url
    parts = date_parts(c.published)
    if parts:
        item["issued"] = {"date-parts": [parts]}
    page = page_range(view, "-")
    if page:
        item["page"] = page
    item["note"] = locator_note(view)
    item["custom"] = {
        "passage_id": view.passage_id,
        "doc_id": c.doc_id,
        "source": c.source,
        "start": c.start,
        "end": c.end,
    }
    return item


def bibtex_escape(text: str) -> str:
    """``text`` safe inside a braced BibTeX field: the ten special characters escaped."""
    return text.translate(_BIBTEX_ESCAPES)


def bibtex_key(view: PassageView) -> str:
    """``<family><year>-<hash>`` (the title's first word without an author): ASCII, and the same for
    the same passage text in any build."""
    authors = parse_authors(view.citation.author)
    first = authors[0] if authors else {}
    title_word = next((w for w in _TITLE_WORD_RE.findall(view.citation.title)), "")
    name = first.get("family") or first.get("literal") or title_word or view.citation.doc_id
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9]+", "", ascii_name).lower()[:BIBTEX_KEY_NAME_CHARS] or "anon"
    parts = date_parts(view.citation.published)
    year = str(parts[0]) if parts else "nd"
    digest = view.passage_id.rsplit(":", 1)[-1][:BIBTEX_KEY_HASH_CHARS]
    return f"{stem}{year}-{digest}"


def bibtex_entry(view: PassageView) -> str:
    """An ``@article`` entry for the passage's article, with the passage's offsets in ``note``."""
    c = view.citation
    fields: list[tuple[str, str]] = [("title", bibtex_escape(c.title))]
    names = parse_authors(c.author)
    if names:
        fields.append(("author", " and ".join(_bibtex_name(n) for n in names)))
    if c.outlet:
        fields.append(("journal", bibtex_escape(c.outlet)))
    parts = date_parts(c.published)
    if parts:
        fields.append(("year", str(parts[0])))
        if len(parts) > 1:
            fields.append(("month", _MONTHS[parts[1] - 1]))
        fields.append(("date", "-".join(f"{p:02d}" if i else str(p) for i, p in enumerate(parts))))
    if c.url:
        # URLs are verbatim in the url field (url/hyperref packages); only braces would break it.
        fields.append(("url", c.url.replace("{", "%7B").replace("}", "%7D")))
    pages = page_range(view, "--")
    if pages:
        fields.append(("pages", bibtex_escape(pages)))
    note = f"Passage {view.passage_id}, characters {c.start}--{c.end} of {c.source}"
    fields.append(("note", bibtex_escape(note)))
    body = ",\n".join(f"  {name} = {value if name == 'month' else '{' + value + '}'}" for name, value in fields)
    return f"@article{{{bibtex_key(view)},\n{body}\n}}\n"


def _bibtex_name(name: dict[str, str]) -> str:
    if "literal" in name:
        return "{" + bibtex_escape(name["literal"]) + "}"
    out = bibtex_escape(" ".join(filter(None, (name.get("non-dropping-particle"), name["family"]))))
    if "suffix" in name:
        out += ", " + bibtex_escape(name["suffix"])
    return f"{out}, {bibtex_escape(name['given'])}"


def render_citation(view: PassageView, fmt: str) -> str:
    """The passage's citation in ``fmt`` (one of :data:`CITE_FORMATS`), to be sent as ``MEDIA_TYPES[fmt]``;
    CSL-JSON is a list of one item, as citation processors read it."""
    if fmt == "markdown":
        return view.citation.markdown
    if fmt == "text":
        return view.citation.formatted
    if fmt == "csl-json":
        return json.dumps([csl_item(view)], ensure_ascii=False, indent=2)
    if fmt == "bibtex":
        return bibtex_entry(view)
    raise InvalidQueryError(f"unknown citation format {fmt!r}: use one of {', '.join(CITE_FORMATS)}")


def markdown_report(answer: Answer) -> str:
    """The answer as Markdown to paste into a report: each passage a block quote ending in a
    numbered footnote reference, then the footnotes (``[^1]: citation``)."""
    lines = [f"**{_md_inline(answer.question)}**", ""]
    if not answer.grounded:
        lines += ["*No passage clearly answers this question; the closest ones follow.*", ""]
    if not answer.results:
        lines.append("*No passages found.*")
        return "\n".join(lines) + "\n"
    notes: list[str] = []
    for result in answer.results:
        n = len(notes) + 1
        quoted = _md_inline(result.text)
        lines += [f"> {quoted} [^{n}]", ""]
        note = f"[^{n}]: {result.citation.markdown}"
        others = "; ".join(o.citation.markdown for o in result.also_reported_in)
        if others:
            note += f". Also reported in: {others}"
        notes.append(note)
    return "\n".join(lines + notes) + "\n"


def _md_inline(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", " ".join(text.split()))

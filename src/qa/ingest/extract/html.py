"""Saved web pages: the article's main text and the page's own metadata (trafilatura).

The text is trafilatura's plain-text output with ``include_comments=False`` (its default
keeps reader comments), ``favor_recall=False`` (recall pulls in sidebars) and
``deduplicate=False`` (deduplication makes one page's output depend on the pages read
before it, so offsets would depend on the order of the corpus). Each paragraph or heading
becomes one line, with a blank line between them.

Metadata comes from the page itself, in trafilatura's order (JSON-LD, OpenGraph and other
``<meta>`` tags, microdata, the markup): title, author, date, canonical URL, site name
(``outlet``). The "saved from url" comment a browser writes on a saved page supplies the
URL when the page names none. Placeholder authors ("admin", "anonymous") are dropped.
"""

from __future__ import annotations

import re

from qa.ingest.extract import Extraction, ExtractionError

#: qa's rules on top of trafilatura; bump when they change the text or metadata that come out.
RULES_VERSION = 1
#: A page larger than this is skipped. trafilatura took 176 ms for a 770 KB page (issue 13's
#: measurement), so 25 MB is several seconds and hundreds of MB of parse tree for one page;
#: no saved article page measured was above 2 MB.
MAX_HTML_BYTES = 25 * 1024 * 1024
#: What a browser writes at the top of a saved page: ``<!-- saved from url=(0042)https://... -->``.
_SAVED_FROM_RE = re.compile(rb"<!--\s*saved from url=\(\d+\)(\S+?)\s*-->", re.IGNORECASE)
#: Authors that name no one.
_PLACEHOLDER_AUTHORS = frozenset({"admin", "administrator", "anonymous", "unknown", "staff", "editor", "user", "guest"})


def extract(data: bytes) -> Extraction:
    if len(data) > MAX_HTML_BYTES:
        raise ExtractionError(
            f"the page is {len(data) / 1e6:.0f} MB, above the {MAX_HTML_BYTES // (1024 * 1024)} MB limit for HTML"
        )
    import trafilatura

    try:
        document = trafilatura.bare_extraction(
            data,
            include_comments=False,
            favor_recall=False,
            deduplicate=False,
            include_tables=True,
            with_metadata=True,
        )
    except (ValueError, TypeError, UnicodeError) as exc:  # pragma: no cover - trafilatura reports None instead
        raise ExtractionError(f"the page cannot be parsed ({exc})") from None
    if document is None:
        raise ExtractionError("no article text was found in the page (it is empty, not HTML, or all boilerplate)")
    if not isinstance(document, dict):
        document = document.as_dict()
    raw = document.get("text") or ""
    lines = [" ".join(line.split()) for line in raw.splitlines()]
    text = "\n\n".join(line for line in lines if line)
    if not text:
        raise ExtractionError("no article text was found in the page")
    url = _clean(document.get("url")) or _saved_from(data)
    return Extraction(
        text=text + "\n",
        title=_clean(document.get("title")),
        author=_author(document.get("author")),
        published=_clean(document.get("date")),
        url=url,
        outlet=_clean(document.get("sitename")),
    )


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    return text or None


def _author(value: object) -> str | None:
    text = _clean(value)
    if text is None:
        return None
    names = [n.strip() for n in text.split(";") if n.strip() and n.strip().casefold() not in _PLACEHOLDER_AUTHORS]
    return "; ".join(names) or None


def _saved_from(data: bytes) -> str | None:
    match = _SAVED_FROM_RE.search(data[:4096])
    if not match:
        return None
    url = match.group(1).decode("ascii", "replace")
    return url if url.startswith(("http://", "https://")) else None

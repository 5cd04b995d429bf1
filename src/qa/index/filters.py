"""Which documents a question may be answered from: data handed into the store.

The store turns a :class:`Filters` into its own terms (SQL over the documents table and a
FAISS selector for the embedded store); nothing above it evaluates one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from qa.errors import InvalidQueryError

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Filters:
    """Which documents a question may be answered from; ``None`` fields do not filter.

    ``author`` matches when it occurs in the document's author, ``outlet`` when it equals
    the document's outlet (both compared case-folded, runs of space as one); the
    ``published`` bounds compare the first ten characters of the document's date, and a
    document without a date never passes them.
    """

    doc_ids: tuple[str, ...] | None = None
    author: str | None = None
    outlet: str | None = None
    published_from: str | None = None
    published_to: str | None = None

    def check(self) -> None:
        """Raise :class:`InvalidQueryError` for a date that is not ``YYYY-MM-DD`` or an empty value."""
        for name in ("published_from", "published_to"):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                if not _DATE_RE.fullmatch(value):
                    raise ValueError(value)
                date.fromisoformat(value)  # a day of the calendar: not 2024-13-45
            except ValueError:
                raise InvalidQueryError(f"{name} must be a date as YYYY-MM-DD, not {value!r}") from None
        for name in ("author", "outlet"):
            value = getattr(self, name)
            if value is not None and not value.strip():
                raise InvalidQueryError(f"{name} must not be empty")
        if self.doc_ids is not None and not all(d.strip() for d in self.doc_ids):
            raise InvalidQueryError("doc_id must not be empty")

    def active(self) -> bool:
        return any(
            v is not None for v in (self.doc_ids, self.author, self.outlet, self.published_from, self.published_to)
        )


def fold(text: str) -> str:
    """Case-folded, with every run of white space as one space: how author and outlet compare."""
    return " ".join(text.casefold().split())

"""The HTTP API's request and response models (the library's own models are returned as they are)."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from qa.citations.cite import DocumentSummary
from qa.config import MAX_K, MAX_QUESTION_CHARS
from qa.index.filters import Filters
from qa.search.models import Mode, check_question

MODE_HELP = "dense (embeddings), lexical (BM25) or hybrid (both, fused; the best measured)."
GROUP_HELP = "Fold passages of other articles that report the same statement into one result (also_reported_in)."
#: The shape of a date in the schema; whether it names a real day is the library's check (Filters.check).
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


# The documents a question is answered from: /ask's filters and the MCP ask tool's ``filters``
# (a comment, not a docstring: pydantic would publish a docstring as the schema's description).
class AskFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    doc_id: list[str] | None = Field(None, description="Only these documents (repeatable).")
    author: str | None = Field(None, min_length=1, description="Only articles whose author contains this name.")
    outlet: str | None = Field(None, min_length=1, description="Only articles from this outlet.")
    published_from: str | None = Field(
        None, pattern=DATE_PATTERN, description="Only articles published on or after (YYYY-MM-DD)."
    )
    published_to: str | None = Field(
        None, pattern=DATE_PATTERN, description="Only articles published on or before (YYYY-MM-DD)."
    )

    def filters(self) -> Filters:
        doc_ids = tuple(self.doc_id) if self.doc_id else None
        return Filters(doc_ids, self.author, self.outlet, self.published_from, self.published_to)


# AskRequest is one question and its options: the JSON body of POST /ask and (as AskQuery,
# the question named ``q``) the query string of GET /ask. Field checks are the schema's;
# ``library_checks`` then runs the library's own (check_question, Filters.check), the same
# the CLI runs. Their InvalidQueryError is not a ValueError, so it passes through pydantic
# to the app's error handler: a blank question is the same 422 whichever way it arrives.
class AskRequest(AskFilters):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, examples=["Why did India reject an Asian NATO?"])
    k: int | None = Field(None, ge=1, le=MAX_K, description="How many passages to return (default: QA_DEFAULT_K).")
    mode: Mode = Field("hybrid", description=MODE_HELP)
    group: bool = Field(True, description=GROUP_HELP)

    @model_validator(mode="after")
    def library_checks(self) -> Self:
        check_question(self.question, self.k or 1)
        self.filters().check()
        return self


# GET /ask's query string: AskRequest with the question as ``q`` (no docstring, as above).
class AskQuery(AskRequest):
    question: str = Field(
        alias="q",
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        examples=["Why did India reject an Asian NATO?"],
        description="The question.",
    )


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1,
        description="One quote, or a Markdown draft: its quoted sentences (5 words or more) and > block quotes.",
        examples=["Jaishankar said that India has “no intention” of joining — “India does not see the need”."],
    )


class DocumentList(BaseModel):
    documents: list[DocumentSummary]
    count: int


class Health(BaseModel):
    """Liveness: always 200 while the process runs; ``status`` says whether it can answer."""

    status: str = Field(description='"ok" when a build is open and the model loaded, else "not_ready".')
    build_id: str | None = None
    model: str | None = None
    passages: int | None = None
    documents: int | None = None
    skipped: int | None = Field(default=None, description="Files of the corpus the build could not read.")
    reason: str | None = Field(default=None, description="Why the service is not ready, and what fixes it.")


class Ready(BaseModel):
    """Readiness: the build being served and the model answering."""

    status: str = "ready"
    build_id: str
    model: str
    passages: int
    documents: int
    skipped: int = Field(0, description="Files of the corpus the build could not read (see the manifest).")


class Reloaded(BaseModel):
    reloaded: bool = Field(description="False when CURRENT already named the build being served.")
    build_id: str
    previous_build_id: str | None

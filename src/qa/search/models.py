"""What a question is checked against and what an answer looks like: modes, checks, response models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from qa.citations.cite import Citation
from qa.config import MAX_K, MAX_QUESTION_CHARS
from qa.errors import InvalidQueryError

Mode = Literal["dense", "lexical", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "lexical", "hybrid")


class Highlight(BaseModel):
    """A sentence of the passage that answers the question: ``[start, end)`` in the passage and in the source."""

    start: int = Field(description="Offset of the sentence in the passage text.")
    end: int
    source_start: int = Field(description="Offset of the sentence in the source text.")
    source_end: int
    score: float = Field(description="Cosine similarity between the question and the sentence.")
    page: str | None = Field(None, description="For a PDF: the label of the page the sentence starts on.")


class Corroboration(BaseModel):
    """A passage of another document that says nearly the same as the result it is listed under."""

    passage_id: str
    text: str
    similarity: float = Field(description="Cosine similarity to the result's passage.")
    citation: Citation


class Result(BaseModel):
    """One ranked passage: a verbatim span of one article, with its citation."""

    rank: int = Field(description="1 for the best passage.")
    score: float = Field(description="The ranking score of the mode asked (fused score for hybrid).")
    dense_score: float | None = Field(None, description="Cosine similarity between question and passage.")
    lexical_score: float | None = Field(
        None,
        description=(
            "Lexical score in [0, 1]: the passage's BM25 mixed with its document's, each relative to the best "
            "candidate (None when no query term occurs)."
        ),
    )
    passage_id: str
    text: str
    section: str | None = Field(description="The heading the passage sits under, if any.")
    citation: Citation
    highlights: list[Highlight] = Field(default_factory=list)
    also_reported_in: list[Corroboration] = Field(default_factory=list)


class Answer(BaseModel):
    """The ranked passages for a question, and the build that answered it."""

    question: str
    k: int
    mode: Mode = "hybrid"
    grounded: bool = Field(True, description="Whether any passage clears the calibrated answer threshold.")
    grounding_score: float | None = Field(None, description="The best highlighted sentence's cosine.")
    results: list[Result]
    build_id: str
    model: str


def check_question(question: str, k: int) -> str:
    """The question with surrounding space removed, or :class:`InvalidQueryError`."""
    text = question.strip()
    if not any(c.isprintable() and not c.isspace() for c in text):  # blank, or control characters only
        raise InvalidQueryError("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidQueryError(f"the question is {len(text)} characters long; the limit is {MAX_QUESTION_CHARS}")
    if not 1 <= k <= MAX_K:
        raise InvalidQueryError(f"k must be between 1 and {MAX_K}, not {k}")
    return text


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise InvalidQueryError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode

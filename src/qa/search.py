"""The online half: a question in, ranked and cited passages out."""

from __future__ import annotations

import logging

from pydantic import BaseModel, Field

from qa.citations import Citation, cite
from qa.config import MAX_K, MAX_QUESTION_CHARS
from qa.embedding import Embedder
from qa.errors import InvalidQueryError
from qa.store import Index

log = logging.getLogger(__name__)


class Result(BaseModel):
    """One ranked passage: a verbatim span of one article, with its citation."""

    rank: int = Field(description="1 for the best passage.")
    score: float = Field(description="Cosine similarity between question and passage.")
    passage_id: str
    text: str
    section: str | None = Field(description="The heading the passage sits under, if any.")
    citation: Citation


class Answer(BaseModel):
    """The ranked passages for a question, and the build that answered it."""

    question: str
    k: int
    results: list[Result]
    build_id: str
    model: str


def check_question(question: str, k: int) -> str:
    """The question with surrounding space removed, or :class:`InvalidQueryError`."""
    text = question.strip()
    if not text:
        raise InvalidQueryError("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidQueryError(f"the question is {len(text)} characters long; the limit is {MAX_QUESTION_CHARS}")
    if not 1 <= k <= MAX_K:
        raise InvalidQueryError(f"k must be between 1 and {MAX_K}, not {k}")
    return text


class Searcher:
    """Answers questions from one open index with one embedder."""

    def __init__(self, index: Index, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder

    def ask(self, question: str, k: int = 5) -> Answer:
        text = check_question(question, k)
        query = self.embedder.embed_batch([text])[0]
        hits = self.index.search(query, k)
        records = self.index.passages([rowid for rowid, _ in hits])
        scores = dict(hits)
        results = []
        for rank, passage in enumerate(records, start=1):
            document = self.index.document(passage.doc_id)
            if document is None:  # pragma: no cover - the schema's foreign key prevents it
                continue
            results.append(
                Result(
                    rank=rank,
                    score=round(scores[passage.rowid], 6),
                    passage_id=passage.passage_id,
                    text=passage.text,
                    section=passage.section,
                    citation=cite(passage, document),
                )
            )
        return Answer(
            question=text,
            k=k,
            results=results,
            build_id=self.index.build_id,
            model=str(self.index.manifest["model"]["name"]),
        )

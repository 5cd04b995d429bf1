"""Retrieval quality on a question file: which questions find their evidence, and how high.

A question file is JSON Lines; each line has ``id``, ``question`` and ``evidence`` (strings a
correct passage contains) or ``"answerable": false``. A passage answers a question when
it contains one of its evidence strings after folding quotes, dashes, case and
whitespace (:func:`qa.cleaning.normalize`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qa.cleaning import normalize
from qa.errors import QAError
from qa.search import Answer, Searcher


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    evidence: tuple[str, ...] = ()
    answerable: bool = True


@dataclass
class QuestionReport:
    """Recall@k and MRR over the answerable questions, and where each one was found."""

    ks: tuple[int, ...]
    recall: dict[int, float]
    mrr: float
    ranks: dict[str, int | None] = field(default_factory=dict)

    def misses(self, k: int) -> list[str]:
        return [qid for qid, rank in self.ranks.items() if rank is None or rank > k]


def load_questions(path: Path) -> list[Question]:
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            questions.append(
                Question(
                    id=str(raw["id"]),
                    question=str(raw["question"]),
                    evidence=tuple(str(e) for e in raw.get("evidence", ())),
                    answerable=bool(raw.get("answerable", True)),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise QAError(f"{path}:{number}: not a question line ({exc})") from None
    return questions


def contains_evidence(text: str, evidence: Sequence[str]) -> bool:
    folded = normalize(text)
    return any(normalize(e) in folded for e in evidence)


def first_evidence_rank(answer: Answer, evidence: Sequence[str]) -> int | None:
    """Rank of the first result that contains any evidence string, or ``None``."""
    return next((r.rank for r in answer.results if contains_evidence(r.text, evidence)), None)


def evaluate_questions(
    searcher: Searcher, questions: Sequence[Question], ks: tuple[int, ...] = (1, 3, 5)
) -> QuestionReport:
    answerable = [q for q in questions if q.answerable]
    depth = max(ks)
    ranks: dict[str, int | None] = {}
    for q in answerable:
        ranks[q.id] = first_evidence_rank(searcher.ask(q.question, depth), q.evidence)
    n = max(1, len(answerable))
    recall = {k: sum(1 for r in ranks.values() if r is not None and r <= k) / n for k in ks}
    mrr = sum(1.0 / r for r in ranks.values() if r is not None) / n
    return QuestionReport(ks=ks, recall=recall, mrr=mrr, ranks=ranks)

"""The sentence splitter: chosen by comparing candidates on the cases that matter here."""

from __future__ import annotations

from collections.abc import Callable

import pysbd
import pytest
import syntok.segmenter as syntok
from sentencex import segment

from qa.ingest.sentences import split_sentences
from tests.conftest import SEEDS

# Each case is the list of sentences a correct splitter returns for their join by spaces.
CASES: list[list[str]] = [
    ["India's External Affairs Minister, Dr. S. Jaishankar, made it clear.", "He left."],
    ["Retired Air Marshal M. Matheswaran said no.", "Others agreed."],
    ["The U.S. and Japan agreed.", "Then they met."],
    ["Talks with the U.S. continued.", "Japan waited."],
    ["It stayed outside the rivalry between the U.S. and the Soviet Union.", "Although the order evolved, it held."],
    ["Mr. Smith met Mrs. Jones at 3 p.m. on Monday.", "They talked."],
    ["It rose 11.5% to 1.79 million barrels per day.", "Data from Vortexa showed it."],
    ["\u201cWe don\u2019t want it,\u201d he said.", "She agreed."],
    [
        "\u201cWe don\u2019t have that kind of strategic architecture in mind\u2026"
        " We have a different history,\u201d he said.",
        "Next.",
    ],
    ["Iwaya called it \u201cnot something directed toward any particular country.\u201d", "However, no."],
    ["He asked: \u201cWhy now?\u201d", "Nobody answered."],
    ["Washington, D.C. is a city.", "So is Tokyo."],
    ["The No. 2 official resigned.", "Others stayed."],
    ["Sen. Warren and Gen. Milley spoke.", "The end."],
    ["It was in Jan. 2024 that it happened.", "Later it stopped."],
    ["The 79th U.N. General Assembly met.", "Lavrov spoke."],
    ["The vote was 5 vs. 4 in the end.", "Done."],
    ["The report (p. 4) says so.", "Fine."],
    ["It works at Apple Inc. and Google.", "Fine."],
    ["Since 1971 India has been non-aligned!", "Really?", "Yes."],
]

_pysbd = pysbd.Segmenter(language="en", clean=False)


def _with_pysbd(text: str) -> list[str]:
    return [s.strip() for s in _pysbd.segment(text) if s.strip()]


def _with_syntok(text: str) -> list[str]:
    return [
        "".join(tok.spacing + tok.value for tok in sentence).strip()
        for paragraph in syntok.analyze(text)
        for sentence in paragraph
    ]


def _with_sentencex(text: str) -> list[str]:
    return [s.strip() for s in segment("en", text) if s.strip()]


def _ours(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


CANDIDATES: dict[str, Callable[[str], list[str]]] = {
    "pysbd": _with_pysbd,
    "syntok": _with_syntok,
    "sentencex": _with_sentencex,
}


def _score(split: Callable[[str], list[str]]) -> int:
    return sum(split(" ".join(case)) == case for case in CASES)


def test_chosen_splitter_gets_every_case_right() -> None:
    wrong = [(case, _ours(" ".join(case))) for case in CASES if _ours(" ".join(case)) != case]
    assert not wrong, wrong


def test_chosen_splitter_is_at_least_as_good_as_every_candidate() -> None:
    scores = {name: _score(split) for name, split in CANDIDATES.items()}
    assert scores["sentencex"] == len(CASES), scores
    assert all(scores["sentencex"] >= score for score in scores.values()), scores


@pytest.mark.parametrize("path", sorted(SEEDS.glob("*.txt")), ids=lambda p: p.name)
def test_offsets_are_exact_and_trimmed_on_the_seeds(path: object) -> None:
    text = SEEDS.joinpath(str(path)).read_bytes().decode("utf-8")
    spans = split_sentences(text)
    assert spans
    previous_end = 0
    for start, end in spans:
        piece = text[start:end]
        assert piece == piece.strip()
        assert start >= previous_end
        previous_end = end
    # Nothing but whitespace is left between or around sentences.
    covered = "".join(text[s:e] for s, e in spans)
    assert "".join(covered.split()) == "".join(text.split())


def test_offsets_into_a_slice_are_offsets_into_the_whole_text() -> None:
    text = "Header line\nFirst one here. Second one there.\nTail"
    start = text.index("First")
    end = text.index("\nTail")
    spans = split_sentences(text, start, end)
    assert [text[s:e] for s, e in spans] == ["First one here.", "Second one there."]

"""Quote checking: verbatim quotes found with exact source offsets, altered ones explained; POST /verify; qa verify."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from qa.citations.verify import Verifier, extract_quotes, fold, key, word_diff
from qa.cli import commands as cli
from qa.config import Settings
from qa.index.embedded.store import EmbeddedStore
from qa.server.app import create_app
from qa.text import normalize
from tests.helpers import SEEDS, FakeEmbedder

DOC = "002_9c06afbfd3aef34d"
SENTENCE = "But this idea hasn’t been popular with everyone—especially in India."
#: The same sentence with straight quotes, another dash, other case and other spacing.
RETYPED = "but this idea HASN'T been   popular with everyone – especially in india."
ALTERED = "But this idea hasn't been welcomed by everyone, especially not in India."


def source(doc_id: str = DOC) -> str:
    return (SEEDS / f"{doc_id}.txt").read_text(encoding="utf-8")


@pytest.fixture
def verifier(built: Settings) -> Iterator[Verifier]:
    index = EmbeddedStore.open(built.index_dir, expected=None)
    try:
        yield Verifier(index)
    finally:
        index.close()


def test_a_retyped_quote_is_found_with_exact_source_offsets(verifier: Verifier) -> None:
    report = verifier.verify(RETYPED)
    [check] = report.quotes
    assert check.found
    assert check.kind == "text"
    [match] = check.matches
    text = source()
    start = text.index(SENTENCE)
    assert (match.citation.doc_id, match.citation.start, match.citation.end) == (DOC, start, start + len(SENTENCE))
    assert text[match.citation.start : match.citation.end] == match.text == SENTENCE
    assert key(match.text) == key(RETYPED)
    assert normalize(match.text) == normalize(RETYPED).replace(" - ", "-")
    assert match.passage_id is not None
    assert match.passage_id.startswith(f"{DOC}:")
    assert report.supported == 1
    assert report.unsupported == 0


def test_a_quote_found_in_several_articles_lists_every_place(verifier: Verifier) -> None:
    [check] = verifier.verify("reflects its increasing concern over China’s assertive posture").quotes
    assert check.found
    for match in check.matches:
        text = (SEEDS / match.citation.source).read_text(encoding="utf-8")
        assert text[match.citation.start : match.citation.end] == match.text


def test_an_altered_quote_is_not_found_and_gets_the_closest_sentence_and_the_differing_words(
    verifier: Verifier,
) -> None:
    [check] = verifier.verify(f"“{ALTERED}”").quotes
    assert not check.found
    assert check.matches == []
    closest = check.closest
    assert closest is not None
    assert closest.sentence == SENTENCE
    assert closest.passage_id.startswith(f"{DOC}:")
    assert source()[closest.citation.start : closest.citation.end] == SENTENCE
    assert closest.sentence in closest.passage_text
    assert 0.5 < closest.similarity < 1.0
    assert "difflib" in closest.method
    changes = {(d.op, d.quote, d.source) for d in closest.differences}
    assert ("replace", "welcomed by", "popular with") in changes
    assert ("delete", "not", "") in changes


def test_word_diff_ignores_case_quotes_and_source_words_outside_the_quote() -> None:
    assert word_diff("HASN'T been popular", "But this idea hasn’t been popular with everyone") == []
    [d] = word_diff("India rejected the idea", "India welcomed the idea")
    assert (d.op, d.quote, d.source) == ("replace", "rejected", "welcomed")


def test_a_markdown_draft_with_inline_and_block_quotes(verifier: Verifier) -> None:
    draft = "\n".join(
        [
            "# Why India stays out",
            "",
            f"Jaishankar was blunt: “{SENTENCE}” Others agreed.",
            'He said India "does not see the need for such a military pact in Asia".',
            'Short "Asian NATO" scare quotes are not checked.',
            "",
            "> Shigeru Ishiba, Japan’s Prime Minister, has been pushing for the formation",
            "> of an alliance similar to NATO [^1]",
            ">",
            "> India is in a unique position, surrounded by two nuclear-armed neighbours.",
            "",
            "```",
            '"this code block is never checked as a quote at all"',
            "```",
            "",
            "[^1]: Some citation.",
        ]
    )
    quotes = extract_quotes(draft)
    assert [(q.kind, q.line) for q in quotes] == [("inline", 3), ("inline", 4), ("block", 7), ("block", 10)]
    report = verifier.verify(draft)
    found = [c.found for c in report.quotes]
    assert found == [True, False, True, False]
    assert (report.supported, report.unsupported) == (2, 2)
    pact = report.quotes[1].closest
    assert pact is not None
    assert [(d.op, d.quote, d.source) for d in pact.differences] == [("replace", "pact", "alliance")]
    neighbours = report.quotes[3].closest
    assert neighbours is not None
    assert ("replace", "neighbours", "neighbors") in {(d.op, d.quote, d.source) for d in neighbours.differences}
    block = report.quotes[2].matches[0]
    assert block.text.startswith("Shigeru Ishiba, Japan’s Prime Minister")
    assert block.text.endswith("similar to NATO")


def test_a_full_stop_inside_the_quote_marks_does_not_count_against_it(verifier: Verifier) -> None:
    [check] = verifier.verify("“India does not see the need for such a military alliance in Asia.”").quotes
    assert check.found


def test_a_quote_from_nowhere_has_no_closest(verifier: Verifier) -> None:
    [check] = verifier.verify("zzz qqq xxyyzz wwvvuu").quotes
    assert not check.found
    assert check.closest is None


def test_checking_is_fast(verifier: Verifier) -> None:
    draft = "\n".join(f"> {line}" if i % 2 else f"“{line}”" for i, line in enumerate([SENTENCE, ALTERED] * 25))
    started = time.perf_counter()
    report = verifier.verify(draft)
    elapsed = time.perf_counter() - started
    assert len(report.quotes) == 50
    assert elapsed < 2.0, f"50 quotes took {elapsed:.2f} s"


def test_folding_maps_every_character_back_to_the_source() -> None:
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        folded = fold(text)
        assert folded.text == key(text)
        assert len(folded.starts) == len(folded.ends) == len(folded.text)


@given(st.text(alphabet=st.sampled_from(list("aB Zé\n\t\u00a0’‘“”\"'—–-ﬁ.,İ")), max_size=40))
def test_fold_agrees_with_normalize(text: str) -> None:
    """Folding character by character gives what cleaning.normalize gives the whole string, less
    the spaces beside dashes (for text without combining marks, which NFKC composes across characters)."""
    assert fold(text).text == key(text)
    assert key(text) == normalize(text).replace(" - ", "-").replace(" -", "-").replace("- ", "-")


# -- POST /verify -------------------------------------------------------------------------


@pytest.fixture
def client(built: Settings, fake_embedder: FakeEmbedder) -> Iterator[TestClient]:
    with TestClient(create_app(built, embedder=fake_embedder)) as test_client:
        yield test_client


def test_post_verify_reports_each_quote(client: TestClient) -> None:
    response = client.post("/verify", json={"text": f"“{RETYPED}”\n\n> {ALTERED}\n"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [q["found"] for q in body["quotes"]] == [True, False]
    assert body["quotes"][0]["matches"][0]["text"] == SENTENCE
    assert body["quotes"][1]["closest"]["sentence"] == SENTENCE
    assert body["build_id"] == client.get("/readyz").json()["build_id"]


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"text": "x", "extra": 1}, {"text": 5}])
def test_post_verify_rejects_bad_bodies(client: TestClient, body: dict[str, object]) -> None:
    response = client.post("/verify", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


# -- qa verify ----------------------------------------------------------------------------


def qa(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, list(args), input=stdin)
    return result.exit_code, result.output


def test_qa_verify_exits_0_when_every_quote_is_found(built: Settings, tmp_path: Path) -> None:
    draft = tmp_path / "report.md"
    draft.write_text(f"As reported: “{RETYPED}”\n", encoding="utf-8")
    code, output = qa("verify", str(draft), "--index", str(built.index_dir))
    assert code == 0, output
    assert "FOUND" in output
    assert "1 found, 0 not found" in output


def test_qa_verify_exits_1_and_explains_when_a_quote_is_not_found(built: Settings, tmp_path: Path) -> None:
    draft = tmp_path / "report.md"
    draft.write_text(f"“{RETYPED}”\n\n> {ALTERED}\n", encoding="utf-8")
    code, output = qa("verify", str(draft), "--index", str(built.index_dir))
    assert code == 1, output
    assert "NOT FOUND" in output
    assert "quote has “welcomed by” where the source has “popular with”" in output
    assert "1 found, 1 not found" in output


def test_qa_verify_reads_standard_input_and_prints_json(built: Settings) -> None:
    code, output = qa("verify", "-", "--json", "--index", str(built.index_dir), stdin=RETYPED)
    assert code == 0, output
    assert '"found": true' in output


def test_qa_verify_without_an_index_or_file_exits_2(built: Settings, tmp_path: Path) -> None:
    draft = tmp_path / "report.md"
    draft.write_text(RETYPED, encoding="utf-8")
    code, output = qa("verify", str(draft), "--index", str(tmp_path / "none"))
    assert code == 2
    assert "qa build" in output
    code, _ = qa("verify", str(tmp_path / "missing.md"), "--index", str(built.index_dir))
    assert code == 2

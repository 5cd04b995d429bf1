"""The ``qa`` command: build, ask and serve, with the fake embedder; one real end-to-end serve."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner, Result
from fastapi import FastAPI
from fastapi.testclient import TestClient
from markdown_it import MarkdownIt

import qa.service as service
from qa.cli import commands as cli
from qa.config import Settings
from qa.index.embedded.store import EmbeddedStore
from qa.index.location import locate
from qa.ingest.chunking import ChunkerConfig
from qa.mcp import stdio as mcp_stdio
from qa.server.app import create_app
from tests.helpers import FakeEmbedder, qa_serve
from tests.ingest import makers

QUESTION = "Why did India reject an Asian NATO?"


class ClosableFakeEmbedder(FakeEmbedder):
    """The fake embedder with the ``close`` the CLI calls on its model."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def fake_model(monkeypatch: pytest.MonkeyPatch) -> list[ClosableFakeEmbedder]:
    """Every embedder the CLI makes, each a fake; and no ``QA_*`` setting leaking in from outside."""
    for name in list(os.environ):
        if name.startswith("QA_"):
            monkeypatch.delenv(name)
    made: list[ClosableFakeEmbedder] = []

    def make(model: str | None, encoder: str, batch_size: int = 32, threads: int | None = None) -> ClosableFakeEmbedder:
        embedder = ClosableFakeEmbedder()
        made.append(embedder)
        return embedder

    monkeypatch.setattr(service, "make_encoder", make)
    return made


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        pytest.fail("uvicorn.run was called")

    monkeypatch.setattr(uvicorn, "run", fail)


def qa(*args: str) -> Result:
    return CliRunner().invoke(cli.main, list(args))


def current(index_dir: Path) -> str:
    return (index_dir / "CURRENT").read_text(encoding="utf-8").strip()


def passage_count(index_dir: Path) -> int:
    index = EmbeddedStore.open(index_dir, expected=None)
    try:
        return index.passage_count
    finally:
        index.close()


def builds(index_dir: Path) -> list[str]:
    return sorted(p.name for p in index_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


# -- qa build -----------------------------------------------------------------------------


def test_build_creates_a_live_build(corpus_dir: Path, tmp_path: Path, fake_model: list[ClosableFakeEmbedder]) -> None:
    index_dir = tmp_path / "index"
    result = qa("build", "--corpus", str(corpus_dir), "--index", str(index_dir))
    assert result.exit_code == 0, result.output
    assert (index_dir / "CURRENT").is_file()
    build_id = current(index_dir)
    assert (index_dir / build_id / "manifest.json").is_file()
    assert f"build {build_id}" in result.output
    assert "5 documents" in result.output
    assert f"{passage_count(index_dir)} passages" in result.output
    assert fake_model
    assert all(e.closed for e in fake_model)


def test_build_lists_the_skipped_files_and_their_reasons(
    corpus_dir: Path, tmp_path: Path, fake_model: list[ClosableFakeEmbedder]
) -> None:
    makers.write(corpus_dir, "locked.pdf", makers.encrypted_pdf())
    makers.write(corpus_dir, "report.pdf", makers.report_pdf())
    makers.write(corpus_dir, "broken.docx", b"PK\x03\x04 not really a zip")
    result = qa("build", "--corpus", str(corpus_dir), "--index", str(tmp_path / "index"))
    assert result.exit_code == 0, result.output
    assert "6 documents" in result.output
    tail = result.output[result.output.index("2 files skipped:") :]
    assert "  broken.docx: the Word file is damaged or truncated" in tail
    assert "  locked.pdf: the PDF is encrypted" in tail


def test_build_if_stale_skips_an_unchanged_corpus_and_rebuilds_a_changed_one(corpus_dir: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    assert qa("build", "--corpus", str(corpus_dir), "--index", str(index_dir)).exit_code == 0
    first = current(index_dir)

    unchanged = qa("build", "--if-stale", "--corpus", str(corpus_dir), "--index", str(index_dir))
    assert unchanged.exit_code == 0, unchanged.output
    assert "up to date" in unchanged.output
    assert first in unchanged.output
    assert current(index_dir) == first
    assert builds(index_dir) == [first]

    article = sorted(corpus_dir.glob("*.txt"))[2]
    article.chmod(article.stat().st_mode | stat.S_IWUSR)  # the seeds are read-only, and so is their copy
    with open(article, "a", encoding="utf-8", newline="") as handle:
        handle.write("\nA new closing paragraph about the Quad and maritime security in the Indian Ocean.\n")

    changed = qa("build", "--if-stale", "--corpus", str(corpus_dir), "--index", str(index_dir))
    assert changed.exit_code == 0, changed.output
    assert "changed" in changed.stderr
    second = current(index_dir)
    assert second != first
    assert f"build {second}" in changed.stdout
    assert builds(index_dir) == sorted([first, second])


def test_build_if_stale_builds_when_there_is_no_index(corpus_dir: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    result = qa("build", "--if-stale", "--corpus", str(corpus_dir), "--index", str(index_dir))
    assert result.exit_code == 0, result.output
    assert f"build {current(index_dir)}" in result.output


def test_build_without_a_corpus_fails_clearly(tmp_path: Path, fake_model: list[ClosableFakeEmbedder]) -> None:
    result = qa("build", "--corpus", str(tmp_path / "nowhere"), "--index", str(tmp_path / "index"))
    assert result.exit_code == 1
    assert "nowhere" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "index" / "CURRENT").exists()
    assert all(e.closed for e in fake_model)


# -- qa rollback --------------------------------------------------------------------------


def test_rollback_makes_the_previous_build_live(corpus_dir: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    assert qa("build", "--corpus", str(corpus_dir), "--index", str(index_dir)).exit_code == 0
    first = current(index_dir)
    (corpus_dir / "extra.txt").write_text("An Extra Article\n\nIt has one paragraph of prose, and it is short.\n")
    rebuilt = qa("build", "--corpus", str(corpus_dir), "--index", str(index_dir))
    assert "1 embedded" in rebuilt.output
    second = current(index_dir)
    result = qa("rollback", "--index", str(index_dir))
    assert result.exit_code == 0, result.output
    assert f"CURRENT {second} -> {first}" in result.output
    assert current(index_dir) == first


def test_check_verifies_every_byte_and_exits_1_on_a_damaged_build(corpus_dir: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    assert qa("build", "--corpus", str(corpus_dir), "--index", str(index_dir)).exit_code == 0
    build = current(index_dir)
    whole = qa("check", "--index", str(index_dir))
    assert whole.exit_code == 0, whole.output
    assert f"build {build} in {index_dir} is whole" in whole.output
    database = index_dir / build / "passages.sqlite"
    data = bytearray(database.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the same size: only a checksum shows it
    database.write_bytes(bytes(data))
    damaged = qa("check", "--index", str(index_dir))
    assert damaged.exit_code == 1
    assert "passages.sqlite is corrupt" in damaged.output
    assert "qa build" in damaged.output
    assert "Traceback" not in damaged.output


def test_rollback_without_a_previous_build_fails_clearly(corpus_dir: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    assert qa("build", "--corpus", str(corpus_dir), "--index", str(index_dir)).exit_code == 0
    only = current(index_dir)
    result = qa("rollback", "--index", str(index_dir))
    assert result.exit_code == 1
    assert "no previous build" in result.output
    assert "Traceback" not in result.output
    assert current(index_dir) == only


def test_rollback_to_a_build_of_another_chunker_is_refused(corpus_dir: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    assert qa("build", "--corpus", str(corpus_dir), "--index", str(index_dir), "--max-tokens", "64").exit_code == 0
    assert qa("build", "--corpus", str(corpus_dir), "--index", str(index_dir)).exit_code == 0
    second = current(index_dir)
    result = qa("rollback", "--index", str(index_dir))
    assert result.exit_code == 1
    assert "refusing to roll back" in result.output
    assert "max_tokens=64" in result.output
    assert current(index_dir) == second


def test_rollback_without_an_index_says_to_build_one(tmp_path: Path) -> None:
    result = qa("rollback", "--index", str(tmp_path / "index"))
    assert result.exit_code == 1
    assert "qa build" in result.output
    assert not (tmp_path / "index").exists()


# -- qa ask -------------------------------------------------------------------------------


@pytest.fixture
def index_dir(built: Settings) -> Path:
    return built.index_dir


def api_answer(settings: Settings, question: str, k: int) -> dict[str, Any]:
    with TestClient(create_app(settings, embedder=FakeEmbedder())) as client:
        response = client.get("/ask", params={"q": question, "k": k})
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer


def test_ask_prints_ranked_passages_with_citations(
    built: Settings, index_dir: Path, fake_model: list[ClosableFakeEmbedder]
) -> None:
    result = qa("ask", QUESTION, "--index", str(index_dir), "--k", "3")
    assert result.exit_code == 0, result.output
    expected = api_answer(built, QUESTION, 3)["results"]
    lines = result.output.splitlines()
    heads = [line for line in lines if line[:1].isdigit() and ". [" in line]
    assert len(heads) == 3
    for head, item in zip(heads, expected, strict=True):
        assert head.startswith(f"{item['rank']}. [")
        assert head.endswith(item["citation"]["formatted"])
        assert f"id: {item['passage_id']}" in result.output
    assert "\x1b[" not in result.output
    assert all(e.closed for e in fake_model)


def test_ask_defaults_to_five_passages(index_dir: Path) -> None:
    result = qa("ask", QUESTION, "--index", str(index_dir), "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["results"]) == 5


@pytest.mark.parametrize("k", [1, 3, 7])
def test_ask_json_is_the_api_answer(built: Settings, index_dir: Path, k: int) -> None:
    result = qa("ask", QUESTION, "--index", str(index_dir), "--k", str(k), "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    expected = api_answer(built, QUESTION, k)
    assert set(printed) == set(expected)
    assert {"question", "results", "build_id"} <= set(printed)
    assert printed == expected
    assert len(printed["results"]) == k


@pytest.mark.parametrize("k", ["0", "51", "x", "-3"])
def test_ask_rejects_a_bad_k_as_a_usage_error(index_dir: Path, k: str, fake_model: list[ClosableFakeEmbedder]) -> None:
    result = qa("ask", QUESTION, "--index", str(index_dir), "--k", k)
    assert result.exit_code == 2
    assert "Usage:" in result.output
    assert "--k" in result.output
    assert not fake_model  # refused before any model is made


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_ask_rejects_a_blank_question(index_dir: Path, question: str) -> None:
    result = qa("ask", question, "--index", str(index_dir))
    assert result.exit_code != 0
    assert "question is empty" in result.output
    assert "Traceback" not in result.output


def test_ask_rejects_a_question_that_is_too_long(index_dir: Path) -> None:
    result = qa("ask", "x" * 2001, "--index", str(index_dir))
    assert result.exit_code != 0
    assert "2000" in result.output


def test_ask_without_an_index_says_to_build_one(tmp_path: Path, fake_model: list[ClosableFakeEmbedder]) -> None:
    result = qa("ask", QUESTION, "--index", str(tmp_path / "missing"))
    assert result.exit_code == 1
    assert "qa build" in result.output
    assert "Traceback" not in result.output
    assert all(e.closed for e in fake_model)


# -- qa serve -----------------------------------------------------------------------------


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What ``uvicorn.run`` was called with, instead of a server."""
    calls: list[dict[str, Any]] = []

    def run(app: Any, **kwargs: Any) -> None:
        calls.append({"app": app, **kwargs})

    monkeypatch.setattr(uvicorn, "run", run)
    return calls


@pytest.mark.usefixtures("no_server")
def test_serve_without_an_index_exits_before_starting(tmp_path: Path) -> None:
    result = qa("serve", "--index", str(tmp_path / "missing_dir"))
    assert result.exit_code == 1
    assert "qa build" in result.output
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("no_server")
def test_serve_with_an_empty_index_folder_exits_before_starting(tmp_path: Path) -> None:
    (tmp_path / "index").mkdir()
    result = qa("serve", "--index", str(tmp_path / "index"))
    assert result.exit_code == 1
    assert "qa build" in result.output


def test_mcp_without_an_index_exits_before_starting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mcp_stdio, "run_stdio", lambda settings: pytest.fail("the MCP server was started"))
    result = qa("mcp", "--index", str(tmp_path / "missing_dir"))
    assert result.exit_code == 1
    assert "qa build" in result.output
    assert "Traceback" not in result.output


def test_mcp_serves_the_index_and_reload_interval_it_is_given(index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Settings] = []
    monkeypatch.setattr(mcp_stdio, "run_stdio", started.append)
    result = qa("mcp", "--index", str(index_dir), "--reload-interval", "0")
    assert result.exit_code == 0, result.output
    assert [(s.index_dir, s.reload_interval) for s in started] == [(index_dir, 0)]


def test_serve_defaults_to_localhost_8000(index_dir: Path, served: list[dict[str, Any]]) -> None:
    result = qa("serve", "--index", str(index_dir))
    assert result.exit_code == 0, result.output
    assert len(served) == 1
    assert served[0]["host"] == "127.0.0.1"
    assert served[0]["port"] == 8000
    assert isinstance(served[0]["app"], FastAPI)


def test_serve_passes_host_and_port_through(index_dir: Path, served: list[dict[str, Any]]) -> None:
    result = qa("serve", "--index", str(index_dir), "--host", "localhost", "--port", "8123")
    assert result.exit_code == 0, result.output
    assert [(c["host"], c["port"]) for c in served] == [("localhost", 8123)]


def test_serve_reads_host_and_port_from_the_environment(
    index_dir: Path, served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_HOST", "127.0.0.2")
    monkeypatch.setenv("QA_PORT", "9001")
    result = qa("serve", "--index", str(index_dir))
    assert result.exit_code == 0, result.output
    assert [(c["host"], c["port"]) for c in served] == [("127.0.0.2", 9001)]


def test_serve_passes_reload_interval_and_inference_threads_to_the_app(
    index_dir: Path, served: list[dict[str, Any]]
) -> None:
    result = qa("serve", "--index", str(index_dir), "--reload-interval", "0.5", "--inference-threads", "2")
    assert result.exit_code == 0, result.output
    settings = served[0]["app"].state.qa.settings
    assert (settings.reload_interval, settings.inference_threads) == (0.5, 2)
    assert settings.host == "127.0.0.1"


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize("port", ["0", "70000", "abc", "-1"])
def test_serve_rejects_a_bad_port(index_dir: Path, port: str) -> None:
    result = qa("serve", "--index", str(index_dir), "--port", port)
    assert result.exit_code == 2
    assert "--port" in result.output


# -- help ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "example"),
    [
        ([], "qa build --corpus seeds --index index"),
        (["build"], "qa build --corpus seeds --index index"),
        (["ask"], 'qa ask "'),
        (["serve"], "qa serve --index index --host 127.0.0.1 --port 8000"),
        (["rollback"], "qa rollback --index index"),
        (["verify"], "qa verify report.md"),
        (["ask"], "--format markdown"),
    ],
)
def test_help_shows_an_example(args: list[str], example: str) -> None:
    result = qa(*args, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert example in result.output


def test_help_lists_every_command() -> None:
    output = qa("--help").output
    for command in ("build", "ask", "serve", "mcp", "rollback", "verify"):
        assert f"  {command} " in output


def test_build_index_script_is_qa_build_with_the_project_defaults() -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "build_index.py"
    result = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Build the index from the articles" in result.stdout
    assert "--if-stale" in result.stdout


# -- the real thing -----------------------------------------------------------------------


@pytest.fixture
def server(real_index_dir: Path, tmp_path: Path) -> Iterator[str]:
    """``qa serve`` in its own process over the seeds built with the real model; its base URL."""
    with qa_serve(real_index_dir, tmp_path / "serve.log") as base:
        yield base


@pytest.mark.model
def test_serve_answers_over_http_with_the_real_model(server: str) -> None:
    health = httpx.get(f"{server}/healthz", timeout=10).json()
    assert health["status"] == "ok"
    assert health["passages"] > 0
    response = httpx.get(f"{server}/ask?q=Why+did+India+reject+an+Asian+NATO%3F&k=5", timeout=30)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["question"] == QUESTION
    assert answer["build_id"] == health["build_id"]
    results = answer["results"]
    assert len(results) == 5
    assert [r["rank"] for r in results] == [1, 2, 3, 4, 5]
    for result in results:
        citation = result["citation"]
        assert citation["source"].endswith(".txt")
        assert citation["title"]
        assert f"chars {citation['start']}\u2013{citation['end']}" in citation["formatted"]
        assert result["text"]


# -- qa ask options and qa eval -------------------------------------------------------------


def test_ask_passes_mode_group_and_filters_through(index_dir: Path) -> None:
    target = "003_4fdb1282455ab5f8"
    args = ("ask", "Ishiba NATO", "--index", str(index_dir), "--json", "--k", "3")
    result = qa(*args, "--mode", "lexical", "--doc", target, "--no-group")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["mode"] == "lexical"
    assert {r["citation"]["doc_id"] for r in answer["results"]} == {target}
    assert all(r["dense_score"] is None for r in answer["results"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--mode", "semantic"), "semantic"),
        (("--published-from", "Oct 2024"), "YYYY-MM-DD"),
        (("--author", " "), "author"),
    ],
)
def test_ask_rejects_bad_modes_and_filters_before_loading_the_model(
    index_dir: Path, extra: tuple[str, ...], message: str, fake_model: list[ClosableFakeEmbedder]
) -> None:
    result = qa("ask", QUESTION, "--index", str(index_dir), *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert fake_model == []


@pytest.mark.parametrize(
    ("extra", "option", "message"),
    [
        (("--published-from", "2024-13-45"), "--published-from", "published_from must be a date"),
        (("--published-to", "2024-02-30"), "--published-to", "published_to must be a date"),
    ],
)
def test_ask_refuses_a_date_that_is_no_day_naming_the_option(
    index_dir: Path, extra: tuple[str, ...], option: str, message: str, fake_model: list[ClosableFakeEmbedder]
) -> None:
    result = qa("ask", "NATO", "--index", str(index_dir), *extra)
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert message in result.output
    assert fake_model == []


@pytest.mark.parametrize("question", ["   ", "\x00\x00", "\x07 \x1b"])
def test_ask_refuses_a_blank_or_control_character_question_as_the_api_does(
    index_dir: Path, question: str, fake_model: list[ClosableFakeEmbedder]
) -> None:
    result = qa("ask", question, "--index", str(index_dir))
    assert result.exit_code == 2, result.output
    assert "QUESTION" in result.output
    assert "the question is empty" in result.output
    assert fake_model == []


def test_ask_help_reads_its_defaults_from_the_settings() -> None:
    output = qa("ask", "--help").output
    assert f"default: {Settings.model_fields['default_k'].default}]" in " ".join(output.split())
    assert "QA_DEFAULT_K" in output


def test_ask_emphasises_the_highlighted_sentences_on_a_terminal(index_dir: Path) -> None:
    result = CliRunner().invoke(cli.main, ["ask", "Ishiba NATO", "--index", str(index_dir), "--k", "2"], color=True)
    assert result.exit_code == 0, result.output
    assert "\x1b[33m\x1b[1m" in result.output  # bold yellow around the answering sentence


def test_eval_questions_reports_recall_mrr_and_abstention_per_mode(corpus_dir: Path, tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"id": "a", "question": "Who is Shigeru Ishiba?", "evidence": ["Ishiba"]})
        + "\n"
        + json.dumps({"id": "x", "question": "What is the capital of Peru?", "answerable": False})
        + "\n"
    )
    args = ["eval", "--questions", str(questions), "--corpus", str(corpus_dir), "--index", str(tmp_path / "i")]
    result = qa(*args, "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["questions"] == 2
    assert figures["unanswerable"] == 1
    assert set(figures["modes"]) == {"dense", "lexical", "hybrid"}
    assert figures["modes"]["lexical"]["recall@1"] == 1.0
    table = qa(*args, "--mode", "hybrid")
    assert table.exit_code == 0, table.output
    assert "R@3" in table.output
    assert "hybrid" in table.output


def test_eval_needs_exactly_one_of_beir_and_questions(tmp_path: Path) -> None:
    result = qa("eval")
    assert result.exit_code == 2
    assert "exactly one" in result.output


# -- qa ask --format markdown, qa verify ----------------------------------------------------------


def test_ask_format_markdown_is_a_report_block_with_numbered_footnotes(built: Settings, index_dir: Path) -> None:
    result = qa("ask", QUESTION, "--index", str(index_dir), "--k", "3", "--format", "markdown")
    assert result.exit_code == 0, result.output
    report = result.stdout
    expected = api_answer(built, QUESTION, 3)["results"]
    quotes = [line for line in report.splitlines() if line.startswith("> ")]
    notes = [line for line in report.splitlines() if line.startswith("[^")]
    assert len(quotes) == len(notes) == 3
    for n, (quote, note, item) in enumerate(zip(quotes, notes, expected, strict=True), start=1):
        assert quote.endswith(f" [^{n}]")
        assert note.startswith(f"[^{n}]: {item['citation']['markdown']}")
    # Rendered as Markdown: three block quotes, each a paragraph that reads as the passage.
    tokens = MarkdownIt("commonmark").parse(report)
    assert sum(t.type == "blockquote_open" for t in tokens) == 3
    inline = [t.content for i, t in enumerate(tokens) if t.type == "inline" and tokens[i - 2].type == "blockquote_open"]
    rendered = [MarkdownIt("commonmark").renderInline(text) for text in inline]
    for html, item in zip(rendered, expected, strict=True):
        assert " ".join(item["text"].split()).replace("&", "&amp;").replace('"', "&quot;") in html
    assert "\x1b[" not in report


def test_the_markdown_report_passes_qa_verify(index_dir: Path, tmp_path: Path) -> None:
    report = qa("ask", QUESTION, "--index", str(index_dir), "--format", "markdown").stdout
    draft = tmp_path / "report.md"
    draft.write_text(report, encoding="utf-8")
    checked = qa("verify", str(draft), "--index", str(index_dir))
    assert checked.exit_code == 0, checked.output
    assert "5 found, 0 not found" in checked.output


def test_export_onnx_reports_the_files_it_made_or_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[str | None, bool]] = []
    meta = {
        "files": {"model.int8.onnx": {"bytes": 23_000_000, "sha256": "ab" * 32}},
        "identity": {"name": "all-MiniLM-L6-v2", "revision": "local"},
        "opset": 17,
    }

    def export(model: str | None, force: bool = False) -> tuple[Path, dict[str, object]]:
        calls.append((model, force))
        return tmp_path / "qa-onnx", meta

    monkeypatch.setattr(cli, "export_model", export)
    result = qa("export-onnx", "--force")
    assert result.exit_code == 0, result.output
    assert calls == [(None, True)]
    assert f"{tmp_path / 'qa-onnx'}:" in result.output
    assert "model.int8.onnx  23.0 MB  sha256 " + "ab" * 32 in result.output
    assert "opset 17" in result.output


def test_build_writes_the_vector_index_qa_vector_index_asks_for(
    corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir = tmp_path / "index"
    assert qa("build", "--corpus", str(corpus_dir), "--index", str(index_dir)).exit_code == 0
    manifest = json.loads((index_dir / current(index_dir) / "manifest.json").read_text())
    assert manifest["vectors"] == {"type": "flat"}  # 68 passages: far below the switch-over
    monkeypatch.setenv("QA_VECTOR_INDEX", "hnsw")
    stale = qa("build", "--if-stale", "--corpus", str(corpus_dir), "--index", str(index_dir))
    assert stale.exit_code == 0, stale.output
    assert "settings ask for {'type': 'hnsw'" in stale.output
    manifest = json.loads((index_dir / current(index_dir) / "manifest.json").read_text())
    assert manifest["vectors"]["type"] == "hnsw"
    again = qa("build", "--if-stale", "--corpus", str(corpus_dir), "--index", str(index_dir))
    assert "up to date" in again.output


def test_verify_reads_a_postgres_store_given_by_store(
    settings: Settings, pg_url: str, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    """--store names a PostgreSQL database instead of the index folder (verify needs no model)."""
    location = locate(pg_url)
    location.build_corpus(settings.corpus_dir, fake_embedder, ChunkerConfig())
    store = location.open(None)
    passage = store.document_passages(store.documents()[0].doc_id)[1]
    store.close()
    location.close()
    draft = tmp_path / "report.md"
    draft.write_text(f"They wrote: “{passage.text.split(chr(10))[0]}”\n", encoding="utf-8")
    checked = qa("verify", str(draft), "--store", pg_url)
    assert checked.exit_code == 0, checked.output
    assert "1 found, 0 not found" in checked.output
    empty = qa("verify", str(draft), "--store", pg_url.rsplit("/", 1)[0] + "/postgres")
    assert empty.exit_code == 2
    assert "no index in postgresql://" in empty.output

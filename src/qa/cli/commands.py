"""The ``qa`` command: build an index, ask it questions, serve it over HTTP.

Each command reads its settings, hands them to :class:`~qa.service.Service` and prints
what it returns (rendering lives in :mod:`qa.cli.render`). Logging and progress bars are
set up here and nowhere else; the library stays quiet. Option help and defaults come
from the :class:`~qa.config.Settings` fields they set.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from qa import __version__
from qa.citations.formats import markdown_report
from qa.citations.verify import Verifier
from qa.cli.options import (
    filter_options,
    index_option,
    mode_option,
    model_options,
    option_of,
    setting_help,
    setting_range,
)
from qa.cli.render import beir_table, progress_bar, questions_table, render, render_verification
from qa.config import Settings
from qa.embedding.export import export_model
from qa.errors import InvalidQueryError, QAError
from qa.evaluation.questions import run_beir, run_questions
from qa.index.filters import Filters
from qa.index.lifecycle import StoreLocation
from qa.search.models import MODES, check_mode, check_question
from qa.service import Service, open_store, store_location

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("qa")


def command_settings(**overrides: Any) -> Settings:
    """Settings from ``QA_*`` variables, with the options given on the command line on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qa")
@click.option("-v", "--verbose", is_flag=True, help="Log what is happening.")
def main(verbose: bool) -> None:
    """Ranked, verbatim, cited passages from a folder of articles.

    \b
    qa build --corpus seeds --index index
    qa ask "Why did India reject an Asian NATO?" --k 5
    qa serve --index index --port 8000
    qa mcp --index index
    qa rollback --index index
    qa verify report.md
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@main.command()
@click.option(
    "--corpus",
    "corpus_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=setting_help("corpus_dir"),
)
@index_option
@model_options
@click.option(
    "--if-stale", is_flag=True, help="Only build when the index is missing or older than the articles or settings."
)
def build(if_stale: bool, **options: Any) -> None:
    """Build the index from the articles and make it the live one.

    The new build is written beside the old one and switched in atomically; a running
    server keeps answering from the old build until then.

    \b
    qa build --corpus seeds --index index
    QA_MODEL=/models/bge-small-en-v1.5 qa build --max-tokens 200
    """
    settings = command_settings(**options)
    with Service.from_settings(settings) as service:
        try:
            if if_stale:
                reason = service.stale_reason()
                if reason is None:
                    click.echo(f"index is up to date: build {service.location.current_build_id()}")
                    return
                click.echo(f"building: {reason}", err=True)
            report = service.build(progress_bar())
        except QAError as exc:
            raise click.ClickException(str(exc)) from None
        where = service.location.where
    click.echo(
        f"build {report.build_id}: {report.documents} documents, {report.passages} passages "
        f"({report.embedded} embedded, {report.passages - report.embedded} from the cache) "
        f"in {report.seconds:.1f} s -> {where}"
    )
    if report.skipped:
        click.echo(f"{len(report.skipped)} file{'' if len(report.skipped) == 1 else 's'} skipped:", err=True)
        for skipped in report.skipped:
            click.echo(f"  {skipped.source}: {skipped.reason}", err=True)


@main.command(name="rollback")
@index_option
@model_options
def rollback_command(**options: Any) -> None:
    """Make the previous build live again (CURRENT switched back atomically).

    The previous build is the one that was live when the current build was made; it is
    kept on disk until the next build. It must open cleanly with the configured model
    and chunker settings, otherwise nothing changes. A running server picks it up as it
    would a new build.

    \b
    qa rollback --index index
    """
    settings = command_settings(**options)
    with Service.from_settings(settings) as service:
        try:
            before, after = service.rollback()
        except QAError as exc:
            raise click.ClickException(str(exc)) from None
        where = service.location.where
    click.echo(f"rolled back {where}: CURRENT {before} -> {after}")


@main.command(name="check")
@click.option("--build", "build_id", default=None, help="A kept build to check instead of the live one.")
@index_option
def check_command(build_id: str | None, **options: Any) -> None:
    """Check a build whole: every byte of its files against the checksums the build recorded, SQLite's
    quick_check, the vector index and the counts. Exit status 1 when it is damaged.

    Opening a build (a server's start or reload) checks sizes and structure only, so that it is
    fast; a server then verifies the build in the background. This runs the same check now.

    \b
    qa check --index index
    """
    settings = command_settings(**options)
    with Service.from_settings(settings) as service:
        try:
            checked, seconds = service.location.verify(build_id)
        except QAError as exc:
            raise click.ClickException(str(exc)) from None
        where = service.location.where
    click.echo(f"build {checked} in {where} is whole (checked in {seconds:.2f} s)")


@main.command()
@click.argument("question")
@click.option("-k", "--k", "k", type=setting_range("default_k"), default=None, help=setting_help("default_k"))
@mode_option
@click.option("--no-group", is_flag=True, help="List near-identical passages of different articles separately.")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of text (same as --format json).")
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="text for the terminal; json as the API sends it; markdown: block quotes with numbered "
    "footnote citations, to paste into a report.",
)
@index_option
@model_options
def ask(
    question: str,
    k: int | None,
    mode: str,
    no_group: bool,
    doc_ids: tuple[str, ...],
    author: str | None,
    outlet: str | None,
    published_from: str | None,
    published_to: str | None,
    as_json: bool,
    output: str,
    **options: Any,
) -> None:
    """Print the passages that best answer QUESTION, with their citations.

    The sentences that best answer the question are emphasised.

    \b
    qa ask "Who proposed an Asian NATO?"
    qa ask "What is strategic autonomy?" --k 3 --json
    qa ask "Why did India reject an Asian NATO?" --k 3 --format markdown >> report.md
    qa ask "What did Jaishankar say?" --mode lexical --author Jaishankar --published-from 2024-09-01
    """
    settings = command_settings(**options)
    filters = Filters(doc_ids or None, author, outlet, published_from, published_to)
    try:
        check_question(question, k or settings.default_k)  # the API's checks, before the model loads
        filters.check()
    except InvalidQueryError as exc:
        raise click.BadParameter(str(exc), param_hint=option_of(exc)) from None
    with Service.from_settings(settings) as service:
        try:
            answer = service.ask(question, k, mode=mode, filters=filters, group=not no_group)
        except QAError as exc:
            raise click.ClickException(str(exc)) from None
    if as_json or output == "json":
        click.echo(answer.model_dump_json(indent=2))
    elif output == "markdown":
        click.echo(markdown_report(answer), nl=False)
    else:
        click.echo(render(answer))


@main.command("verify")
@click.argument("draft", type=click.File("r", encoding="utf-8"))
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON (as POST /verify sends it).")
@index_option
def verify_command(draft: Any, as_json: bool, **options: Any) -> None:
    """Check every quote of DRAFT (a Markdown file, or - for standard input) against the articles.

    Quotes are “curly” or "straight" quoted stretches of 5 words or more, and > block
    quotes. Each is found verbatim (after folding quotes, dashes, case and spaces) with
    its source offsets, or not, with the closest sentence and the words that differ.
    Exits 0 when every quote is found, 1 when any is not, 2 on a usage or index error.
    No model is loaded.

    \b
    qa verify report.md
    qa ask "Why did India reject an Asian NATO?" --format markdown | qa verify -
    """
    settings = command_settings(**options)
    text = draft.read()
    try:
        location = store_location(settings)
        try:
            index = open_store(location, None)  # verify reads text only: no embedder to check
            try:
                report = Verifier(index).verify(text)
            finally:
                index.close()
        finally:
            location.close()
    except QAError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(report.model_dump_json(indent=2) if as_json else render_verification(report))
    if report.unsupported:
        sys.exit(1)


@main.command("eval")
@click.option(
    "--beir",
    "beir_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A BEIR-format folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.",
)
@click.option("--split", default="test", show_default=True, help="Which qrels file of the BEIR folder to score.")
@click.option(
    "--questions",
    "questions_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A question file (JSON Lines: id, question, evidence or answerable: false) over --corpus.",
)
@click.option(
    "--corpus",
    "corpus_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=setting_help("corpus_dir", "Articles the question file is about, built into --index when stale."),
)
@click.option(
    "--mode", "modes", type=click.Choice(MODES), multiple=True, help="Modes to score (repeatable). [default: all]"
)
@click.option(
    "--sample",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Score every N-th question of --questions only (a fixed subset, for quick runs).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@index_option
@model_options
def eval_command(
    beir_dir: Path | None,
    split: str,
    questions_file: Path | None,
    modes: tuple[str, ...],
    sample: int,
    as_json: bool,
    **options: Any,
) -> None:
    """Measure retrieval quality on a BEIR benchmark or on a question file.

    \b
    qa eval --beir ../shared/bench/scifact          # nDCG@10, Recall@100, MRR@10 per mode
    qa eval --questions ../shared/eval/questions.jsonl   # Recall@1/3/5/10, MRR@10, abstention
    qa eval --questions ../shared/bench/squad/questions.jsonl --corpus ../shared/bench/squad/articles \
            --index bench-results/index-squad --sample 5   # answer spans: also answer-sentence@1

    With --beir the corpus is indexed into --index (default: bench-results/index-<name>)
    by the service's own chunking, embedding and store, reusing vectors already embedded.
    """
    if (beir_dir is None) == (questions_file is None):
        raise click.UsageError("give exactly one of --beir DIR or --questions FILE")
    chosen = [check_mode(m) for m in modes] or list(MODES)
    settings = command_settings(**options)
    with Service.from_settings(settings) as service:
        try:
            if beir_dir is not None:
                where: Path | StoreLocation = (
                    service.location
                    if settings.store is not None
                    else options.get("index_dir") or Path("bench-results") / f"index-{beir_dir.resolve().name}"
                )
                figures: dict[str, Any] = run_beir(
                    beir_dir,
                    split,
                    where,
                    service.passage_encoder,
                    service.chunker,
                    chosen,
                    progress_bar(),
                    service.query_encoder,
                )
                text = beir_table(figures)
            elif questions_file is not None:
                if service.stale_reason():
                    service.build(progress_bar())
                figures = run_questions(
                    questions_file, service.location, service.query_encoder, service.chunker, chosen, sample
                )
                text = questions_table(figures)
        except QAError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(figures, indent=2) if as_json else text)


@main.command("export-onnx")
@click.option("--model", help=setting_help("model"))
@click.option("--force", is_flag=True, help="Export again even when a current export exists.")
def export_onnx(model: str | None, force: bool) -> None:
    """Export the model to ONNX (fp32, and int8 weights) beside it, for QA_QUERY_ENCODER=onnx-int8.

    Local and reproducible: torch's own exporter and onnxruntime's dynamic quantisation,
    nothing downloaded. An export that exists and is current is kept unless --force.

    \b
    qa export-onnx
    QA_QUERY_ENCODER=onnx-int8 qa serve
    """
    settings = command_settings(model=model)
    try:
        folder, meta = export_model(settings.model, force=force)
    except QAError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{folder}:")
    for name, info in sorted(meta["files"].items()):
        click.echo(f"  {name}  {info['bytes'] / 1e6:.1f} MB  sha256 {info['sha256']}")
    click.echo(f"  from {meta['identity']['name']} ({meta['identity']['revision']}), opset {meta['opset']}")

"""The ``qa`` command: build an index, ask it questions, serve it over HTTP.

Logging and progress bars are set up here and nowhere else; the library stays quiet.
"""

from __future__ import annotations

import json
import logging
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, get_args

import click

from qa import __version__
from qa.citations.formats import markdown_report
from qa.citations.verify import Verifier, VerifyReport
from qa.config import MAX_K, Encoder, Settings
from qa.embedding.base import SentenceTransformerEmbedder
from qa.embedding.onnx import OnnxEmbedder, export_model, make_encoder
from qa.errors import InvalidQueryError, QAError
from qa.evaluation.questions import BEIR_MEASURES, run_beir, run_questions
from qa.index.builds import current_build_id
from qa.index.filters import Filters
from qa.index.pipeline import Progress, build_index, expected_identity, rollback, stale_reason
from qa.index.store import Index
from qa.ingest.chunking import ChunkerConfig
from qa.search.models import MODES, Answer, Result, check_mode, check_question
from qa.search.retrieval import Searcher

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("qa")


def _settings(**overrides: Any) -> Settings:
    """Settings from ``QA_*`` variables, with the options given on the command line on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _index_option(fn: F) -> F:
    return click.option(
        "--index",
        "index_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Index folder. [env: QA_INDEX_DIR; default: index]",
    )(fn)


def _model_options(fn: F) -> F:
    fn = click.option(
        "--model", help="Local sentence-transformers model folder. [env: QA_MODEL; default: bundled all-MiniLM-L6-v2]"
    )(fn)
    fn = click.option(
        "--max-tokens",
        type=click.IntRange(16, 100_000),
        help="Passage budget in cl100k tokens. [env: QA_MAX_TOKENS; default: 96]",
    )(fn)
    fn = click.option(
        "--query-encoder",
        type=click.Choice(get_args(Encoder)),
        help="What encodes questions. [env: QA_QUERY_ENCODER; default: onnx]",
    )(fn)
    fn = click.option(
        "--passage-encoder",
        type=click.Choice(get_args(Encoder)),
        help="What encodes passages when building. [env: QA_PASSAGE_ENCODER; default: torch]",
    )(fn)
    return click.option(
        "--overlap",
        "overlap_sentences",
        type=click.IntRange(0, 20),
        help="Sentences shared by consecutive passages. [env: QA_OVERLAP_SENTENCES; default: 0]",
    )(fn)


def _embedder(settings: Settings, role: str = "query") -> SentenceTransformerEmbedder | OnnxEmbedder:
    """The embedder for questions (``role="query"``) or for building (``role="passage"``)."""
    encoder = settings.query_encoder if role == "query" else settings.passage_encoder
    return make_encoder(settings.model, encoder, settings.batch_size, settings.inference_threads)


def _chunker_config(settings: Settings) -> ChunkerConfig:
    return ChunkerConfig.from_settings(settings)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qa")
@click.option("-v", "--verbose", is_flag=True, help="Log what is happening.")
def main(verbose: bool) -> None:
    """Ranked, verbatim, cited passages from a folder of articles.

    \b
    qa build --corpus seeds --index index
    qa ask "Why did India reject an Asian NATO?" --k 5
    qa serve --index index --port 8000
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
    help="Folder of .txt and .md articles. [env: QA_CORPUS_DIR; default: seeds]",
)
@_index_option
@_model_options
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
    settings = _settings(**options)
    embedder = _embedder(settings, "passage")
    try:
        config = _chunker_config(settings)
        if if_stale:
            reason = stale_reason(settings.corpus_dir, settings.index_dir, embedder, config, settings.vector_index)
            if reason is None:
                click.echo(f"index is up to date: build {current_build_id(settings.index_dir)}")
                return
            click.echo(f"building: {reason}", err=True)
        report = build_index(
            settings.corpus_dir, settings.index_dir, embedder, config, _progress_bar(), settings.vector_index
        )
    except QAError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        embedder.close()
    click.echo(
        f"build {report.build_id}: {report.documents} documents, {report.passages} passages "
        f"({report.embedded} embedded, {report.passages - report.embedded} from the cache) "
        f"in {report.seconds:.1f} s -> {settings.index_dir}"
    )


@main.command(name="rollback")
@_index_option
@_model_options
def rollback_command(**options: Any) -> None:
    """Make the previous build live again (CURRENT switched back atomically).

    The previous build is the one that was live when the current build was made; it is
    kept on disk until the next build. It must open cleanly with the configured model
    and chunker settings, otherwise nothing changes. A running server picks it up as it
    would a new build.

    \b
    qa rollback --index index
    """
    settings = _settings(**options)
    embedder = _embedder(settings)
    try:
        before, after = rollback(settings.index_dir, expected_identity(embedder, _chunker_config(settings)))
    except QAError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        embedder.close()
    click.echo(f"rolled back {settings.index_dir}: CURRENT {before} -> {after}")


def _filter_options(fn: F) -> F:
    fn = click.option("--published-to", metavar="DATE", help="Only articles published on or before DATE (YYYY-MM-DD).")(
        fn
    )
    fn = click.option(
        "--published-from", metavar="DATE", help="Only articles published on or after DATE (YYYY-MM-DD)."
    )(fn)
    fn = click.option("--outlet", help="Only articles from this outlet (sidecar metadata).")(fn)
    fn = click.option("--author", help="Only articles whose author contains this name.")(fn)
    return click.option("--doc", "doc_ids", multiple=True, metavar="DOC_ID", help="Only this document (repeatable).")(
        fn
    )


def _mode_option(fn: F) -> F:
    return click.option(
        "--mode",
        type=click.Choice(MODES),
        default="hybrid",
        show_default=True,
        help="dense (embeddings), lexical (BM25) or hybrid (both, fused).",
    )(fn)


@main.command()
@click.argument("question")
@click.option("-k", "--k", "k", type=click.IntRange(1, MAX_K), default=None, help="How many passages. [default: 5]")
@_mode_option
@click.option("--no-group", is_flag=True, help="List near-identical passages of different articles separately.")
@_filter_options
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
@_index_option
@_model_options
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
    settings = _settings(**options)
    try:
        check_question(question, k or settings.default_k)  # before the model loads
        filters = Filters(doc_ids or None, author, outlet, published_from, published_to)
        filters.check()
    except InvalidQueryError as exc:
        raise click.BadParameter(str(exc), param_hint="QUESTION") from None
    embedder = _embedder(settings)
    try:
        index = Index.open(settings.index_dir, expected_identity(embedder, _chunker_config(settings)))
        try:
            answer = Searcher(index, embedder).ask(
                question, k or settings.default_k, mode=mode, filters=filters, group=not no_group
            )
        finally:
            index.close()
    except QAError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        embedder.close()
    if as_json or output == "json":
        click.echo(answer.model_dump_json(indent=2))
    elif output == "markdown":
        click.echo(markdown_report(answer), nl=False)
    else:
        click.echo(render(answer))


@main.command("verify")
@click.argument("draft", type=click.File("r", encoding="utf-8"))
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON (as POST /verify sends it).")
@_index_option
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
    settings = _settings(**options)
    text = draft.read()
    try:
        index = Index.open(settings.index_dir, expected=None)  # verify reads text only: no embedder to check
        try:
            report = Verifier(index).verify(text)
        finally:
            index.close()
    except QAError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(report.model_dump_json(indent=2) if as_json else render_verification(report))
    if report.unsupported:
        sys.exit(1)


def render_verification(report: VerifyReport) -> str:
    """One block per quote: found with its citation(s), or not with the closest sentence and the differences."""
    if not report.quotes:
        return "No quotes found."
    lines: list[str] = []
    for n, check in enumerate(report.quotes, start=1):
        quote = textwrap.shorten(check.quote, 100, placeholder="…")
        if check.found:
            lines.append(click.style(f"{n}. FOUND  (line {check.line}) “{quote}”", fg="green", bold=True))
            lines.extend(f"   {m.citation.formatted}" for m in check.matches)
        else:
            lines.append(click.style(f"{n}. NOT FOUND  (line {check.line}) “{quote}”", fg="red", bold=True))
            closest = check.closest
            if closest is None:
                lines.append("   nothing similar in the articles")
            else:
                lines.append(f"   closest ({closest.similarity:.2f}): {closest.citation.formatted}")
                lines.append(_wrap(closest.sentence))
                for d in closest.differences:
                    if d.op == "replace":
                        lines.append(f"   quote has “{d.quote}” where the source has “{d.source}”")
                    elif d.op == "delete":
                        lines.append(f"   quote adds “{d.quote}”")
                    else:
                        lines.append(f"   quote leaves out “{d.source}”")
                if not closest.differences:
                    lines.append("   same words; the punctuation differs")
        lines.append("")
    lines.append(f"{report.supported} found, {report.unsupported} not found (build {report.build_id})")
    return "\n".join(lines)


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
    help="Articles the question file is about, built into --index when stale. [default: seeds]",
)
@click.option(
    "--mode", "modes", type=click.Choice(MODES), multiple=True, help="Modes to score (repeatable). [default: all]"
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@_index_option
@_model_options
def eval_command(
    beir_dir: Path | None,
    split: str,
    questions_file: Path | None,
    modes: tuple[str, ...],
    as_json: bool,
    **options: Any,
) -> None:
    """Measure retrieval quality on a BEIR benchmark or on a question file.

    \b
    qa eval --beir ../shared/bench/scifact          # nDCG@10, Recall@100, MRR@10 per mode
    qa eval --questions ../shared/eval/questions.jsonl   # Recall@1/3/5, MRR, abstention

    With --beir the corpus is indexed into --index (default: bench-results/index-<name>)
    by the service's own chunking, embedding and store, reusing vectors already embedded.
    """
    if (beir_dir is None) == (questions_file is None):
        raise click.UsageError("give exactly one of --beir DIR or --questions FILE")
    chosen = [check_mode(m) for m in modes] or list(MODES)
    settings = _settings(**options)
    embedder = _embedder(settings, "passage")
    questions = embedder if settings.query_encoder == settings.passage_encoder else _embedder(settings)
    try:
        config = _chunker_config(settings)
        if beir_dir is not None:
            index_dir = options.get("index_dir") or Path("bench-results") / f"index-{beir_dir.resolve().name}"
            figures: dict[str, Any] = run_beir(
                beir_dir, split, index_dir, embedder, config, chosen, _progress_bar(), questions
            )
            text = _beir_table(figures)
        else:
            assert questions_file is not None
            if stale_reason(settings.corpus_dir, settings.index_dir, embedder, config, settings.vector_index):
                build_index(
                    settings.corpus_dir, settings.index_dir, embedder, config, _progress_bar(), settings.vector_index
                )
            figures = run_questions(questions_file, settings.index_dir, questions, config, chosen)
            text = _questions_table(figures)
    except QAError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        embedder.close()
        questions.close()
    click.echo(json.dumps(figures, indent=2) if as_json else text)


def _beir_table(figures: dict[str, Any]) -> str:
    lines = [
        f"{figures['benchmark']} ({figures['split']}, {figures['queries']} queries, {figures['passages']} passages)"
    ]
    lines.append(f"{'mode':<8} " + " ".join(f"{m:>10}" for m in BEIR_MEASURES))
    for mode, values in figures["modes"].items():
        lines.append(f"{mode:<8} " + " ".join(f"{values[m]:>10.4f}" for m in BEIR_MEASURES))
    return "\n".join(lines)


def _questions_table(figures: dict[str, Any]) -> str:
    lines = [f"{figures['questions']} questions ({figures['unanswerable']} unanswerable), build {figures['build_id']}"]
    lines.append(
        f"{'mode':<8} {'R@1':>6} {'R@3':>6} {'R@5':>6} {'MRR':>6} {'abst.P':>7} {'abst.R':>7} {'answered':>9}  misses@3"
    )
    for mode, v in figures["modes"].items():
        cells = [v["recall@1"], v["recall@3"], v["recall@5"], v["mrr"]]
        abst = [v["abstention_precision"], v["abstention_recall"], v["answered_rate"]]
        lines.append(
            f"{mode:<8} "
            + " ".join(f"{c:>6.3f}" for c in cells)
            + " "
            + " ".join("      -" if a is None else f"{a:>7.3f}" for a in abst[:2])
            + ("        -" if abst[2] is None else f"{abst[2]:>9.3f}")
            + "  "
            + (", ".join(v["misses@3"]) or "none")
        )
    return "\n".join(lines)


@main.command("export-onnx")
@click.option(
    "--model", help="Local sentence-transformers model folder. [env: QA_MODEL; default: bundled all-MiniLM-L6-v2]"
)
@click.option("--force", is_flag=True, help="Export again even when a current export exists.")
def export_onnx(model: str | None, force: bool) -> None:
    """Export the model to ONNX (fp32, and int8 weights) beside it, for QA_QUERY_ENCODER=onnx-int8.

    Local and reproducible: torch's own exporter and onnxruntime's dynamic quantisation,
    nothing downloaded. An export that exists and is current is kept unless --force.

    \b
    qa export-onnx
    QA_QUERY_ENCODER=onnx-int8 qa serve
    """
    settings = _settings(model=model)
    try:
        folder, meta = export_model(settings.model, force=force)
    except QAError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{folder}:")
    for name, info in sorted(meta["files"].items()):
        click.echo(f"  {name}  {info['bytes'] / 1e6:.1f} MB  sha256 {info['sha256']}")
    click.echo(f"  from {meta['identity']['name']} ({meta['identity']['revision']}), opset {meta['opset']}")


@main.command()
@_index_option
@_model_options
@click.option("--host", help="Address to listen on. [env: QA_HOST; default: 127.0.0.1]")
@click.option("--port", type=click.IntRange(1, 65535), help="Port. [env: QA_PORT; default: 8000]")
@click.option(
    "--reload-interval",
    type=click.FloatRange(0, 3600),
    help="Seconds between checks for a new build; 0 = never. [env: QA_RELOAD_INTERVAL; default: 2]",
)
@click.option(
    "--inference-threads",
    type=click.IntRange(1, 64),
    help="Intra-op threads of the model (torch or onnxruntime). [env: QA_INFERENCE_THREADS; default: 1]",
)
def serve(host: str | None, port: int | None, **options: Any) -> None:
    """Serve an existing index over HTTP (OpenAPI docs at /docs).

    A new build (``qa build`` in another shell) is picked up within the reload
    interval; requests in flight finish on the old one. Health at /healthz and
    /readyz, Prometheus metrics at /metrics. See docs/operations.md.

    \b
    qa serve --index index --host 127.0.0.1 --port 8000
    curl '127.0.0.1:8000/ask?q=Who+proposed+an+Asian+NATO%3F&k=3'
    QA_ADMIN_TOKEN=... qa serve   # enables POST /admin/reload
    """
    import uvicorn

    from qa.server.app import create_app

    settings = _settings(host=host, port=port, **options)
    try:
        current_build_id(settings.index_dir)
    except QAError as exc:
        raise click.ClickException(str(exc)) from None
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


def render(answer: Answer) -> str:
    """An answer as text for a terminal: rank, score, citation, the passage with its answering
    sentences emphasised, and the other articles that report the same."""
    if not answer.results:
        return f"No passages for: {answer.question}"
    lines = [f"{answer.question}  ({answer.mode}, build {answer.build_id})"]
    if not answer.grounded:
        lines.append(
            click.style("No passage clearly answers this question; the closest ones follow.", fg="yellow", bold=True)
        )
    lines.append("")
    for result in answer.results:
        head = f"{result.rank}. [{result.score:.3f}] {result.citation.formatted}"
        lines.append(click.style(head, bold=True))
        lines.extend([_wrap(emphasise(result.text, result)), f"   id: {result.passage_id}"])
        for other in result.also_reported_in:
            lines.append(f"   also reported in: {other.citation.formatted} [{other.similarity:.2f}]")
        lines.append("")
    return "\n".join(lines).rstrip()


def emphasise(text: str, result: Result) -> str:
    """The passage with its highlighted sentences in bold yellow (ANSI; plain when piped)."""
    out, pos = [], 0
    for h in sorted(result.highlights, key=lambda h: h.start):
        out.extend([text[pos : h.start], click.style(text[h.start : h.end], fg="yellow", bold=True)])
        pos = h.end
    out.append(text[pos:])
    return "".join(out)


def _wrap(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), width=88, initial_indent="   ", subsequent_indent="   ")


def _progress_bar() -> Progress | None:
    """A tqdm bar on a terminal; nothing when stderr is a file or a pipe."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar: Any = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="embedding", unit="passage", file=sys.stderr)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update

"""Terminal rendering for the ``qa`` command: answers, quote checks, evaluation tables, progress."""

from __future__ import annotations

import sys
import textwrap
from typing import Any

import click

from qa.citations.verify import VerifyReport
from qa.evaluation.questions import BEIR_MEASURES
from qa.index.prepare import Progress
from qa.search.models import Answer, Result

#: Width of wrapped passage text: fits an 88-column terminal with the three-space indent.
WRAP_WIDTH = 88
#: Longest quote shown in a verification heading, in characters.
QUOTE_WIDTH = 100


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
    return textwrap.fill(" ".join(text.split()), width=WRAP_WIDTH, initial_indent="   ", subsequent_indent="   ")


def progress_bar() -> Progress | None:
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


def render_verification(report: VerifyReport) -> str:
    """One block per quote: found with its citation(s), or not with the closest sentence and the differences."""
    if not report.quotes:
        return "No quotes found."
    lines: list[str] = []
    for n, check in enumerate(report.quotes, start=1):
        quote = textwrap.shorten(check.quote, QUOTE_WIDTH, placeholder="…")
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


def beir_table(figures: dict[str, Any]) -> str:
    lines = [
        f"{figures['benchmark']} ({figures['split']}, {figures['queries']} queries, {figures['passages']} passages)"
    ]
    lines.append(f"{'mode':<8} " + " ".join(f"{m:>10}" for m in BEIR_MEASURES))
    for mode, values in figures["modes"].items():
        lines.append(f"{mode:<8} " + " ".join(f"{values[m]:>10.4f}" for m in BEIR_MEASURES))
    return "\n".join(lines)


def questions_table(figures: dict[str, Any]) -> str:
    lines = [f"{figures['questions']} questions ({figures['unanswerable']} unanswerable), build {figures['build_id']}"]
    lines.append(
        f"{'mode':<8} {'R@1':>6} {'R@3':>6} {'R@5':>6} {'R@10':>6} {'MRR':>6} {'sent@1':>6} {'docs@3':>6} "
        f"{'chars':>6} {'abst.P':>7} {'abst.R':>7} {'answered':>9}  misses@3"
    )
    for mode, v in figures["modes"].items():
        cells = [v["recall@1"], v["recall@3"], v["recall@5"], v["recall@10"], v["mrr"]]
        extra = [v["answer_sentence@1"], v["distinct_docs@3"]]
        abst = [v["abstention_precision"], v["abstention_recall"], v["answered_rate"]]
        misses = v["misses@3"] if len(v["misses@3"]) <= 10 else [f"{len(v['misses@3'])} questions"]
        lines.append(
            f"{mode:<8} "
            + " ".join(f"{c:>6.3f}" for c in cells)
            + " "
            + " ".join("     -" if c is None else f"{c:>6.3f}" for c in extra)
            + ("      -" if v["passage_chars"] is None else f"{v['passage_chars']:>7.0f}")
            + " "
            + " ".join("      -" if a is None else f"{a:>7.3f}" for a in abst[:2])
            + ("        -" if abst[2] is None else f"{abst[2]:>9.3f}")
            + "  "
            + (", ".join(misses) or "none")
        )
    return "\n".join(lines)

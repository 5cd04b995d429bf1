"""The short texts an assistant reads beside each tool's structured output.

Passages are Markdown block quotes of their exact text, each followed by its ready-made
citation (``citation.markdown``) and its id, so an assistant can quote word for word and
cite without reformatting anything.
"""

from __future__ import annotations

from collections.abc import Iterable

from qa.citations.cite import DocumentSummary, PassageInContext, PassageView
from qa.citations.verify import VerifyReport
from qa.search.models import Answer

#: A document's resource URI (its cleaned text); the template the MCP server registers.
DOCUMENT_URI = "qa://documents/{doc_id}"


def document_uri(doc_id: str) -> str:
    return DOCUMENT_URI.format(doc_id=doc_id)


def block_quote(text: str) -> str:
    """``text`` as a Markdown block quote, every line kept (blank lines as ``>``)."""
    return "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))


def answer_text(answer: Answer) -> str:
    """The ranked passages as block quotes, each with its citation and passage id."""
    head = f"{len(answer.results)} passage(s) for: {answer.question} (mode {answer.mode}, build {answer.build_id})."
    lines = [head]
    if not answer.grounded:
        lines.append("No passage clearly answers this question; the closest ones follow. Say so if you use them.")
    lines.append("Quote them word for word, each with its citation.")
    for result in answer.results:
        lines += ["", f"[{result.rank}] passage_id {result.passage_id}", block_quote(result.text)]
        lines.append(f"— {result.citation.markdown}")
        for other in result.also_reported_in:
            lines.append(f"Also reported in: {other.citation.markdown} (passage_id {other.passage_id})")
    return "\n".join(lines) + "\n"


def passage_text(found: PassageInContext) -> str:
    """The passage, and its neighbours when asked, as block quotes with their citations."""
    lines: list[str] = []
    for label, views in (("before", found.before), ("passage", [found.passage]), ("after", found.after)):
        for view in views:
            lines += [*_passage_lines(view, label), ""]
    return "\n".join(lines)


def _passage_lines(view: PassageView, label: str) -> list[str]:
    return [f"[{label}] passage_id {view.passage_id}", block_quote(view.text), f"— {view.citation.markdown}"]


def verify_text(report: VerifyReport) -> str:
    """One line per quote: found (with where) or not (with the closest passage and its similarity)."""
    total = report.supported + report.unsupported
    lines = [f"{report.supported} of {total} quote(s) found verbatim (build {report.build_id})."]
    for n, check in enumerate(report.quotes, 1):
        lines.append("")
        if check.found:
            where = "; ".join(m.citation.markdown for m in check.matches)
            lines.append(f"{n}. found: “{check.quote}” — {where}")
        elif check.closest is not None:
            closest = check.closest
            lines.append(f"{n}. NOT found: “{check.quote}”")
            lines.append(f"   closest (similarity {closest.similarity}, passage_id {closest.passage_id}):")
            lines.append(f"   “{closest.sentence}” — {closest.citation.markdown}")
            changes = [f"{d.op} “{d.quote}” → “{d.source}”" for d in closest.differences]
            if changes:
                lines.append(f"   differences (quote → source): {'; '.join(changes)}")
        else:
            lines.append(f"{n}. NOT found: “{check.quote}” (nothing close)")
    return "\n".join(lines) + "\n"


def documents_text(documents: Iterable[DocumentSummary]) -> str:
    """One line per document: its id, title, passages and resource URI."""
    lines = [
        f"- {d.doc_id}: “{d.title}”{f', {d.outlet}' if d.outlet else ''}"
        f"{f', {d.published}' if d.published else ''} ({d.passages} passages; {document_uri(d.doc_id)})"
        for d in documents
    ]
    return "\n".join(lines or ["No documents."]) + "\n"

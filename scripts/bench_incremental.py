#!/usr/bin/env python
"""Time incremental builds with the real model: full, unchanged, one edit, one added, one deleted.

    .venv/bin/python scripts/bench_incremental.py                        # the seeds
    .venv/bin/python scripts/bench_incremental.py --scifact              # the seeds, then all of SciFact
    .venv/bin/python scripts/bench_incremental.py --scifact --limit 500  # the first 500 SciFact abstracts
    .venv/bin/python scripts/bench_incremental.py --json out.json        # also write the figures as JSON

Each corpus is copied into a temporary folder and built five times into a fresh index:
a full build (empty cache), a rebuild of the unchanged corpus, a rebuild after editing
one sentence of one article, after adding one article and after deleting one. The model
is loaded once, before the first build, so every time is ``build_index`` alone (reading,
chunking, embedding, writing, switching). After the edit it checks that only the edited
article's new passages were embedded; after the delete, that the article is gone from
the index and from the nearest passages to its own text.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from qa.config import Settings
from qa.embedding.base import SentenceTransformerEmbedder
from qa.index.embedded.store import EmbeddedStore
from qa.index.location import build_index
from qa.index.manifest import BuildIdentity
from qa.index.prepare import BuildReport
from qa.ingest.chunking import ChunkerConfig

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "bench" / "scifact" / "corpus.jsonl"
ADDED = (
    "Harbour Cities Race to Rebuild Sea Walls\n\n"
    "Harbour authorities in three coastal cities have begun emergency repairs to sea walls damaged "
    "during last year's storms, officials said on Monday. Engineers warned that the work would take "
    "at least two winters and that temporary barriers would have to hold until then.\n"
)
EDIT = " The benchmark added this sentence to measure an incremental rebuild."


def write_beir_corpus(source: Path, folder: Path, limit: int | None = None) -> Path:
    """A BEIR ``corpus.jsonl`` as one ``<_id>.txt`` article per line: the title, a blank line, the text."""
    folder.mkdir(parents=True, exist_ok=True)
    with source.open(encoding="utf-8") as lines:
        for i, line in enumerate(lines):
            if limit is not None and i >= limit:
                break
            doc = json.loads(line)
            (folder / f"{doc['_id']}.txt").write_text(f"{doc['title']}\n\n{doc['text']}\n", encoding="utf-8")
    return folder


def _doc_passages(index_dir: Path, doc_id: str) -> list[str]:
    index = EmbeddedStore.open(index_dir, expected=None)  # only its texts are read
    try:
        return [p.text for p in index.document_passages(doc_id)]
    finally:
        index.close()


def _row(step: str, report: BuildReport, index_dir: Path, **extra: Any) -> dict[str, Any]:
    manifest = json.loads((index_dir / report.build_id / "manifest.json").read_text(encoding="utf-8"))
    started = time.perf_counter()
    EmbeddedStore.open(index_dir, expected=None).close()  # every file check a server makes when it loads the build
    row = {
        "step": step,
        "seconds": round(report.seconds, 2),
        "build_seconds": manifest.get("build_seconds"),
        "documents": report.documents,
        "passages": report.passages,
        "embedded": report.embedded,
        "open_seconds": round(time.perf_counter() - started, 3),
        **extra,
    }
    print(json.dumps(row), flush=True)
    return row


def bench_corpus(name: str, corpus: Path, work: Path, embedder: SentenceTransformerEmbedder) -> dict[str, Any]:
    config = ChunkerConfig(Settings().max_tokens, Settings().overlap_sentences)
    index_dir = work / "index"
    articles = sorted(corpus.glob("*.txt"))
    rows = [
        _row("full", build_index(corpus, index_dir, embedder, config), index_dir),
        _row("unchanged", build_index(corpus, index_dir, embedder, config), index_dir),
    ]

    # Edit one sentence at the end of the first paragraph of prose of one article.
    edited = articles[len(articles) // 2]
    text = edited.read_text(encoding="utf-8")
    before = set(_doc_passages(index_dir, edited.stem))
    cut = text.index(".", len(text) // 3) + 1 if "." in text[len(text) // 3 :] else len(text.rstrip())
    edited.write_text(text[:cut] + EDIT + text[cut:], encoding="utf-8")
    report = build_index(corpus, index_dir, embedder, config)
    after = _doc_passages(index_dir, edited.stem)
    changed = len(set(after) - before)
    rows.append(
        _row(
            "edit one",
            report,
            index_dir,
            article=edited.name,
            article_passages=len(after),
            article_passages_changed=changed,
            only_that_article=report.embedded == changed,
        )
    )

    added = corpus / "zz-added-article.txt"
    added.write_text(ADDED, encoding="utf-8")
    report = build_index(corpus, index_dir, embedder, config)
    rows.append(_row("add one", report, index_dir, article_passages=len(_doc_passages(index_dir, added.stem))))

    deleted = articles[0]
    gone = _doc_passages(index_dir, deleted.stem)
    deleted.unlink()
    report = build_index(corpus, index_dir, embedder, config)
    index = EmbeddedStore.open(index_dir, BuildIdentity.of(embedder, config))
    try:
        in_index = index.document(deleted.stem) is not None or bool(index.document_passages(deleted.stem))
        vectors = embedder.embed_batch(gone)
        hits = [hit for vector in vectors for hit in index.dense(vector, 10)]
        in_results = any(hit.doc_id == deleted.stem for hit in hits)
    finally:
        index.close()
    rows.append(_row("delete one", report, index_dir, still_in_index=in_index, still_in_results=in_results))

    full, unchanged = rows[0]["seconds"], rows[1]["seconds"]
    summary = {"corpus": name, "rows": rows, "unchanged_ratio": round(unchanged / full, 4)}
    print(json.dumps({"corpus": name, "unchanged_ratio": summary["unchanged_ratio"]}), flush=True)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT / "seeds", help="A folder of articles. [default: seeds]")
    parser.add_argument("--no-corpus", action="store_true", help="Skip the --corpus folder (SciFact only).")
    parser.add_argument("--scifact", action="store_true", help="Also bench the SciFact corpus.")
    parser.add_argument("--scifact-file", type=Path, default=SCIFACT)
    parser.add_argument("--limit", type=int, default=None, help="Only the first N SciFact abstracts.")
    parser.add_argument("--json", type=Path, default=None, help="Write the results here.")
    args = parser.parse_args()

    embedder = SentenceTransformerEmbedder()
    started = time.perf_counter()
    embedder.load()
    results: dict[str, Any] = {"model_load_seconds": round(time.perf_counter() - started, 2), "corpora": []}
    try:
        with tempfile.TemporaryDirectory(prefix="qa-bench-incremental-") as tmp:
            if not args.no_corpus:
                corpus = Path(tmp) / "seeds" / "corpus"
                shutil.copytree(args.corpus, corpus)
                results["corpora"].append(bench_corpus(args.corpus.name, corpus, Path(tmp) / "seeds", embedder))
            if args.scifact:
                corpus = write_beir_corpus(args.scifact_file, Path(tmp) / "scifact" / "corpus", args.limit)
                name = "scifact" if args.limit is None else f"scifact[:{args.limit}]"
                results["corpora"].append(bench_corpus(name, corpus, Path(tmp) / "scifact", embedder))
    finally:
        embedder.close()

    print("\n| corpus | step | seconds | passages | embedded |", file=sys.stderr)
    print("|---|---|---:|---:|---:|", file=sys.stderr)
    for corpus_result in results["corpora"]:
        for row in corpus_result["rows"]:
            print(
                f"| {corpus_result['corpus']} | {row['step']} | {row['seconds']:.2f} | {row['passages']} "
                f"| {row['embedded']} |",
                file=sys.stderr,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

"""BEIR-format benchmarks: read a folder, index its corpus through the service's own chain.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``) and ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``
with a header line). See https://github.com/beir-cellar/beir.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from qa.errors import QAError
from qa.files import sha256_file
from qa.ingest.cleaning import Block
from qa.ingest.documents import Document

#: ``qrels[query_id][doc_id] = relevance``, the shape pytrec_eval takes.
Qrels = dict[str, dict[str, int]]


@dataclass(frozen=True)
class Benchmark:
    path: Path
    documents: list[Document]
    queries: dict[str, str]
    qrels: Qrels

    def fingerprint(self) -> str:
        """Identifies the corpus file, so an index built from it can be reused."""
        return sha256_file(self.path / "corpus.jsonl")


def load_benchmark(path: Path, split: str = "test") -> Benchmark:
    """The corpus, the queries that have judgements in ``split``, and those judgements."""
    for name in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (path / name).is_file():
            raise QAError(f"{path} is not a BEIR folder: {name} is missing")
    qrels = load_qrels(path / "qrels" / f"{split}.tsv")
    queries = {qid: text for qid, text in _queries(path / "queries.jsonl") if qid in qrels}
    documents = [beir_document(raw) for raw in _jsonl(path / "corpus.jsonl")]
    return Benchmark(path, documents, queries, {q: r for q, r in qrels.items() if q in queries})


def load_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    with open(path, encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t")
        for number, row in enumerate(rows, start=1):
            if number == 1 and row and row[0] == "query-id":
                continue
            if len(row) < 3:
                raise QAError(f"{path}:{number}: expected query-id, corpus-id and score")
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def beir_document(raw: dict[str, object]) -> Document:
    """A benchmark record as a document: the abstract is one block of prose, the title is its title.

    Benchmark abstracts carry no navigation or bylines, so the boilerplate classifier
    is not run on them; chunking, embedding and storage are the service's own.
    """
    text = str(raw.get("text") or "").strip() or str(raw.get("title") or "")
    doc_id = str(raw["_id"])
    return Document(
        doc_id=doc_id,
        source=f"corpus.jsonl#{doc_id}",
        text=text,
        title=str(raw.get("title") or "").strip(),
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        blocks=(Block(0, len(text), "prose", ""),),
    )


def _queries(path: Path) -> Iterator[tuple[str, str]]:
    for raw in _jsonl(path):
        yield str(raw["_id"]), str(raw["text"])


def _jsonl(path: Path) -> Iterator[dict[str, object]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise QAError(f"{path}:{number}: not JSON ({exc.msg})") from None

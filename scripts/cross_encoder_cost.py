#!/usr/bin/env python
"""What reranking hybrid's best passages with a cross-encoder would cost per question, on this machine.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/cross_encoder_cost.py

No cross-encoder is installable here (docs/benchmarks.md, "SQuAD"), so this times the
nearest stand-in: the bundled all-MiniLM-L6-v2's own fp32 ONNX export (the six-layer body a
MiniLM-L6 cross-encoder such as ms-marco-MiniLM-L-6-v2 has; its one-number head costs nothing
beside it) run on (question, passage) pairs as a cross-encoder reads them: one sequence per
pair, the question and the passage joined by the tokenizer. Questions are the first SQuAD
dev-half questions, each paired with passages of the default budget cut from its own article
(322 characters, the mean length hybrid returns there). One intra-op thread, as the service's
question encoder runs; p50 over the questions for 1, 3, 5, 10 and 20 pairs, against the
question's own encode (what ``/ask`` already pays).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from qa.embedding.export import export_model
from qa.embedding.onnx import FILES, describe_model, model_folder

ROOT = Path(__file__).resolve().parent.parent
#: The mean length in characters of the passages hybrid returns on the SQuAD dev half (docs/benchmarks.md).
PASSAGE_CHARS = 322


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared" / "bench" / "squad")
    parser.add_argument("--questions", type=int, default=40)
    args = parser.parse_args()
    folder, _ = export_model()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(folder / FILES["fp32"]), options, providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    _, _, transformer = describe_model(model_folder(None))
    tokenizer = Tokenizer.from_file(str(transformer / "tokenizer.json"))
    tokenizer.enable_truncation(256)
    tokenizer.enable_padding()
    with (args.squad / "questions.jsonl").open() as lines:
        questions = [json.loads(line) for line in lines][: args.questions]

    def run(texts: list[str | tuple[str, str]]) -> float:
        encoded = tokenizer.encode_batch(texts)
        feed = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
        }
        if "token_type_ids" in inputs:
            feed["token_type_ids"] = np.array([e.type_ids for e in encoded], dtype=np.int64)
        started = time.perf_counter()
        session.run(None, feed)
        return (time.perf_counter() - started) * 1000

    run(["warm-up"])
    alone = statistics.median(run([q["question"]]) for q in questions)
    print(f"the question alone (what /ask encodes today): p50 {alone:.1f} ms")
    for pairs in (1, 3, 5, 10, 20):
        times = []
        for q in questions:
            article = (args.squad / "articles" / f"{q['doc']}.txt").read_text()
            passages = [article[i * PASSAGE_CHARS : (i + 1) * PASSAGE_CHARS] for i in range(pairs)]
            times.append(run([(q["question"], p) for p in passages]))
        p50 = statistics.median(times)
        print(f"{pairs:2d} (question, passage) pairs: p50 {p50:6.1f} ms ({p50 / alone:.1f}x the question's encode)")


if __name__ == "__main__":
    main()

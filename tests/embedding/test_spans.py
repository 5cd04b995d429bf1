"""Sentence vectors from the passage's own pass: token spans, pooling, and both real encoders."""

from __future__ import annotations

import numpy as np
import pytest

from qa.embedding.factory import make_encoder
from qa.embedding.spans import pool, token_ranges
from qa.ingest.sentences import split_sentences

TEXTS = [
    "Japan proposed an Asian NATO. India declined the offer, citing strategic autonomy.",
    "The Amazon rainforest covers most of the Amazon basin of South America.",
    "Title line\nThe IPCC was set up in 1988. It assesses climate science. Its reports guide policy.",
]


def test_token_ranges_cover_each_span_and_skip_special_tokens() -> None:
    # [CLS] hello world . second one . [SEP]
    offsets = [(0, 0), (0, 5), (6, 11), (11, 12), (13, 19), (20, 23), (23, 24), (0, 0)]
    assert token_ranges(offsets, [(0, 12), (13, 24)]) == [(1, 4), (4, 7)]
    # A span shifted by a prefix the model saw before the passage.
    assert token_ranges(offsets, [(0, 11)], shift=13) == [(4, 7)]


def test_a_span_the_window_cut_has_no_range() -> None:
    offsets = [(0, 0), (0, 5), (6, 11), (0, 0)]  # the text went on past character 11
    assert token_ranges(offsets, [(0, 11), (12, 30), (40, 50)]) == [(1, 3), None, None]


def test_pool_is_a_normalised_mean_and_nan_for_no_range() -> None:
    tokens = np.array([[1, 0], [3, 0], [0, 2]], dtype=np.float32)
    pooled = pool(tokens, [(0, 2), (1, 3), None])
    assert pooled[0] == pytest.approx([1.0, 0.0])
    assert pooled[1] == pytest.approx(np.array([3, 2]) / np.hypot(3, 2))
    assert np.isnan(pooled[2]).all()


@pytest.fixture(scope="module")
def pooled() -> dict[str, tuple[np.ndarray, list[np.ndarray], np.ndarray]]:
    spans = [split_sentences(t) for t in TEXTS]
    out = {}
    for name in ("torch", "onnx"):
        embedder = make_encoder(None, name)
        try:
            vectors, sentences = embedder.embed_with_spans(TEXTS, spans)
            out[name] = (vectors, sentences, embedder.embed_batch(TEXTS))
        finally:
            embedder.close()
    return out


@pytest.mark.parametrize("name", ["torch", "onnx"])
def test_passage_vectors_are_exactly_what_embed_batch_gives(pooled: dict, name: str) -> None:
    vectors, sentences, alone = pooled[name]
    np.testing.assert_allclose(vectors, alone, atol=1e-6)
    assert [len(s) for s in sentences] == [len(split_sentences(t)) for t in TEXTS]
    for rows in sentences:
        np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)


def test_torch_and_the_fp32_export_pool_the_same_sentence_vectors(pooled: dict) -> None:
    torch_rows, onnx_rows = np.vstack(pooled["torch"][1]), np.vstack(pooled["onnx"][1])
    assert (torch_rows * onnx_rows).sum(axis=1).min() > 0.9999

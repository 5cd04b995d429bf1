"""Sentence vectors from a passage's own forward pass: its token embeddings pooled over each sentence.

A build needs a vector for every passage and for every sentence of it (highlights,
grouping and grounding compare the question with sentences). Embedding each sentence
as a text of its own runs the model a second time over every word; instead the
passage's forward pass, which computes a contextual embedding for every token anyway,
gives each sentence the mean of the token embeddings inside its character span
(tokens mapped to characters with the fast tokenizer's offsets), normalised. The
passage vector is the model's own pooling of the same pass, unchanged.

A sentence that the model's window cut (it ends after the last token kept) has no
complete token span: :func:`token_ranges` returns ``None`` for it and the caller embeds
it as a text of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

#: Rows of float32 vectors (the same alias as :data:`qa.embedding.base.Vectors`, which imports this module).
Vectors = npt.NDArray[np.float32]

#: Smallest norm divided by when normalising a pooled sentence (an all-zero span stays zero).
NORM_EPSILON = 1e-12
#: How a build's manifest names the two ways of embedding sentences (ChunkerConfig.sentence_vectors).
PASSAGE_TOKENS = "passage"
SEPARATE = "separate"

#: ``(start, end)`` character spans of one text's sentences.
Spans = Sequence[tuple[int, int]]


def token_ranges(offsets: Sequence[tuple[int, int]], spans: Spans, shift: int = 0) -> list[tuple[int, int] | None]:
    """For each character span (in the text after ``shift`` characters), the ``[first, last)`` tokens inside it.

    ``offsets`` are the tokenizer's per-token character offsets of the whole text, with
    ``(0, 0)`` for special tokens. A token belongs to a span when its characters start
    inside it. ``None``: the span has no token, or it ends after the last token kept
    (the window cut it).
    """
    starts = np.array([s for s, e in offsets if e > s], dtype=np.int64)
    positions = np.array([i for i, (s, e) in enumerate(offsets) if e > s], dtype=np.int64)
    last_end = max((e for s, e in offsets if e > s), default=0)
    out: list[tuple[int, int] | None] = []
    for start, end in spans:
        a, b = start + shift, end + shift
        lo, hi = np.searchsorted(starts, a, "left"), np.searchsorted(starts, b, "left")
        if hi <= lo or b > last_end:
            out.append(None)
        else:
            out.append((int(positions[lo]), int(positions[hi - 1]) + 1))
    return out


def pool(tokens: Vectors, ranges: Sequence[tuple[int, int] | None]) -> Vectors:
    """Mean of ``tokens`` (one row per token) over each range, L2-normalised; NaN rows for ``None``."""
    out = np.full((len(ranges), tokens.shape[1]), np.nan, dtype=np.float32)
    for row, r in enumerate(ranges):
        if r is not None:
            out[row] = tokens[r[0] : r[1]].mean(axis=0)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.asarray(out / np.maximum(norms, NORM_EPSILON), dtype=np.float32)

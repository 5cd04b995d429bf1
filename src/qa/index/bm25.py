"""BM25, defined once: FTS5's formula, and the scorer both stores rank passages and documents with.

The build cuts the text into terms with FTS5's own tokenizer and reads each term's postings out
of FTS5's index (:mod:`qa.index.postings`): for passages (the document's title and the passage's
text, two columns) and for whole documents (title and cleaned text). Each store fetches the lists
through a :class:`PostingsReader` of its own (the embedded store from its SQLite database, the
PostgreSQL store from its build's schema) and scores them here, so both give the same passages
with the same doubles (``tests/index/test_parity.py``).

The formula is FTS5's ``bm25()`` (fts5_aux.c): :data:`K1`, :data:`B`, :func:`idf`, each term's
share (:func:`share`) computed with FTS5's operations in its order, summed in query order, so a
score is the double FTS5 gives (``tests/index/test_bm25.py`` checks it against FTS5's ``bm25()``,
which nothing else calls now). Column weights multiply a term's count in the title and the text.

A query is its distinct terms in order, as FTS5 searched them (each quoted, OR-ed), each cut by
FTS5 (:func:`~qa.index.postings.fts5_tokens`). A token counts once for each distinct term that
yields it: "elections" and "election" both give "elect", which FTS5's ``bm25()`` counted twice, once
per phrase (66 of SciFact's 1,109 queries and 62 of SQuAD's 5,397 hold such a pair; the
PostgreSQL store counted it once before this module). A term cut into several tokens
("asian-nato") counts each of its distinct tokens as a term of its own, in its place: FTS5
searched it as a phrase, which postings without offsets cannot, and the PostgreSQL store already
did this. No question of the seeds' questions.jsonl, of SciFact's 1,109 queries or of SQuAD's
5,397 has such a term, so no figure moved.

Work is bounded by the query's terms: asking FTS5 for the best ``k`` passages made it score and
sort every passage holding any query term (``ORDER BY bm25()`` has no shortcut): 12 ms of a 32 ms
hybrid answer on SciFact's 22,233 passages (docs/benchmarks.md, "Speed"). Here a question reads
the lists of its few terms and scores them with numpy; when those lists are long (a large corpus,
common words) the best ``k`` are found by MaxScore: the terms that cannot lift a row into the best
``k`` on their own are only looked up for the few rows the others leave in the running
(:meth:`Postings.top`).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from qa.index.postings import fts5_tokens

#: BM25's constants, as FTS5's bm25() fixes them (fts5_aux.c).
K1, B = 1.2, 0.75
#: FTS5 never lets a term's IDF fall to zero or below: a term in more than half the rows gets this.
_IDF_FLOOR = 1e-6
#: When a question's lists hold more postings than this share of the rows, its scores are
#: summed into one array indexed by position (np.bincount: time linear in postings plus rows)
#: instead of over the sorted distinct positions (np.unique: a sort of the postings). Measured on
#: random lists over 1M positions (2026-12-05, loaded machine): 50k postings 1.2 ms sorted
#: against 18 ms by position, 200k 19-30 ms against 12 ms, 1M 51-280 ms against 26 ms.
DENSE_SHARE = 0.2
#: MaxScore pruning (:meth:`Postings.top`) is used in a build of at least PRUNE_PASSAGES rows
#: for a question whose lists hold more than PRUNE_MIN postings. Measured per question on SciFact
#: grown by copies (scripts/bench_scale_ask.py builds; 300 questions, p50 by postings; 2026-12-05,
#: with the threshold raised by the essential terms' scores and the skipped terms looked up one by
#: one): at 1M passages pruning won from 60,000 postings up (60-100k: 1.8 against 3.5 ms; 200-400k:
#: 3.9 against 9.8; over 400k: 8.2 against 19.4) and was even at 30-60k (1.6-2.1 against 1.9, four
#: questions); at 100,000 passages it lost at every size (60-100k postings: 1.7 against 1.2 ms),
#: scoring every posting being cheap while a build's per-passage arrays fit in cache. Between the
#: two sizes nothing was measured: the switch is put at their geometric middle.
PRUNE_PASSAGES = 300_000
PRUNE_MIN = 60_000
#: What looking one row up in one list by binary search costs, in passes over one posting
#: (:meth:`Postings._summed` picks the cheaper way): about log2 of a long list's length.
LOOKUP_COST = 16
#: Terms whose largest share (the best BM25 contribution any row gets from them) is
#: remembered; each is one pass over its list, paid the first time a question holds it.
_BOUNDS_CACHED = 65_536
#: Relative slack on the pruning test (terms whose bounds sum below the threshold are skipped):
#: the bounds and a row's score are sums of the same doubles in different orders.
_BOUND_SLACK = 1e-9


def idf(rows: int, hits: int | np.ndarray) -> float | np.ndarray:
    """FTS5's IDF of a term held by ``hits`` of ``rows`` rows: ``ln((N - n + 0.5) / (n + 0.5))``, at least 1e-6."""
    value = np.log((rows - np.asarray(hits, dtype=np.float64) + 0.5) / (np.asarray(hits, dtype=np.float64) + 0.5))
    value = np.where(value <= 0.0, _IDF_FLOOR, value)
    return float(value) if value.ndim == 0 else value


def share(term_idf: float, frequency: np.ndarray, length: np.ndarray, average_length: float) -> np.ndarray:
    """One term's share of FTS5's bm25() in each row: its (column-weighted) ``frequency`` there and the
    row's ``length`` in tokens (all columns). A row's score is the sum of its terms' shares, in query order.

    The operations are FTS5's, in its order (fts5_aux.c ``fts5Bm25Function``), so a sum over the
    same terms gives the same double FTS5 gives.
    """
    return term_idf * ((frequency * (K1 + 1.0)) / (frequency + K1 * (1 - B + B * length / average_length)))


def query_tokens(terms: Sequence[str]) -> list[str]:
    """The tokens a query is scored by, in order: each distinct term's distinct FTS5 tokens (see above)."""
    return [token for term in dict.fromkeys(t for t in terms if t) for token in dict.fromkeys(fts5_tokens(term))]


class PostingsReader(Protocol):
    """One set of postings (a build's passages, or its documents), as a store reads them."""

    def statistics(self) -> tuple[int, int, bytes]:
        """``(rows, tokens, lengths)``: how many rows, their tokens in all, and each row's tokens
        (int32 bytes, index = position, 0 unused)."""
        ...

    def lists(self, tokens: Sequence[str]) -> Iterable[tuple[str, bytes, bytes, bytes]]:
        """``(token, positions, title_tf, text_tf)`` for those of ``tokens`` some row holds, each an
        int32 array's bytes, positions ascending."""
        ...


def _kth(scores: np.ndarray, k: int) -> float:
    """The ``k``-th largest of ``scores`` (at least ``k`` of them)."""
    return float(np.partition(scores, len(scores) - k)[len(scores) - k])


@dataclass(frozen=True)
class _Term:
    """One query token's postings: positions (ascending), title and text counts, and its IDF."""

    term: str
    positions: np.ndarray
    title_tf: np.ndarray
    text_tf: np.ndarray
    idf: float
    #: The largest share of the term's whole list, for a list cut to a filter's rows (whose own
    #: largest share is no bound for the whole list, so it is never remembered as one).
    bound: float | None = None


class Postings:
    """One set of postings, opened over a store's reader; per question only the query tokens' lists are read."""

    def __init__(self, reader: PostingsReader, rows: int, tokens_total: int, lengths: np.ndarray) -> None:
        self._reader = reader
        self.rows = rows
        self._average = tokens_total / rows if rows else 1.0
        # float64 as FTS5 computes with, index = position (0 unused).
        self._lengths = lengths.astype(np.float64)
        self._recent = threading.local()
        #: ``(term, weights)``: the term's largest share in any row (see :meth:`_bound`).
        self._bounds: dict[tuple[str, tuple[float, float]], float] = {}

    @classmethod
    def open(cls, reader: PostingsReader) -> Postings:
        """The postings ``reader`` reads, with their statistics."""
        rows, total, lengths = reader.statistics()
        return cls(reader, rows, total, np.frombuffer(lengths, dtype=np.int32))

    def terms(self, query_terms: Sequence[str]) -> list[_Term | None]:
        """The postings of the query's tokens (:func:`query_tokens`), in order (``None``: no row holds it)."""
        distinct = tuple(dict.fromkeys(t for t in query_terms if t))
        last = getattr(self._recent, "terms", None)
        if last is not None and last[0] == distinct:
            return list(last[1])
        tokens = query_tokens(distinct)
        wanted = list(dict.fromkeys(tokens))
        lists = {str(t): self._term(str(t), p, a, b) for t, p, a, b in (self._reader.lists(wanted) if wanted else ())}
        found = [lists.get(t) for t in tokens]
        self._recent.terms = (distinct, tuple(found))
        return found

    def _term(self, token: str, positions: bytes, title_tf: bytes, text_tf: bytes) -> _Term:
        held = np.frombuffer(positions, dtype=np.int32)
        as_int = functools.partial(np.frombuffer, dtype=np.int32)
        return _Term(token, held, as_int(title_tf), as_int(text_tf), float(idf(self.rows, len(held))))

    def _shares(self, term: _Term, weights: tuple[float, float], where: np.ndarray | slice) -> np.ndarray:
        frequency = weights[0] * term.title_tf[where] + weights[1] * term.text_tf[where]
        return share(term.idf, frequency, self._lengths[term.positions[where]], self._average)

    def top(
        self, terms: Sequence[_Term | None], k: int, weights: tuple[float, float], allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` best rows holding any term, ``(position, score)`` best first, and every row tied with
        the ``k``-th (the caller breaks ties by passage id: :func:`qa.index.protocol.best_first`); only
        positions ``allowed`` (a mask indexed by position) when given: each list is cut to them
        first, so a filter shrinks the work as it shrinks the lists (IDF stays the whole build's, as FTS5's)."""
        held = [t for t in terms if t is not None]
        if allowed is not None:
            held = [t for t in (self._within(t, allowed, weights) for t in held) if len(t.positions)]
        if not held or k <= 0:
            return []
        large = self.rows >= PRUNE_PASSAGES and sum(len(t.positions) for t in held) > PRUNE_MIN
        pruned = self._pruned(held, k, weights) if large else None
        if pruned is not None:
            found = pruned
            scores, _ = self._summed(held, found, weights)
        else:
            found, scores = self._every(held, weights)
        if len(found) > k:
            keep = scores >= _kth(scores, k)
            found, scores = found[keep], scores[keep]
        order = np.lexsort((found, -scores))
        return [(int(p), float(s)) for p, s in zip(found[order], scores[order], strict=True)]

    def scores(
        self, terms: Sequence[_Term | None], positions: Sequence[int], weights: tuple[float, float]
    ) -> dict[int, float]:
        """BM25 of the rows at ``positions`` that hold any term."""
        wanted = np.asarray(positions, dtype=np.int32)
        total, matched = self._summed([t for t in terms if t is not None], wanted, weights)
        return {int(p): float(s) for p, s in zip(wanted[matched], total[matched], strict=True)}

    def _every(self, held: list[_Term], weights: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        """Every row holding a term (ascending) and the sum of these terms' shares in it: all
        their postings scored."""
        positions = np.concatenate([t.positions for t in held])
        shares = np.concatenate([self._shares(t, weights, slice(None)) for t in held])
        # Each row's shares summed in query-term order, as FTS5 adds them (bincount adds in array order).
        if len(positions) > DENSE_SHARE * self.rows:
            totals = np.bincount(positions, weights=shares, minlength=self.rows + 1)
            matched = np.zeros(self.rows + 1, dtype=bool)
            matched[positions] = True
            found = np.flatnonzero(matched)
            return found, totals[found]
        found, where = np.unique(positions, return_inverse=True)
        return found, np.bincount(where, weights=shares, minlength=len(found))

    def _pruned(self, held: list[_Term], k: int, weights: tuple[float, float]) -> np.ndarray | None:
        """The few rows (ascending) that can reach the best ``k``, by MaxScore; ``None`` when
        no term can be skipped (then every posting is scored).

        A threshold comes first: the ``k``-th best score among the rows of the shortest lists
        (rare terms, few postings) is a score the final ``k``-th reaches. A term's bound is the
        largest share any row gets from it. The terms whose bounds sum below the threshold
        cannot lift a row into the best ``k`` on their own, so only rows holding one of
        the other (essential) terms are candidates. Their essential shares are a lower bound of
        their scores, so the ``k``-th best of them raises the threshold; then the skipped terms,
        largest bound first, are looked up for the candidates still able to reach it (their
        shares so far plus the bounds of the terms not yet looked up), which drops more of them
        at each term. :meth:`top` then sums the survivors' exact scores in query order.
        """
        shortest = sorted(held, key=lambda t: len(t.positions))
        seeds = np.zeros(0, dtype=np.int32)
        for term in shortest[:-1]:  # the longest list is never a seed: that would be every posting
            seeds = np.union1d(seeds, term.positions)
            if len(seeds) >= k:
                break
        else:
            return None
        seeded, _ = self._summed(held, seeds, weights)
        threshold = _kth(seeded, k) * (1 - _BOUND_SLACK)
        bounds = sorted((self._bound(t, weights), i) for i, t in enumerate(held))
        skipped: list[tuple[float, int]] = []
        below = 0.0
        for bound, i in bounds:
            if below + bound >= threshold:
                break
            below += bound
            skipped.append((bound, i))
        if not skipped:
            return None
        left_out = {i for _, i in skipped}
        essential = [t for i, t in enumerate(held) if i not in left_out]
        found, partial = self._every(essential, weights)
        if len(found) >= k:
            threshold = max(threshold, _kth(partial, k) * (1 - _BOUND_SLACK))
        # The skipped terms largest bound first; ``left[n]``: the bounds of those after the n-th.
        skipped.reverse()
        left = [sum(b for b, _ in skipped[n + 1 :]) for n in range(len(skipped))]
        alive = partial + below * (1 + _BOUND_SLACK) >= threshold
        found, partial = found[alive], partial[alive]
        for (_, i), rest in zip(skipped, left, strict=True):
            partial += self._summed([held[i]], found, weights)[0]
            alive = partial + rest * (1 + _BOUND_SLACK) >= threshold
            found, partial = found[alive], partial[alive]
        return found

    def _summed(
        self, held: list[_Term], positions: np.ndarray, weights: tuple[float, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The scores of the rows at ``positions`` (ascending, distinct), each term's share added
        in query-term order (the doubles FTS5 adds, in its order), and which of them hold any term.

        Few rows are looked up in each list (a binary search each); many are found by one pass
        over each list through a table from position to slot, which costs the lists' length
        instead of ``rows x terms x log(list)``.
        """
        total = np.zeros(len(positions), dtype=np.float64)
        matched = np.zeros(len(positions), dtype=bool)
        if not len(positions):
            return total, matched
        if len(positions) * len(held) * LOOKUP_COST > sum(len(t.positions) for t in held) + self.rows:
            slots = np.full(self.rows + 1, -1, dtype=np.int32)
            slots[positions] = np.arange(len(positions), dtype=np.int32)
            for term in held:
                found = slots[term.positions]
                hit = np.flatnonzero(found >= 0)
                total[found[hit]] += self._shares(term, weights, hit)
                matched[found[hit]] = True
            return total, matched
        for term in held:
            at = np.minimum(np.searchsorted(term.positions, positions), len(term.positions) - 1)
            hit = term.positions[at] == positions
            total[hit] += self._shares(term, weights, at[hit])
            matched |= hit
        return total, matched

    def _within(self, term: _Term, allowed: np.ndarray, weights: tuple[float, float]) -> _Term:
        """``term`` with only its postings in ``allowed`` positions, carrying its whole list's bound."""
        keep = allowed[term.positions]
        return dataclasses.replace(
            term,
            positions=term.positions[keep],
            title_tf=term.title_tf[keep],
            text_tf=term.text_tf[keep],
            bound=self._bound(term, weights),
        )

    def _bound(self, term: _Term, weights: tuple[float, float]) -> float:
        """The largest share any row gets from ``term``: one pass over its list, remembered."""
        if term.bound is not None:
            return term.bound
        key = (term.term, weights)
        bound = self._bounds.get(key)
        if bound is None:
            if len(self._bounds) >= _BOUNDS_CACHED:
                self._bounds.clear()
            bound = self._bounds[key] = float(self._shares(term, weights, slice(None)).max())
        return bound


class BuildBM25:
    """One build's BM25 for the store that holds it: passages and whole documents, from the postings
    that store fetches (:class:`PostingsReader`), by row position; the store maps positions to ids."""

    def __init__(
        self, passages: PostingsReader, documents: PostingsReader, document_positions: Callable[[], dict[str, int]]
    ) -> None:
        self.passages = Postings.open(passages)
        self.documents = Postings.open(documents)
        #: Each document's row in its postings (its place in the corpus order), read on first use.
        self._document_positions = functools.cache(document_positions)

    def top(
        self, terms: Sequence[str], k: int, weights: tuple[float, float], allowed: Callable[[], np.ndarray | None]
    ) -> list[tuple[int, float]]:
        """The ``k`` best passages holding any term, ``(position, score)`` best first; ``allowed`` gives the
        filter's mask by position (``None``: no filter), asked only when some term is held at all."""
        held = self.passages.terms(terms)
        if not any(held):
            return []
        mask = allowed()
        if mask is not None and not mask.any():
            return []
        return self.passages.top(held, k, weights, mask)

    def scores(self, terms: Sequence[str], positions: Sequence[int], weights: tuple[float, float]) -> dict[int, float]:
        """BM25 of the passages at ``positions`` that hold any term."""
        if not terms or not positions:
            return {}
        return self.passages.scores(self.passages.terms(terms), positions, weights)

    def document_scores(
        self, terms: Sequence[str], doc_ids: Sequence[str], weights: tuple[float, float]
    ) -> dict[str, float]:
        """BM25 of these whole documents (title and cleaned text) that hold any term."""
        positions = self._document_positions()
        wanted = {positions[d]: d for d in dict.fromkeys(doc_ids) if d in positions}
        if not terms or not wanted:
            return {}
        found = self.documents.scores(self.documents.terms(terms), list(wanted), weights)
        return {wanted[position]: score for position, score in found.items()}

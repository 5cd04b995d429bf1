"""Passage BM25 from postings the build derives from FTS5's own index: work bounded by the query's terms.

Asking FTS5 for the best ``k`` passages makes it score and sort every passage holding any
query term (``ORDER BY bm25()`` has no shortcut), so the lexical side of a question grew
with the corpus: 12 ms of a 32 ms hybrid answer on SciFact's 22,233 passages
(docs/benchmarks.md, "Speed"). Instead the build writes, for each term FTS5 indexed, the
passages holding it (positions, ascending) with the term's count in the title and text
columns, and each passage's length in tokens; a question reads the lists of its few terms
and scores them with numpy, with FTS5's formula (:func:`qa.index.lexicon.bm25`). When those
lists are long (a large corpus, common words) the best ``k`` are found by MaxScore: the terms
that cannot lift a passage into the best ``k`` on their own are only looked up for the few
passages the others leave in the running (:meth:`Postings.top`).

The lists are read from FTS5's index itself (an ``fts5vocab`` table), and a question's terms
are cut by FTS5 too (:func:`fts5_tokens`): every term and count is FTS5's tokenisation, not
a rewrite of it (:func:`qa.index.lexicon.tokens` stems "pathology" to "pathologi" where FTS5
has "patholog", which moved 17 of SciFact's 1,109 queries). A query term that is not exactly
one token (FTS5 would search it as a phrase) makes the caller fall back to FTS5. Scores are
summed in query-term order from the same doubles FTS5 uses, so they equal its ``-bm25()``
(``tests/index/test_postings.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from qa.index.lexicon import TOKENIZE, bm25, idf

SCHEMA = """
-- Each term FTS5 indexed in passages_fts: the positions of the passages holding it (int32,
-- ascending) and its count in their title and text columns (int32 each).
CREATE TABLE postings (
    term       TEXT PRIMARY KEY,
    positions  BLOB NOT NULL,
    title_tf   BLOB NOT NULL,
    text_tf    BLOB NOT NULL
);
-- One row: passages, their tokens in all, and each passage's tokens (int32, index = position).
CREATE TABLE postings_stats (
    passages   INTEGER NOT NULL,
    tokens     INTEGER NOT NULL,
    lengths    BLOB NOT NULL
);
"""
#: Rows of the vocabulary read per fetch while a build writes the postings.
_FETCH = 65_536
#: Query terms whose FTS5 tokens are remembered: a question's words recur, and each new one
#: costs an insert into a scratch FTS5 table (about 0.05 ms); 65,536 short strings, a few MiB.
_TOKEN_CACHE = 65_536
_scratch = threading.local()
#: When a question's lists hold more postings than this share of the passages, its scores are
#: summed into one array indexed by position (np.bincount: time linear in postings plus passages)
#: instead of over the sorted distinct positions (np.unique: a sort of the postings). Measured on
#: random lists over 1M positions (2026-12-05, loaded machine): 50k postings 1.2 ms sorted
#: against 18 ms by position, 200k 19-30 ms against 12 ms, 1M 51-280 ms against 26 ms.
DENSE_SHARE = 0.2
#: MaxScore pruning (:meth:`Postings.top`) is used in a build of at least PRUNE_PASSAGES passages
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
#: What looking one passage up in one list by binary search costs, in passes over one posting
#: (:meth:`Postings._summed` picks the cheaper way): about log2 of a long list's length.
LOOKUP_COST = 16
#: Terms whose largest share (the best BM25 contribution any passage gets from them) is
#: remembered; each is one pass over its list, paid the first time a question holds it.
_BOUNDS_CACHED = 65_536
#: Relative slack on the pruning test (terms whose bounds sum below the threshold are skipped):
#: the bounds and a passage's score are sums of the same doubles in different orders.
_BOUND_SLACK = 1e-9


@functools.lru_cache(maxsize=_TOKEN_CACHE)
def fts5_tokens(term: str) -> tuple[str, ...]:
    """The tokens FTS5 (``tokenize`` :data:`~qa.index.lexicon.TOKENIZE`) cuts ``term`` into, in order."""
    db: sqlite3.Connection | None = getattr(_scratch, "db", None)
    if db is None:
        db = sqlite3.connect(":memory:")
        db.execute(f"CREATE VIRTUAL TABLE scratch USING fts5(x, tokenize='{TOKENIZE}')")
        db.execute("CREATE VIRTUAL TABLE scratch_vocab USING fts5vocab(scratch, instance)")
        _scratch.db = db
    with db:
        db.execute("INSERT INTO scratch (rowid, x) VALUES (1, ?)", (term,))
        found = tuple(str(t) for (t,) in db.execute("SELECT term FROM scratch_vocab WHERE doc = 1 ORDER BY offset"))
        db.execute("DELETE FROM scratch WHERE rowid = 1")
    return found


def write_postings(db: sqlite3.Connection, passages: int) -> None:
    """Write the postings of ``passages_fts`` (rows 1..``passages``) into ``db``, from FTS5's own index."""
    db.executescript(SCHEMA)
    db.execute("CREATE VIRTUAL TABLE temp.passages_vocab USING fts5vocab(main, passages_fts, instance)")
    lengths = np.zeros(passages + 1, dtype=np.int32)
    writer = db.cursor()
    # One row per token occurrence, ordered by term, then passage, column and offset.
    reader = db.execute("SELECT term, doc, col = 'text' FROM temp.passages_vocab")
    term: str | None = None
    docs: list[int] = []
    in_text: list[int] = []

    def flush() -> None:
        rows = np.asarray(docs, dtype=np.int32)
        starts = np.concatenate(([0], np.flatnonzero(np.diff(rows)) + 1))
        counts = np.diff(np.append(starts, len(rows))).astype(np.int32)
        text_tf = np.add.reduceat(np.asarray(in_text, dtype=np.int32), starts).astype(np.int32)
        positions = rows[starts]
        lengths[positions] += counts
        writer.execute(
            "INSERT INTO postings VALUES (?, ?, ?, ?)",
            (term, positions.tobytes(), (counts - text_tf).tobytes(), text_tf.tobytes()),
        )

    while rows := reader.fetchmany(_FETCH):
        for found, doc, text in rows:
            if found != term:
                if term is not None:
                    flush()
                term, docs, in_text = found, [], []
            docs.append(doc)
            in_text.append(text)
    if term is not None:
        flush()
    db.execute("DROP TABLE temp.passages_vocab")
    db.execute("INSERT INTO postings_stats VALUES (?, ?, ?)", (passages, int(lengths.sum()), lengths.tobytes()))


def _kth(scores: np.ndarray, k: int) -> float:
    """The ``k``-th largest of ``scores`` (at least ``k`` of them)."""
    return float(np.partition(scores, len(scores) - k)[len(scores) - k])


class Reader(Protocol):
    """What the postings are read through: :meth:`qa.index.embedded.queries.BuildDatabase.query`."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


@dataclass(frozen=True)
class _Term:
    """One query term's postings: positions (ascending), title and text counts, and its IDF."""

    term: str
    positions: np.ndarray
    title_tf: np.ndarray
    text_tf: np.ndarray
    idf: float
    #: The largest share of the term's whole list, for a list cut to a filter's passages (whose own
    #: largest share is no bound for the whole list, so it is never remembered as one).
    bound: float | None = None


class Postings:
    """A build's postings, opened over its database; per question only the query terms' lists are read."""

    def __init__(self, reader: Reader, passages: int, tokens_total: int, lengths: np.ndarray) -> None:
        self._reader = reader
        self.passages = passages
        self._average = tokens_total / passages if passages else 1.0
        # float64 as FTS5 computes with, index = position (0 unused).
        self._lengths = lengths.astype(np.float64)
        self._recent = threading.local()
        #: ``(term, weights)``: the term's largest share in any passage (see :meth:`_bound`).
        self._bounds: dict[tuple[str, tuple[float, float]], float] = {}

    @classmethod
    def open(cls, reader: Reader) -> Postings | None:
        """The postings of the build ``reader`` reads, or ``None`` for a build written without them."""
        if not reader.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'postings_stats'"):
            return None
        passages, total, lengths = reader.query("SELECT passages, tokens, lengths FROM postings_stats")[0]
        return cls(reader, int(passages), int(total), np.frombuffer(lengths, dtype=np.int32))

    def terms(self, query_terms: Sequence[str]) -> list[_Term | None] | None:
        """The postings of each distinct query term in order (``None`` for a term no passage holds),
        or ``None`` when a term is not one token (FTS5 would search it as a phrase)."""
        distinct = tuple(dict.fromkeys(t for t in query_terms if t))
        last = getattr(self._recent, "terms", None)
        if last is not None and last[0] == distinct:
            return list(last[1])
        cut = [fts5_tokens(t) for t in distinct]
        if any(len(c) != 1 for c in cut):
            return None
        wanted = list(dict.fromkeys(c[0] for c in cut))
        marks = ",".join("?" * len(wanted))
        rows = self._reader.query(
            f"SELECT term, positions, title_tf, text_tf FROM postings WHERE term IN ({marks})",  # noqa: S608
            wanted,
        )
        lists = {
            str(term): _Term(
                str(term),
                np.frombuffer(p, dtype=np.int32),
                np.frombuffer(a, dtype=np.int32),
                np.frombuffer(b, dtype=np.int32),
                float(idf(self.passages, len(p) // 4)),
            )
            for term, p, a, b in rows
        }
        found = [lists.get(c[0]) for c in cut]
        self._recent.terms = (distinct, tuple(found))
        return found

    def _shares(self, term: _Term, weights: tuple[float, float], where: np.ndarray | slice) -> np.ndarray:
        frequency = weights[0] * term.title_tf[where] + weights[1] * term.text_tf[where]
        return bm25(term.idf, frequency, self._lengths[term.positions[where]], self._average)

    def top(
        self, terms: Sequence[_Term | None], k: int, weights: tuple[float, float], allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` best passages holding any term, ``(position, score)`` best first, ties by position;
        only positions ``allowed`` (a mask indexed by position) when given: each list is cut to them
        first, so a filter shrinks the work as it shrinks the lists (IDF stays the whole build's, as FTS5's)."""
        held = [t for t in terms if t is not None]
        if allowed is not None:
            held = [t for t in (self._within(t, allowed, weights) for t in held) if len(t.positions)]
        if not held or k <= 0:
            return []
        large = self.passages >= PRUNE_PASSAGES and sum(len(t.positions) for t in held) > PRUNE_MIN
        pruned = self._pruned(held, k, weights) if large else None
        if pruned is not None:
            found = pruned
            scores, _ = self._summed(held, found, weights)
        else:
            found, scores = self._every(held, weights)
        if len(found) > k:
            keep = scores >= _kth(scores, k)
            found, scores = found[keep], scores[keep]
        order = np.lexsort((found, -scores))[:k]
        return [(int(p), float(s)) for p, s in zip(found[order], scores[order], strict=True)]

    def scores(
        self, terms: Sequence[_Term | None], positions: Sequence[int], weights: tuple[float, float]
    ) -> dict[int, float]:
        """BM25 of the passages at ``positions`` that hold any term."""
        wanted = np.asarray(positions, dtype=np.int32)
        total, matched = self._summed([t for t in terms if t is not None], wanted, weights)
        return {int(p): float(s) for p, s in zip(wanted[matched], total[matched], strict=True)}

    def _every(self, held: list[_Term], weights: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        """Every passage holding a term (ascending) and the sum of these terms' shares in it: all
        their postings scored."""
        positions = np.concatenate([t.positions for t in held])
        shares = np.concatenate([self._shares(t, weights, slice(None)) for t in held])
        # Each passage's shares summed in query-term order, as FTS5 adds them (bincount adds in array order).
        if len(positions) > DENSE_SHARE * self.passages:
            totals = np.bincount(positions, weights=shares, minlength=self.passages + 1)
            matched = np.zeros(self.passages + 1, dtype=bool)
            matched[positions] = True
            found = np.flatnonzero(matched)
            return found, totals[found]
        found, where = np.unique(positions, return_inverse=True)
        return found, np.bincount(where, weights=shares, minlength=len(found))

    def _pruned(self, held: list[_Term], k: int, weights: tuple[float, float]) -> np.ndarray | None:
        """The few passages (ascending) that can reach the best ``k``, by MaxScore; ``None`` when
        no term can be skipped (then every posting is scored).

        A threshold comes first: the ``k``-th best score among the passages of the shortest lists
        (rare terms, few postings) is a score the final ``k``-th reaches. A term's bound is the
        largest share any passage gets from it. The terms whose bounds sum below the threshold
        cannot lift a passage into the best ``k`` on their own, so only passages holding one of
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
        """The scores of the passages at ``positions`` (ascending, distinct), each term's share added
        in query-term order (the doubles FTS5 adds, in its order), and which of them hold any term.

        Few passages are looked up in each list (a binary search each); many are found by one pass
        over each list through a table from position to slot, which costs the lists' length
        instead of ``passages x terms x log(list)``.
        """
        total = np.zeros(len(positions), dtype=np.float64)
        matched = np.zeros(len(positions), dtype=bool)
        if not len(positions):
            return total, matched
        if len(positions) * len(held) * LOOKUP_COST > sum(len(t.positions) for t in held) + self.passages:
            slots = np.full(self.passages + 1, -1, dtype=np.int32)
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
        """The largest share any passage gets from ``term``: one pass over its list, remembered."""
        if term.bound is not None:
            return term.bound
        key = (term.term, weights)
        bound = self._bounds.get(key)
        if bound is None:
            if len(self._bounds) >= _BOUNDS_CACHED:
                self._bounds.clear()
            bound = self._bounds[key] = float(self._shares(term, weights, slice(None)).max())
        return bound

"""BM25 from the build's postings: the same rows with the same doubles as FTS5's own ``bm25()``.

FTS5's ``bm25()`` is no longer asked at query time; it is the reference the scorer is checked
against here, over the FTS5 tables the build keeps as the postings' source.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from qa.config import Settings
from qa.index.bm25 import Postings, _Term, idf, query_tokens
from qa.index.embedded.store import EmbeddedStore
from qa.index.filters import Filters
from qa.search.terms import query_terms
from tests.helpers import FakeEmbedder, all_passages
from tests.helpers import open_index as _open

WEIGHTS = (1.0, 1.0)


@pytest.fixture
def index(built: Settings, fake_embedder: FakeEmbedder) -> Iterator[EmbeddedStore]:
    """The seeds' build, opened with its postings (closed after the test)."""
    opened = _open(built, fake_embedder)
    yield opened
    opened.close()


def _queries(index: EmbeddedStore) -> list[list[str]]:
    """Query terms from every seed passage's first words, and a few repeated or absent ones."""
    found = [query_terms(" ".join(p.text.split()[:12])) for p in all_passages(index)]
    return [*found, ["nato", "nato", "asian"], ["india", "indian", "zzzqqq"], ["quad"], ["zzzqqq"]]


def _fts5(
    index: EmbeddedStore,
    terms: Sequence[str],
    weights: tuple[float, float] = WEIGHTS,
    filters: Filters | None = None,
    table: str = "passages_fts",
    ties: str = "passage_id",
) -> list[tuple[int, float]]:
    """FTS5's own ranking of ``table``'s rows for ``terms`` (each quoted, OR-ed), best first, ties by
    passage id as the stores break them (``ties="rowid"``: by row, as the scorer's candidates come);
    ``filters`` keeps the passages of the documents they allow (statistics stay the whole table's)."""
    match = " OR ".join('"' + t.replace('"', '""') + '"' for t in dict.fromkeys(terms) if t)
    rows = index._db.query(
        f"SELECT rowid, -bm25({table}, ?, ?) AS score FROM {table} WHERE {table} MATCH ? "  # noqa: S608
        "ORDER BY score DESC, rowid",
        [weights[0], weights[1], match],
    )
    allowed = None if filters is None else set(index._db.allowed(filters))
    found = [(int(r), float(s)) for r, s in rows if allowed is None or r in allowed]
    if table != "passages_fts" or ties == "rowid":
        return found
    ids = index._db.identify([r for r, _ in found])
    return sorted(found, key=lambda row: (-row[1], ids[row[0]][0]))


@pytest.mark.parametrize("lookup_cost", [0, 10**9], ids=["binary-search", "slot-table"])
@pytest.mark.parametrize("prune_min", [0, 10**9], ids=["maxscore", "every-posting"])
@pytest.mark.parametrize("dense_share", [0.0, 1e9], ids=["summed-by-position", "summed-over-sorted-positions"])
def test_top_passages_and_scores_equal_fts5(
    index: EmbeddedStore, dense_share: float, prune_min: int, lookup_cost: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same passages, same order, the same doubles: the lists are FTS5's own and the sum is in its order,
    whichever way a question's scores are summed or looked up, pruned or not."""
    monkeypatch.setattr("qa.index.bm25.DENSE_SHARE", dense_share)
    monkeypatch.setattr("qa.index.bm25.LOOKUP_COST", lookup_cost)
    monkeypatch.setattr("qa.index.bm25.PRUNE_MIN", prune_min)
    monkeypatch.setattr("qa.index.bm25.PRUNE_PASSAGES", prune_min)
    postings = index._bm25.passages
    checked = 0
    for terms in _queries(index):
        if not terms:
            continue
        held = postings.terms(terms)
        expected = _fts5(index, terms, ties="rowid")
        for k in (1, 3, 10, 40):
            # The best k and every row tied with the k-th, by row: the store breaks those ties by id.
            kth = expected[min(k, len(expected)) - 1][1] if expected else 0.0
            assert postings.top(held, k, WEIGHTS) == [(r, s) for r, s in expected if s >= kth]
        everyone = range(1, index.passage_count + 1)
        assert postings.scores(held, everyone, WEIGHTS) == dict(expected)
        checked += 1
    assert checked > 40


def test_other_column_weights_agree_with_fts5(index: EmbeddedStore) -> None:
    for weights in ((2.0, 0.5), (0.0, 1.0), (1.0, 0.0)):
        terms = ["india", "japan", "nato", "minister"]
        expected = _fts5(index, terms, weights)
        mine = index.lexical(terms, len(expected) + 5, weights)
        assert [h.position for h in mine] == [p for p, _ in expected]
        assert [h.score for h in mine] == pytest.approx([s for _, s in expected], rel=1e-12)


def test_filtered_lexical_search_equals_fts5_within_the_allowed_documents(index: EmbeddedStore) -> None:
    doc_ids = tuple(d.doc_id for d in index.documents()[:2])
    filters = Filters(doc_ids=doc_ids)
    terms = ["india", "japan", "nato", "alliance"]
    expected = _fts5(index, terms, filters=filters)
    found = index.lexical(terms, 100, WEIGHTS, filters)
    assert expected
    assert [(h.position, h.score) for h in found] == expected
    assert {h.doc_id for h in found} <= set(doc_ids)
    assert index.lexical(terms, 5, WEIGHTS, Filters(doc_ids=("no-such-document",))) == []


def test_whole_document_scores_equal_fts5_over_the_documents(index: EmbeddedStore) -> None:
    doc_ids = {int(r): d for d, r in index._db.document_positions().items()}
    for terms in _queries(index):
        for weights in (WEIGHTS, (2.0, 0.5)):
            expected = {doc_ids[r]: s for r, s in _fts5(index, terms, weights, table="documents_fts")}
            assert index.document_scores(terms, list(doc_ids.values()), weights) == expected
    some = list(doc_ids.values())[:2]
    assert set(index.document_scores(["india", "nato"], some, WEIGHTS)) <= set(some)
    assert index.document_scores([], some, WEIGHTS) == {}


def test_two_terms_of_one_token_count_it_twice_as_fts5_does(index: EmbeddedStore) -> None:
    """ "countries" and "country" are two phrases to FTS5, both "countri": its share is summed twice."""
    assert query_tokens(["countries", "country", "countries"]) == ["countri", "countri"]
    terms = ["countries", "country", "india"]
    expected = _fts5(index, terms)
    assert [(h.position, h.score) for h in index.lexical(terms, 100, WEIGHTS)] == expected
    once = dict(_fts5(index, ["country", "india"]))
    assert sum(score > once[p] for p, score in expected) >= 3


def test_a_term_of_several_tokens_counts_each_token_as_a_term(index: EmbeddedStore) -> None:
    """FTS5 searches "asian-nato" as the phrase "asian nato"; here it is "asian" and "nato", in its place."""
    assert query_tokens(["quad", "asian-nato", "nato-nato"]) == ["quad", "asian", "nato", "nato"]
    expected = _fts5(index, ["quad", "asian", "nato"])
    assert expected
    assert [(h.position, h.score) for h in index.lexical(["quad", "asian-nato"], 100, WEIGHTS)] == expected
    ids = [p.passage_id for p in all_passages(index)]
    found = index.scores(ids, terms=["quad", "asian-nato"])
    positions = {p.passage_id: p.position for p in all_passages(index)}
    assert {positions[p]: s.lexical for p, s in found.items() if s.lexical is not None} == dict(expected)


def test_terms_no_row_holds_find_nothing(index: EmbeddedStore) -> None:
    assert index.lexical(["zzzqqq"], 10, WEIGHTS) == []
    assert index.lexical([], 10, WEIGHTS) == []
    assert index.lexical(["", "-"], 10, WEIGHTS) == []
    ids = [p.passage_id for p in all_passages(index)][:3]
    assert all(s.lexical is None for s in index.scores(ids, terms=["zzzqqq"]).values())


def _synthetic(rng: np.random.Generator, rows: int, sizes: list[int]) -> tuple[Postings, list[_Term | None]]:
    """Postings over ``rows`` random-length rows and one term per size, held by that many."""
    lengths = rng.integers(5, 200, rows + 1).astype(np.int32)
    postings = Postings(reader=None, rows=rows, tokens_total=int(lengths[1:].sum()), lengths=lengths)  # type: ignore[arg-type]
    terms: list[_Term | None] = []
    for number, size in enumerate(sizes):
        positions = np.sort(rng.choice(np.arange(1, rows + 1), size, replace=False)).astype(np.int32)
        title = rng.integers(0, 2, size).astype(np.int32)
        text = rng.integers(1, 4, size).astype(np.int32)
        terms.append(_Term(f"t{number}", positions, title, text, float(idf(rows, size))))
    return postings, terms


@pytest.mark.parametrize("lookup_cost", [0, 10**9], ids=["binary-search", "slot-table"])
def test_maxscore_pruning_finds_exactly_what_scoring_every_posting_finds(
    monkeypatch: pytest.MonkeyPatch, lookup_cost: int
) -> None:
    """Rare terms and long lists of common ones, with and without a filter, for several k: the
    pruned top k is the same rows with the same doubles, and it did skip the long lists."""
    monkeypatch.setattr("qa.index.bm25.LOOKUP_COST", lookup_cost)
    monkeypatch.setattr("qa.index.bm25.PRUNE_PASSAGES", 0)
    rng = np.random.default_rng(7)
    postings, terms = _synthetic(rng, 60_000, [40, 300, 9_000, 25_000, 30_000])
    mask = rng.random(60_001) < 0.3
    pruned_any = False
    for chosen in ([terms[i] for i in order] for order in ([0, 1, 2, 3, 4], [4, 3, 1], [2, 0, 4], [3, 4])):
        for allowed in (None, mask):
            for k in (1, 10, 100, 1_000):
                monkeypatch.setattr("qa.index.bm25.PRUNE_MIN", 0)
                held = [t if allowed is None else postings._within(t, allowed, WEIGHTS) for t in chosen if t]
                pruned_any |= postings._pruned(held, k, WEIGHTS) is not None
                fast = postings.top(chosen, k, WEIGHTS, allowed)
                monkeypatch.setattr("qa.index.bm25.PRUNE_MIN", 10**9)
                assert fast == postings.top(chosen, k, WEIGHTS, allowed)
    assert pruned_any
    # A bound remembered is the whole list's, even when a filter's cut list asked for it first.
    for term in (t for t in terms if t is not None):
        assert postings._bounds[term.term, WEIGHTS] == postings._shares(term, WEIGHTS, slice(None)).max()

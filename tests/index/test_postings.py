"""The embedded store's postings: passage BM25 equal to FTS5's own ``bm25()``, without asking FTS5."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from qa.config import Settings
from qa.index.embedded.queries import match_expression
from qa.index.embedded.store import EmbeddedStore
from qa.index.filters import Filters
from qa.index.lexicon import idf
from qa.index.postings import Postings, _Term, fts5_tokens
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


def _fts5(index: EmbeddedStore, terms: list[str], filters: Filters | None = None) -> list[tuple[int, float]]:
    match = match_expression(terms)
    assert match is not None
    return index._db.bm25(match, WEIGHTS, filters)


@pytest.mark.parametrize("lookup_cost", [0, 10**9], ids=["binary-search", "slot-table"])
@pytest.mark.parametrize("prune_min", [0, 10**9], ids=["maxscore", "every-posting"])
@pytest.mark.parametrize("dense_share", [0.0, 1e9], ids=["summed-by-position", "summed-over-sorted-positions"])
def test_top_passages_and_scores_equal_fts5(
    index: EmbeddedStore, dense_share: float, prune_min: int, lookup_cost: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same passages, same order, the same doubles: the lists are FTS5's own and the sum is in its order,
    whichever way a question's scores are summed or looked up, pruned or not."""
    monkeypatch.setattr("qa.index.postings.DENSE_SHARE", dense_share)
    monkeypatch.setattr("qa.index.postings.LOOKUP_COST", lookup_cost)
    monkeypatch.setattr("qa.index.postings.PRUNE_MIN", prune_min)
    monkeypatch.setattr("qa.index.postings.PRUNE_PASSAGES", prune_min)
    postings = index._postings
    assert postings is not None
    checked = 0
    for terms in _queries(index):
        if not terms:
            continue
        held = postings.terms(terms)
        assert held is not None
        expected = _fts5(index, terms)
        for k in (1, 3, 10, 40):
            assert postings.top(held, k, WEIGHTS) == expected[:k]
        everyone = range(1, index.passage_count + 1)
        assert postings.scores(held, everyone, WEIGHTS) == dict(expected)
        checked += 1
    assert checked > 40


def test_other_column_weights_agree_with_fts5(index: EmbeddedStore) -> None:
    assert index._postings is not None
    for weights in ((2.0, 0.5), (0.0, 1.0), (1.0, 0.0)):
        terms = ["india", "japan", "nato", "minister"]
        match = match_expression(terms)
        assert match is not None
        expected = index._db.bm25(match, weights)
        mine = index.lexical(terms, len(expected) + 5, weights)
        assert [h.position for h in mine] == [p for p, _ in expected]
        assert [h.score for h in mine] == pytest.approx([s for _, s in expected], rel=1e-12)


def test_filtered_lexical_search_equals_fts5_within_the_allowed_documents(index: EmbeddedStore) -> None:
    doc_ids = tuple(d.doc_id for d in index.documents()[:2])
    filters = Filters(doc_ids=doc_ids)
    terms = ["india", "japan", "nato", "alliance"]
    expected = _fts5(index, terms, filters)
    found = index.lexical(terms, 100, WEIGHTS, filters)
    assert expected
    assert [(h.position, h.score) for h in found] == expected
    assert {h.doc_id for h in found} <= set(doc_ids)
    assert index.lexical(terms, 5, WEIGHTS, Filters(doc_ids=("no-such-document",))) == []


def test_a_term_of_several_tokens_is_left_to_fts5_as_a_phrase(index: EmbeddedStore) -> None:
    """FTS5 searches "asian-nato" as the phrase "asian nato"; the postings hold single tokens only."""
    assert index._postings is not None
    assert index._postings.terms(["asian-nato"]) is None
    expected = _fts5(index, ["asian-nato"])
    assert expected
    assert [(h.position, h.score) for h in index.lexical(["asian-nato"], 100, WEIGHTS)] == expected


def test_a_build_without_postings_is_searched_by_fts5_alike(
    built: Settings, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    terms = ["india", "japan", "nato"]
    index = _open(built, fake_embedder)
    try:
        with_postings = index.lexical(terms, 20, WEIGHTS)
        ids = [h.passage_id for h in all_passages(index)]
        scores = index.scores(ids, terms=terms)
    finally:
        index.close()
    monkeypatch.setattr(Postings, "open", classmethod(lambda cls, reader: None))
    index = _open(built, fake_embedder)
    try:
        assert index._postings is None
        assert index.lexical(terms, 20, WEIGHTS) == with_postings
        assert index.scores(ids, terms=terms) == scores
    finally:
        index.close()


def test_question_terms_are_cut_as_fts5_cuts_them() -> None:
    # Porter as FTS5 implements it ("patholog"), not the original algorithm ("pathologi").
    assert fts5_tokens("pathology") == ("patholog",)
    assert fts5_tokens("Elections") == ("elect",)
    assert fts5_tokens("Ánnwriter") == ("annwrit",)
    assert fts5_tokens("asian-nato") == ("asian", "nato")
    assert fts5_tokens("") == ()


def test_the_build_records_each_passage_length_in_tokens(index: EmbeddedStore) -> None:
    postings = index._postings
    assert postings is not None
    assert postings.passages == index.passage_count
    sizes = index._db.query("SELECT id, sz FROM passages_fts_docsize ORDER BY id")
    # FTS5 stores each row's column sizes as varints; every size here is below 128, one byte each.
    expected = np.array([sum(blob) for _, blob in sizes], dtype=np.float64)
    assert max(max(blob) for _, blob in sizes) < 128
    assert np.array_equal(postings._lengths[1:], expected)


def _synthetic(rng: np.random.Generator, passages: int, sizes: list[int]) -> tuple[Postings, list[_Term | None]]:
    """Postings over ``passages`` random-length passages and one term per size, held by that many."""
    lengths = rng.integers(5, 200, passages + 1).astype(np.int32)
    postings = Postings(reader=None, passages=passages, tokens_total=int(lengths[1:].sum()), lengths=lengths)  # type: ignore[arg-type]
    terms: list[_Term | None] = []
    for number, size in enumerate(sizes):
        positions = np.sort(rng.choice(np.arange(1, passages + 1), size, replace=False)).astype(np.int32)
        title = rng.integers(0, 2, size).astype(np.int32)
        text = rng.integers(1, 4, size).astype(np.int32)
        terms.append(_Term(f"t{number}", positions, title, text, float(idf(passages, size))))
    return postings, terms


@pytest.mark.parametrize("lookup_cost", [0, 10**9], ids=["binary-search", "slot-table"])
def test_maxscore_pruning_finds_exactly_what_scoring_every_posting_finds(
    monkeypatch: pytest.MonkeyPatch, lookup_cost: int
) -> None:
    """Rare terms and long lists of common ones, with and without a filter, for several k: the
    pruned top k is the same passages with the same doubles, and it did skip the long lists."""
    monkeypatch.setattr("qa.index.postings.LOOKUP_COST", lookup_cost)
    monkeypatch.setattr("qa.index.postings.PRUNE_PASSAGES", 0)
    rng = np.random.default_rng(7)
    postings, terms = _synthetic(rng, 60_000, [40, 300, 9_000, 25_000, 30_000])
    mask = rng.random(60_001) < 0.3
    pruned_any = False
    for chosen in ([terms[i] for i in order] for order in ([0, 1, 2, 3, 4], [4, 3, 1], [2, 0, 4], [3, 4])):
        for allowed in (None, mask):
            for k in (1, 10, 100, 1_000):
                monkeypatch.setattr("qa.index.postings.PRUNE_MIN", 0)
                held = [t if allowed is None else postings._within(t, allowed, WEIGHTS) for t in chosen if t]
                pruned_any |= postings._pruned(held, k, WEIGHTS) is not None
                fast = postings.top(chosen, k, WEIGHTS, allowed)
                monkeypatch.setattr("qa.index.postings.PRUNE_MIN", 10**9)
                assert fast == postings.top(chosen, k, WEIGHTS, allowed)
    assert pruned_any
    # A bound remembered is the whole list's, even when a filter's cut list asked for it first.
    for term in (t for t in terms if t is not None):
        assert postings._bounds[term.term, WEIGHTS] == postings._shares(term, WEIGHTS, slice(None)).max()

"""The :class:`~qa.index.protocol.PassageStore` contract, through its verbs only.

Every test takes ``store``, parametrised over the implementations: the embedded FAISS +
SQLite build and the PostgreSQL + pgvector store (a real server, see tests/conftest.py);
another store passes by being added to ``STORES``. Nothing here reaches behind the
protocol: no FAISS id, no SQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.index.embedded.store import EmbeddedStore
from qa.index.filters import Filters
from qa.index.location import build_index, locate
from qa.index.manifest import BuildIdentity
from qa.index.protocol import PassageStore
from qa.ingest.chunking import ChunkerConfig
from tests.helpers import FakeEmbedder, all_passages

CONFIG = ChunkerConfig()
WEIGHTS = (1.0, 1.0)
#: Metadata given to three of the five seed articles, for the author, outlet and date filters.
SIDECARS = {
    "000_f4e7857b5d4e8740": {"outlet": "Outlet A", "published": "2024-10-02", "author": "Ann  Writer"},
    "001_3737cd750cfae74d": {"outlet": "Outlet B", "published": "2024-10-05T08:00:00Z"},
    "002_9c06afbfd3aef34d": {"outlet": "OUTLET a", "published": "2024-11-20", "author": "Bob Ánnwriter"},
}


def _embedded(request: pytest.FixtureRequest, settings: Settings, embedder: FakeEmbedder) -> PassageStore:
    build_index(settings.corpus_dir, settings.index_dir, embedder, CONFIG)
    return EmbeddedStore.open(settings.index_dir, BuildIdentity.of(embedder, CONFIG))


def _postgres(request: pytest.FixtureRequest, settings: Settings, embedder: FakeEmbedder) -> PassageStore:
    location = locate(request.getfixturevalue("pg_url"))
    request.addfinalizer(location.close)
    location.build_corpus(settings.corpus_dir, embedder, CONFIG)
    return location.open(BuildIdentity.of(embedder, CONFIG))


#: How each implementation builds the seeds (with the sidecars below) and opens the build.
STORES: dict[str, Callable[[pytest.FixtureRequest, Settings, FakeEmbedder], PassageStore]] = {
    "embedded": _embedded,
    "postgresql": _postgres,
}


@pytest.fixture(params=list(STORES))
def store(request: pytest.FixtureRequest, settings: Settings, fake_embedder: FakeEmbedder) -> Iterator[PassageStore]:
    for stem, fields in SIDECARS.items():
        (settings.corpus_dir / f"{stem}.meta.json").write_text(json.dumps(fields))
    opened = STORES[request.param](request, settings, fake_embedder)
    yield opened
    opened.close()


def _query(embedder: FakeEmbedder, text: str) -> np.ndarray:
    return embedder.embed_batch([text])[0]


def test_it_is_a_passage_store(store: PassageStore) -> None:
    assert isinstance(store, PassageStore)


def test_build_identity_is_typed_and_counts_agree(store: PassageStore, fake_embedder: FakeEmbedder) -> None:
    manifest = store.manifest
    assert manifest.build_id == store.build_id
    assert manifest.model.name == fake_embedder.name
    assert manifest.model.dimension == fake_embedder.dimension
    assert manifest.passages == store.passage_count == len(all_passages(store))
    assert manifest.documents == len(store.documents()) == 5


def test_dense_finds_a_passage_from_its_own_text_best_first(store: PassageStore, fake_embedder: FakeEmbedder) -> None:
    target = all_passages(store)[10]
    hits = store.dense(_query(fake_embedder, target.text), 5)
    assert (hits[0].passage_id, hits[0].doc_id, hits[0].position) == (target.passage_id, target.doc_id, target.position)
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(store.dense(_query(fake_embedder, target.text), 10_000)) == store.passage_count


def test_lexical_returns_only_passages_holding_a_term_best_first(store: PassageStore) -> None:
    hits = store.lexical(["ishiba"], 50, WEIGHTS)
    assert hits
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    texts = {p.passage_id: p.text for p in store.passages([h.passage_id for h in hits])}
    document_titles = {d.doc_id: d.title for d in store.documents()}
    for h in hits:
        assert h.score > 0
        assert "ishiba" in (texts[h.passage_id] + document_titles[h.doc_id]).casefold()
    assert len(store.lexical(["ishiba"], 2, WEIGHTS)) == 2
    assert store.lexical([], 5, WEIGHTS) == []
    assert store.lexical(["zzzqqqxx"], 5, WEIGHTS) == []


def test_terms_are_data_not_query_syntax(store: PassageStore) -> None:
    for terms in (['"', "OR", "*"], ["title:nato"], ["NEAR(a b)"], ["x'); DROP TABLE passages;--"]):
        store.lexical(terms, 5, WEIGHTS)  # no syntax error reaches the caller
    assert store.passage_count == len(all_passages(store))


def test_scores_agree_with_what_each_retriever_returned(store: PassageStore, fake_embedder: FakeEmbedder) -> None:
    query = _query(fake_embedder, "Asian NATO alliance India Japan")
    dense = store.dense(query, 8)
    lexical = store.lexical(["asian", "nato"], 8, WEIGHTS)
    ids = [h.passage_id for h in dense] + [h.passage_id for h in lexical]
    both = store.scores(ids, query=query, terms=["asian", "nato"], weights=WEIGHTS)
    for h in dense:
        assert both[h.passage_id].cosine == pytest.approx(h.score, abs=1e-6)
    for h in lexical:
        assert both[h.passage_id].lexical == pytest.approx(h.score, rel=1e-9)
    only_cosine = store.scores(ids, query=query)
    assert all(s.lexical is None for s in only_cosine.values())
    assert store.scores(["no-such-passage"], query=query) == {}


def test_a_passage_without_any_term_has_no_lexical_score(store: PassageStore) -> None:
    passage = next(p for p in all_passages(store) if "zebra" not in p.text.casefold())
    assert store.scores([passage.passage_id], terms=["zebra"])[passage.passage_id].lexical is None


@pytest.mark.parametrize(
    ("filters", "allowed"),
    [
        (
            Filters(doc_ids=("001_3737cd750cfae74d", "004_7c5f304601117e1b")),
            {"001_3737cd750cfae74d", "004_7c5f304601117e1b"},
        ),
        (Filters(doc_ids=()), set()),
        (Filters(outlet="outlet   a"), {"000_f4e7857b5d4e8740", "002_9c06afbfd3aef34d"}),
        (Filters(author="ann writer"), {"000_f4e7857b5d4e8740"}),
        (Filters(author="ánn"), {"002_9c06afbfd3aef34d"}),
        (Filters(published_from="2024-10-03"), {"001_3737cd750cfae74d", "002_9c06afbfd3aef34d"}),
        (Filters(published_to="2024-10-05"), {"000_f4e7857b5d4e8740", "001_3737cd750cfae74d"}),
        (Filters(outlet="Outlet A", published_from="2024-11-01"), {"002_9c06afbfd3aef34d"}),
        (Filters(outlet="Nobody"), set()),
    ],
    ids=["doc-ids", "no-doc-ids", "outlet", "author", "author-folded", "from", "to-inclusive", "both", "none"],
)
def test_filters_choose_documents_inside_the_store_and_still_fill_k(
    store: PassageStore, fake_embedder: FakeEmbedder, filters: Filters, allowed: set[str]
) -> None:
    passages = [p for p in all_passages(store) if p.doc_id in allowed]
    k = min(5, len(passages))
    query = _query(fake_embedder, "India Japan alliance")
    dense = store.dense(query, 5, filters)
    lexical = store.lexical(["india", "japan", "alliance"], 5, WEIGHTS, filters)
    assert len(dense) == k
    assert {h.doc_id for h in dense} <= allowed
    assert {h.doc_id for h in lexical} <= allowed
    if passages:
        assert lexical
    # Filtering happens before ranking: the best allowed passages, not the allowed part of the best.
    unfiltered = store.dense(query, store.passage_count)
    assert [h.passage_id for h in dense] == [h.passage_id for h in unfiltered if h.doc_id in allowed][:k]


def test_passages_come_back_in_the_order_asked(store: PassageStore) -> None:
    passages = all_passages(store)
    wanted = [passages[9].passage_id, passages[2].passage_id, "missing", passages[4].passage_id]
    assert [p.passage_id for p in store.passages(wanted)] == [wanted[0], wanted[1], wanted[3]]
    assert store.passages([]) == []


def test_neighbours_are_the_passages_either_side_in_the_document(store: PassageStore) -> None:
    document = store.documents()[0]
    passages = store.document_passages(document.doc_id)
    assert [p.ordinal for p in passages] == list(range(len(passages)))
    assert store.neighbours(passages[0]) == (None, passages[1].passage_id)
    assert store.neighbours(passages[1]) == (passages[0].passage_id, passages[2].passage_id)
    assert store.neighbours(passages[-1])[1] is None


def test_documents_and_their_text(store: PassageStore) -> None:
    documents = store.documents()
    assert [d.source for d in documents] == sorted(d.source for d in documents)
    first = documents[0]
    assert store.document(first.doc_id) == first
    assert store.document("missing") is None
    texts = store.document_text(first.doc_id)
    assert texts is not None
    original, cleaned = texts
    for p in store.document_passages(first.doc_id):
        assert original[p.start : p.end] == p.text
    assert cleaned
    assert first.n_passages == len(store.document_passages(first.doc_id))
    assert store.document_text("missing") is None


def test_sentences_come_with_their_stored_vectors(store: PassageStore, fake_embedder: FakeEmbedder) -> None:
    passages = all_passages(store)[:3]
    found = store.sentences([p.passage_id for p in passages] + ["missing"])
    assert set(found) == {p.passage_id for p in passages}
    for p in passages:
        sentences = found[p.passage_id]
        assert sentences.spans == sorted(sentences.spans)
        assert sentences.vectors.shape == (len(sentences.spans), fake_embedder.dimension)
        start, end = sentences.spans[0]
        expected = _query(fake_embedder, p.text[start:end])
        assert np.allclose(sentences.vectors[0], expected, atol=1e-6)


def test_the_store_is_reachable_only_through_passage_ids(store: PassageStore, fake_embedder: FakeEmbedder) -> None:
    """What the retrievers return names passages the other verbs know, whatever the engine numbers them."""
    for hit in store.dense(_query(fake_embedder, "NATO"), 5) + store.lexical(["nato"], 5, WEIGHTS):
        (record,) = store.passages([hit.passage_id])
        assert (record.doc_id, record.position) == (hit.doc_id, hit.position)


def test_document_scores_are_bm25_of_whole_documents(store: PassageStore) -> None:
    doc_ids = [d.doc_id for d in store.documents()]
    scores = store.document_scores(["ishiba"], doc_ids, WEIGHTS)
    assert scores
    assert all(s > 0 for s in scores.values())
    assert set(store.document_scores(["ishiba"], doc_ids[:1], WEIGHTS)) <= {doc_ids[0]}
    assert store.document_scores([], doc_ids, WEIGHTS) == {}


def test_a_closed_store_answers_no_more(store: PassageStore, tmp_path: Path) -> None:
    store.close()
    with pytest.raises(Exception):  # noqa: B017, PT011 - each engine raises its own closed-connection error
        store.passages(["x"])


@pytest.mark.parametrize("kind", list(STORES))
def test_equal_scores_are_ordered_by_passage_id_never_by_position(
    request: pytest.FixtureRequest, settings: Settings, fake_embedder: FakeEmbedder, kind: str
) -> None:
    """Three copies of one article: every passage of it scores the same three times, and the three come
    in passage-id order although their positions (corpus order by path) are in another."""
    seed = sorted(settings.corpus_dir.glob("*.txt"))[0]
    for folder, stem in (("a", "zz_copy"), ("b", "aa_copy")):
        (settings.corpus_dir / folder).mkdir()
        (settings.corpus_dir / folder / f"{stem}.txt").write_text(seed.read_text(encoding="utf-8"), encoding="utf-8")
    store = STORES[kind](request, settings, fake_embedder)
    try:
        twins = [store.document_passages(doc_id)[0] for doc_id in (seed.stem, "zz_copy", "aa_copy")]
        assert len({p.text for p in twins}) == 1
        assert [p.position for p in twins] == sorted(p.position for p in twins)  # corpus order: seed, a/, b/
        by_id = sorted(p.passage_id for p in twins)
        assert by_id != [p.passage_id for p in twins]  # so the id order is not the position order
        dense = store.dense(_query(fake_embedder, twins[0].text), 3)
        assert [h.passage_id for h in dense] == by_id
        assert len({h.score for h in dense}) == 1
        terms = sorted({w.lower() for w in twins[0].text.split() if w.isalpha() and len(w) > 3})
        lexical = store.lexical(terms, 3, WEIGHTS)
        assert [h.passage_id for h in lexical] == by_id
        assert len({h.score for h in lexical}) == 1
    finally:
        store.close()

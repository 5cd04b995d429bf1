"""Citation formats: GET /passages/{id}/cite as Markdown, text, CSL-JSON (schema-valid) and BibTeX (parsed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files
from typing import Any, get_args

import bibtexparser
import jsonschema
import pytest
from fastapi.testclient import TestClient

from qa.citations.cite import resolve_passage
from qa.citations.formats import (
    CITE_FORMATS,
    MEDIA_TYPES,
    CiteFormat,
    bibtex_escape,
    date_parts,
    parse_authors,
    render_citation,
)
from qa.config import Settings
from qa.errors import InvalidQueryError
from qa.index.embedded.store import EmbeddedStore
from qa.index.location import build_index
from qa.ingest.chunking import ChunkerConfig
from qa.server.app import create_app
from tests.helpers import FakeEmbedder

QUESTION = "Why did India reject an Asian NATO?"
DOC = "002_9c06afbfd3aef34d"
#: Sidecar metadata with every BibTeX special character in it.
META = {
    "title": "India & Japan: 100% {allies}? #Quad_talks ~ $5bn ^ deals \\ “Asian NATO”",
    "author": "Ana de la Cruz and S. Jaishankar",
    "outlet": "The Diplomat & Times",
    "published": "2024-10-03",
    "url": "https://example.org/news/asian-nato?id=5&lang=en#top",
}


def csl_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        files("qa").joinpath("citations/schemas/csl-data.json").read_text(encoding="utf-8")
    )
    return schema


@pytest.fixture
def client(settings: Settings, fake_embedder: FakeEmbedder) -> Iterator[TestClient]:
    """The seeds with sidecar metadata for one article (outlet, date, URL, two authors)."""
    (settings.corpus_dir / f"{DOC}.meta.json").write_text(json.dumps(META), encoding="utf-8")
    build_index(settings.corpus_dir, settings.index_dir, fake_embedder, ChunkerConfig.from_settings(settings))
    with TestClient(create_app(settings, embedder=fake_embedder)) as test_client:
        yield test_client


def passage_of(client: TestClient, doc_id: str) -> dict[str, Any]:
    ids = client.get(f"/documents/{doc_id}").json()["passage_ids"]
    passage: dict[str, Any] = client.get(f"/passages/{ids[1]}").json()
    return passage


def test_markdown_and_text_are_the_citation_strings_of_ask(client: TestClient) -> None:
    result = client.get("/ask", params={"q": QUESTION, "k": 3}).json()["results"][0]
    pid, citation = result["passage_id"], result["citation"]
    markdown = client.get(f"/passages/{pid}/cite", params={"format": "markdown"})
    assert markdown.status_code == 200
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert markdown.text == citation["markdown"]
    text = client.get(f"/passages/{pid}/cite", params={"format": "text"})
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.text == citation["formatted"]
    assert client.get(f"/passages/{pid}/cite").text == citation["markdown"]  # the default


def test_csl_json_validates_against_the_schema_with_every_field(client: TestClient) -> None:
    passage = passage_of(client, DOC)
    response = client.get(f"/passages/{passage['passage_id']}/cite", params={"format": "csl-json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.citationstyles.csl+json"
    items = response.json()
    jsonschema.validate(items, csl_schema(), cls=jsonschema.Draft7Validator)
    [item] = items
    assert item["id"] == passage["passage_id"]
    assert item["type"] == "article-newspaper"
    assert item["title"] == META["title"]
    assert item["author"] == [
        {"family": "Cruz", "given": "Ana", "non-dropping-particle": "de la"},
        {"family": "Jaishankar", "given": "S."},
    ]
    assert item["container-title"] == META["outlet"]
    assert item["URL"] == META["url"]
    assert item["issued"] == {"date-parts": [[2024, 10, 3]]}
    c = passage["citation"]
    assert item["custom"] == {
        "passage_id": passage["passage_id"],
        "doc_id": DOC,
        "source": c["source"],
        "start": c["start"],
        "end": c["end"],
    }
    assert f"characters {c['start']}–{c['end']}" in item["note"]


def test_csl_json_of_an_article_without_metadata_is_valid_and_typed_article(client: TestClient) -> None:
    passage = passage_of(client, "000_f4e7857b5d4e8740")
    items = client.get(f"/passages/{passage['passage_id']}/cite", params={"format": "csl-json"}).json()
    jsonschema.validate(items, csl_schema(), cls=jsonschema.Draft7Validator)
    assert items[0]["type"] == "article"
    assert "container-title" not in items[0]
    assert "issued" not in items[0]


def test_the_schema_rejects_what_it_should() -> None:
    validator = jsonschema.Draft7Validator(csl_schema())
    assert not validator.is_valid([{"id": "x", "type": "newspaper-article"}])  # not a CSL type
    assert not validator.is_valid([{"id": "x", "type": "article", "author": [{"surname": "X"}]}])
    assert not validator.is_valid([{"id": "x", "type": "article", "issued": {"date-parts": [[2024, 1, 2, 3]]}}])
    assert not validator.is_valid([{"id": "x", "type": "article", "journal": "X"}])


def test_bibtex_parses_with_every_field_and_special_characters_escaped(client: TestClient) -> None:
    passage = passage_of(client, DOC)
    pid = passage["passage_id"]
    response = client.get(f"/passages/{pid}/cite", params={"format": "bibtex"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-bibtex; charset=utf-8"
    library = bibtexparser.parse_string(response.text)
    assert not library.failed_blocks
    [entry] = library.entries
    assert entry.entry_type == "article"
    assert entry.key == f"cruz2024-{pid.rsplit(':', 1)[1][:8]}"
    fields = {f.key: f.value for f in entry.fields}
    assert fields["title"] == (
        r"India \& Japan: 100\% \{allies\}? \#Quad\_talks \textasciitilde{} \$5bn \textasciicircum{} deals "
        r"\textbackslash{} “Asian NATO”"
    )
    assert fields["author"] == "de la Cruz, Ana and Jaishankar, S."
    assert fields["journal"] == r"The Diplomat \& Times"
    assert fields["year"] == "2024"
    assert fields["month"] == "oct"
    assert fields["date"] == "2024-10-03"
    assert fields["url"] == META["url"]
    c = passage["citation"]
    note = f"Passage {pid}, characters {c['start']}--{c['end']} of {c['source']}"
    assert fields["note"] == note.replace("_", "\\_")
    # Braces balance in every field, so no field swallows the next.
    for value in fields.values():
        unescaped = value.replace(r"\{", "").replace(r"\}", "")
        assert unescaped.count("{") == unescaped.count("}")


def test_bibtex_key_is_stable_across_rebuilds_and_unique_per_passage(client: TestClient) -> None:
    ids = client.get(f"/documents/{DOC}").json()["passage_ids"]
    keys = [bibtexparser.parse_string(client.get(f"/passages/{i}/cite?format=bibtex").text).entries[0].key for i in ids]
    assert len(set(keys)) == len(keys)
    assert all(k.isascii() for k in keys)


def test_unknown_format_is_422_and_unknown_passage_is_404_in_the_one_shape(client: TestClient) -> None:
    pid = passage_of(client, DOC)["passage_id"]
    bad = client.get(f"/passages/{pid}/cite", params={"format": "ris"})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_request"
    assert "format" in bad.json()["error"]["message"]
    missing = client.get("/passages/nobody:000000000000/cite", params={"format": "bibtex"})
    assert missing.status_code == 404
    assert set(missing.json()) == {"error"}
    assert missing.json()["error"]["code"] == "not_found"


def test_the_formats_are_one_list_each_with_its_media_type() -> None:
    assert get_args(CiteFormat) == CITE_FORMATS
    assert tuple(MEDIA_TYPES) == CITE_FORMATS


def test_render_citation_writes_what_the_cite_route_sends(client: TestClient, settings: Settings) -> None:
    pid = passage_of(client, DOC)["passage_id"]
    index = EmbeddedStore.open(settings.index_dir, expected=None)
    try:
        view = resolve_passage(index, pid)
        for fmt in CITE_FORMATS:
            response = client.get(f"/passages/{pid}/cite", params={"format": fmt})
            assert response.text == render_citation(view, fmt), fmt
        with pytest.raises(InvalidQueryError, match="unknown citation format 'ris': use one of markdown, text"):
            render_citation(view, "ris")
    finally:
        index.close()


@pytest.mark.parametrize(
    ("byline", "names"),
    [
        ("S. Jaishankar", [{"family": "Jaishankar", "given": "S."}]),
        ("Smith, John", [{"family": "Smith", "given": "John"}]),
        ("Reuters", [{"literal": "Reuters"}]),
        (
            "Rajeswari Pillai Rajagopalan & Harsh V. Pant",
            [{"family": "Rajagopalan", "given": "Rajeswari Pillai"}, {"family": "Pant", "given": "Harsh V."}],
        ),
        ("John Smith Jr.", [{"family": "Smith", "given": "John", "suffix": "Jr."}]),
        ("Ludwig van Beethoven", [{"family": "Beethoven", "given": "Ludwig", "non-dropping-particle": "van"}]),
        (None, []),
    ],
)
def test_authors_are_parsed_into_family_and_given(byline: str | None, names: list[dict[str, str]]) -> None:
    assert parse_authors(byline) == names


@pytest.mark.parametrize(
    ("published", "parts"),
    [("2024-10-03", [2024, 10, 3]), ("2024-10", [2024, 10]), ("2024", [2024]), ("2024-10-03T08:00:00Z", [2024, 10, 3])],
)
def test_date_parts(published: str, parts: list[int]) -> None:
    assert date_parts(published) == parts
    assert date_parts("October 2024") is None


def test_bibtex_escape_escapes_each_special_character_once() -> None:
    assert bibtex_escape("a\\b{c}$d&e%f#g_h~i^j") == (
        r"a\textbackslash{}b\{c\}\$d\&e\%f\#g\_h\textasciitilde{}i\textasciicircum{}j"
    )

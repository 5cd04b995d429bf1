"""The web page in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

The app runs under uvicorn on 127.0.0.1 over a fake-embedder build of the seeds. The test
asks a question, sees ranked passages with highlighted sentences, copies a citation and
reads it back, opens the document view and finds the cited passage highlighted and in
the viewport, and checks errors are told in words, keyboard focus and a narrow screen.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import expect

from qa.config import Settings
from qa.index.location import build_index
from qa.ingest.chunking import ChunkerConfig
from qa.server.app import create_app
from tests.helpers import FakeEmbedder, serve_in_thread
from tests.ingest import makers

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
QUESTION = "Why did India reject an Asian NATO?"
#: With the fake embedder, its best passage is also in the wire copy (see ``corroborated_url``).
REPORTED_TWICE = "India no intention of joining Asian NATO proposed by Japan"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium); `make browser` installs it"
)


@pytest.fixture
def base_url(built: Settings, fake_embedder: FakeEmbedder) -> Iterator[str]:
    with serve_in_thread(create_app(built, embedder=fake_embedder)) as url:
        yield url


@pytest.fixture
def corroborated_url(settings: Settings, fake_embedder: FakeEmbedder) -> Iterator[str]:
    """The seeds plus an article that repeats another's opening paragraph, so results carry also_reported_in."""
    opening = (settings.corpus_dir / "002_9c06afbfd3aef34d.txt").read_text(encoding="utf-8").split("\n")[0]
    (settings.corpus_dir / "005_wire_copy.txt").write_text(
        f"Wire Copy On The Asian NATO\n\n{opening}\n", encoding="utf-8"
    )
    build_index(settings.corpus_dir, settings.index_dir, fake_embedder, ChunkerConfig.from_settings(settings))
    with serve_in_thread(create_app(settings, embedder=fake_embedder)) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _page(browser: Any, base_url: str, **options: Any) -> Any:
    context = browser.new_context(base_url=base_url, **options)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.requests = requests
    return page


def test_ask_highlight_copy_and_open_the_cited_passage(browser: Any, corroborated_url: str) -> None:
    base_url = corroborated_url
    page = _page(browser, base_url, viewport={"width": 1000, "height": 700})
    page.goto("/")
    page.fill("#question", REPORTED_TWICE)
    page.press("#question", "Enter")  # Enter asks
    answer = httpx.get(f"{base_url}/ask", params={"q": REPORTED_TWICE, "k": 5}).json()
    top = answer["results"][0]
    results = page.locator("#results .result")
    expect(results).to_have_count(5)
    first = results.first
    expect(first).to_have_attribute("data-passage-id", top["passage_id"])
    assert first.locator("mark.highlight").count() >= 1
    highlight = top["highlights"][0]
    assert first.locator("mark.highlight").first.inner_text() == top["text"][highlight["start"] : highlight["end"]]
    assert top["citation"]["title"] in first.inner_text()
    assert top["citation"]["source"] in first.inner_text()
    # Every corroboration the API returns is listed, linked to its place in its own article.
    corroborations = [o for r in answer["results"] for o in r["also_reported_in"]]
    assert corroborations
    expect(page.locator(".also li")).to_have_count(len(corroborations))
    for other in corroborations:
        expect(page.locator(f'.also a[href$="passage={quote(other["passage_id"], safe="")}"]')).to_have_count(1)

    # Copy the Markdown citation: the clipboard holds exactly the API's citation.markdown.
    markdown_button = first.locator("button.copy[data-format=markdown]")
    markdown_button.click()
    expect(markdown_button).to_have_attribute("data-copied", top["citation"]["markdown"])
    expect(page.locator("#status")).to_have_text("Citation copied.")
    assert page.evaluate("() => navigator.clipboard.readText()") == top["citation"]["markdown"]
    text_button = first.locator("button.copy[data-format=text]")
    text_button.click()
    expect(text_button).to_have_attribute("data-copied", top["citation"]["formatted"])
    assert page.evaluate("() => navigator.clipboard.readText()") == top["citation"]["formatted"]

    # The document view: whole cleaned article, the cited passage highlighted and in view.
    page.locator("#results .result").last.locator("a.open-document").click()
    page.wait_for_selector("#document mark.cited")
    last = answer["results"][-1]
    assert f"#/documents/{last['citation']['doc_id']}?passage=" in page.url
    cited = page.locator("mark.cited")
    assert " ".join(cited.inner_text().split()) == " ".join(last["text"].split())
    assert _in_viewport(page, "mark.cited")
    document = httpx.get(f"{base_url}/documents/{last['citation']['doc_id']}").json()
    assert len(page.locator("#document .document-text").inner_text()) > 0.9 * len(document["cleaned_text"].strip())

    # Nothing was loaded from anywhere but this server.
    assert page.requests
    assert all(url.startswith(base_url) for url in page.requests), page.requests


def _in_viewport(page: Any, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    return bool(box and box["y"] >= 0 and box["y"] < size["height"] and box["height"] > 0)


def test_keyboard_narrow_screen_and_errors_in_words(browser: Any, base_url: str) -> None:
    page = _page(browser, base_url, viewport={"width": 360, "height": 740})
    page.goto("/")
    # Ungrounded questions say so plainly.
    page.fill("#question", "zebra xylophone quantum marmalade")
    page.press("#question", "Enter")
    odd = httpx.get(f"{base_url}/ask", params={"q": "zebra xylophone quantum marmalade"}).json()
    expect(page.locator("#results .result").first).to_have_attribute("data-passage-id", odd["results"][0]["passage_id"])
    expect(page.locator("#not-grounded")).to_have_count(0 if odd["grounded"] else 1)
    if not odd["grounded"]:
        expect(page.locator("#not-grounded")).to_contain_text("No passage clearly answers this")

    page.fill("#question", QUESTION)
    page.press("#question", "Enter")
    top = httpx.get(f"{base_url}/ask", params={"q": QUESTION, "k": 5}).json()["results"][0]
    expect(page.locator("#results .result").first).to_have_attribute("data-passage-id", top["passage_id"])
    # Narrow screen: nothing wider than the viewport.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    # Keyboard: Tab from the Ask button reaches the first result, with a visible focus ring.
    page.focus("#ask-button")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('result')"):
            break
    assert page.evaluate("document.activeElement.classList.contains('result')")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")

    # A question over the limit is refused in words, before and by the server.
    page.fill("#question", "why " * 600)
    page.press("#question", "Enter")
    expect(page.locator("#status.error")).to_have_text("Your question is too long (limit 2,000 characters).")
    # The server's own 422 for the same question is told in the same words (the page's check bypassed).
    told = page.evaluate(
        "async () => { try { await api('/ask?q=' + 'why '.repeat(600)); } catch (e) { return explain(e); } }"
    )
    assert told == "Your question is too long (limit 2,000 characters)."
    page.evaluate("() => { location.hash = '#/documents/000_nope?passage=000_nope:000000000000'; }")
    expect(page.locator("#status.error")).to_contain_text("That article is not in the index any more")


def test_index_not_ready_is_told_in_words(browser: Any, tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    empty = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "no-index", reload_interval=0)
    with serve_in_thread(create_app(empty, embedder=fake_embedder)) as url:
        page = _page(browser, url)
        page.goto("/")
        page.fill("#question", QUESTION)
        page.press("#question", "Enter")
        expect(page.locator("#status.error")).to_contain_text("The index is not ready")


def test_page_security_headers(base_url: str) -> None:
    response = httpx.get(base_url + "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "connect-src 'self'" in csp
    # No external URL anywhere in the page, its script or its style.
    for path in ("/", "/static/app.js", "/static/app.css"):
        text = httpx.get(base_url + path).text
        assert "http://" not in text
        assert "https://" not in text
        assert "//cdn" not in text


def test_a_pdf_passage_shows_its_pages_beside_the_source(
    browser: Any, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    makers.write(settings.corpus_dir, "harbour-report.pdf", makers.report_pdf())
    build_index(settings.corpus_dir, settings.index_dir, fake_embedder, ChunkerConfig.from_settings(settings))
    question = "wreck lifted from the channel now in the maritime museum restored hull"
    with serve_in_thread(create_app(settings, embedder=fake_embedder)) as base_url:
        answer = httpx.get(f"{base_url}/ask", params={"q": question, "k": 5}).json()
        crossing = next(r for r in answer["results"] if r["citation"]["pages"] == ["1", "2"])
        page = _page(browser, base_url, viewport={"width": 1000, "height": 700})
        page.goto("/")
        page.fill("#question", question)
        page.press("#question", "Enter")
        result = page.locator(f'#results .result[data-passage-id="{crossing["passage_id"]}"]')
        expect(result.locator(".meta")).to_contain_text("harbour-report.pdf, characters")
        expect(result.locator(".meta")).to_contain_text("pp. 1\u20132")

"""Take docs/screenshot.png: the web page answering a question about the seeds.

Builds the seeds into a temporary index with the real bundled model, serves it with
uvicorn on 127.0.0.1, and drives Debian's /usr/bin/chromium with Playwright, launched
as in tests/server/test_web.py (no browser download).

    .venv/bin/python scripts/screenshot.py
    .venv/bin/python scripts/screenshot.py --question "Who proposed an Asian NATO?" --out docs/screenshot.png
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Before anything imports huggingface_hub (the same switches as qa.environment.HUGGING_FACE_OFFLINE).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import uvicorn
from playwright.sync_api import expect, sync_playwright

from qa.config import Settings
from qa.embedding.base import SentenceTransformerEmbedder
from qa.index.location import build_index
from qa.ingest.chunking import ChunkerConfig
from qa.server.app import create_app

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# The same launch as tests/server/test_web.py.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on a free 127.0.0.1 port, in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--question", default="Why did India reject an Asian NATO?")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=1300)
    args = parser.parse_args()

    embedder = SentenceTransformerEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(corpus_dir=ROOT / "seeds", index_dir=Path(tmp) / "index", reload_interval=0)
        build_index(settings.corpus_dir, settings.index_dir, embedder, ChunkerConfig.from_settings(settings))
        with serve(create_app(settings, embedder=embedder)) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(base_url=url, viewport={"width": args.width, "height": args.height})
                page.goto("/")
                page.fill("#question", args.question)
                page.press("#question", "Enter")
                expect(page.locator("#results .result").first).to_be_visible()
                page.locator("#question").blur()
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=False)
            finally:
                browser.close()
    embedder.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

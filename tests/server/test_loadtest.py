"""scripts/loadtest.py, short and bounded: 4 clients for 3 s over real HTTP, no request may fail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qa.config import Settings
from qa.server.app import create_app
from tests.helpers import ROOT, FakeEmbedder, serve_in_thread

SCRIPT = ROOT / "scripts" / "loadtest.py"


def loadtest(*args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--json", *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_four_clients_for_three_seconds_get_no_errors(built: Settings, fake_embedder: FakeEmbedder) -> None:
    with serve_in_thread(create_app(built, embedder=fake_embedder)) as base:
        report = loadtest("--url", base, "--clients", "4", "--duration", "3")
    assert report["errors"] == 0
    assert isinstance(report["requests"], int)
    assert report["requests"] > 20
    assert report["clients"] == 4
    assert 0 < report["p50_ms"] <= report["p99_ms"]
    assert report["mean_batch"] is not None


@pytest.mark.model
def test_the_script_starts_qa_serve_with_the_real_model(real_index_dir: Path) -> None:
    report = loadtest("--index", str(real_index_dir), "--clients", "2", "--duration", "2", "--inference-threads", "1")
    assert report["errors"] == 0
    assert report["requests_per_second"] > 0
    assert report["rss_before_mib"] > 100
    assert report["rss_after_mib"] > 100
    assert report["server"] == {"QA_INFERENCE_THREADS": "1"}

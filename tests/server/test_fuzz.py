"""Property-based fuzzing of the API from its own OpenAPI schema (schemathesis).

Every operation gets a bounded, derandomized run of generated requests, valid and
invalid. The app must never answer 5xx, and every response must be documented: its
status is declared for the operation, its content type and headers match, and its
body validates against the declared schema (the error shape included).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python.asgi import ASGIClient, get_client, shutdown_lifespans

from qa.config import Settings
from qa.index.location import build_index
from qa.ingest.chunking import ChunkerConfig
from qa.server.app import create_app
from tests.helpers import SEEDS, FakeEmbedder

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


TOKEN = SecretStr("fuzz-token")
# The schema is read from an app that is never started (no index is needed for that); the
# requests go to an identical app, started over a real build, in ``client``. (Loading the
# schema from a fixture with ``schemathesis.pytest.from_fixture`` fails on pytest 9.)
schema = schemathesis.openapi.from_dict(
    create_app(Settings(index_dir=Path("unused"), admin_token=TOKEN), embedder=FakeEmbedder()).openapi()
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ASGIClient]:
    """The app over a small fake-embedder build, with the admin route switched on, started."""
    root: Path = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(SEEDS, root / "corpus")
    config = Settings(corpus_dir=root / "corpus", index_dir=root / "index", reload_interval=0, admin_token=TOKEN)
    build_index(config.corpus_dir, config.index_dir, FakeEmbedder(), ChunkerConfig(config.max_tokens, 0))
    app = create_app(config, embedder=FakeEmbedder())
    assert app.openapi() == schema.raw_schema
    with get_client(app) as started:
        assert started.get("/readyz").status_code == 200
        yield started
    shutdown_lifespans()  # stops the app's watcher and batcher threads


@schema.parametrize()
@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_to_its_schema_and_never_fails(case: schemathesis.Case, client: ASGIClient) -> None:
    case.call_and_validate(session=client, base_url=client.base_url, checks=CHECKS)

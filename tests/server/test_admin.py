"""POST /admin/reload: absent without a token, 401 without the right one, 409 for a broken build."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from qa.config import Settings
from qa.server.app import create_app
from tests.helpers import FakeEmbedder
from tests.server.test_api import assert_error
from tests.server.test_live import break_into_new_build, rebuild_with_new_fact

TOKEN = "correct horse battery staple"


@pytest.fixture
def admin(built: Settings, fake_embedder: FakeEmbedder) -> Iterator[TestClient]:
    # The watcher is off, so only /admin/reload can switch builds here.
    settings = built.model_copy(update={"admin_token": SecretStr(TOKEN), "reload_interval": 0})
    with TestClient(create_app(settings, embedder=fake_embedder)) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("token", [None, ""])
def test_without_a_configured_token_the_route_does_not_exist(
    built: Settings, fake_embedder: FakeEmbedder, token: str | None
) -> None:
    settings = built.model_copy(update={"admin_token": None if token is None else SecretStr(token)})
    with TestClient(create_app(settings, embedder=fake_embedder)) as test_client:
        assert_error(test_client.post("/admin/reload", headers=bearer("anything")), 404, "not_found")
        assert "/admin/reload" not in test_client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param(bearer("wrong"), id="wrong"),
        pytest.param(bearer(TOKEN + "x"), id="longer"),
        pytest.param(bearer(TOKEN[:-1]), id="prefix"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, id="other-scheme"),
        pytest.param({"Authorization": TOKEN}, id="no-scheme"),
    ],
)
def test_a_missing_or_wrong_token_is_401(admin: TestClient, headers: dict[str, str]) -> None:
    response = admin.post("/admin/reload", headers=headers)
    error = assert_error(response, 401, "unauthorized")
    assert TOKEN not in response.text
    assert "token" in error["message"]
    assert response.headers["www-authenticate"] == "Bearer"


def test_the_right_token_reloads(admin: TestClient, built: Settings) -> None:
    old_id = admin.get("/readyz").json()["build_id"]
    unchanged = admin.post("/admin/reload", headers=bearer(TOKEN))
    assert unchanged.status_code == 200, unchanged.text
    assert unchanged.json() == {"reloaded": False, "build_id": old_id, "previous_build_id": old_id}

    new_id = rebuild_with_new_fact(built)
    assert admin.get("/readyz").json()["build_id"] == old_id  # no watcher: nothing switched yet
    response = admin.post("/admin/reload", headers=bearer(TOKEN))
    assert response.status_code == 200, response.text
    assert response.json() == {"reloaded": True, "build_id": new_id, "previous_build_id": old_id}
    assert admin.get("/readyz").json()["build_id"] == new_id


def test_a_broken_build_is_409_and_the_old_one_keeps_serving(admin: TestClient, built: Settings) -> None:
    old_id = admin.get("/readyz").json()["build_id"]
    break_into_new_build(built.index_dir)
    response = admin.post("/admin/reload", headers=bearer(TOKEN))
    error = assert_error(response, 409, "conflict")
    assert "qa build" in error["message"]
    assert str(built.index_dir) not in response.text
    assert admin.get("/readyz").json()["build_id"] == old_id
    assert admin.get("/ask", params={"q": "India"}).json()["build_id"] == old_id
    assert 'qa_reloads_total{result="failure"} 1.0' in admin.get("/metrics").text


def test_the_route_is_documented_with_its_security_scheme(admin: TestClient) -> None:
    schema = admin.get("/openapi.json").json()
    operation = schema["paths"]["/admin/reload"]["post"]
    assert {"401", "409"} <= set(operation["responses"])
    assert operation["security"]

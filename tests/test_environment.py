"""qa.environment: installed package versions and Hugging Face's offline switches."""

from __future__ import annotations

import os
from importlib.metadata import version

import pytest

from qa.environment import HUGGING_FACE_OFFLINE, hugging_face_offline, package_version


def test_package_version_of_an_installed_package() -> None:
    assert package_version("numpy") == version("numpy")


def test_package_version_of_a_missing_package_is_the_default() -> None:
    assert package_version("qa-no-such-package") == "unknown"
    assert package_version("qa-no-such-package", default="0.0.0") == "0.0.0"


def test_offline_switches_are_set_without_overriding_a_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    hugging_face_offline()

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "0"
    assert set(HUGGING_FACE_OFFLINE) == {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}

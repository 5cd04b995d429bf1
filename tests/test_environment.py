"""qa.environment: installed package versions (the offline switches are tested with the embedder that sets them)."""

from __future__ import annotations

from importlib.metadata import version

from qa.environment import package_version


def test_package_version_of_an_installed_package() -> None:
    assert package_version("numpy") == version("numpy")


def test_package_version_of_a_missing_package_is_the_default() -> None:
    assert package_version("qa-no-such-package") == "unknown"
    assert package_version("qa-no-such-package", default="0.0.0") == "0.0.0"

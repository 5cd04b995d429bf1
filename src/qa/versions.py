"""Installed package versions, as builds and exports record them."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

#: What a version is recorded as when the package is not installed (a source tree, say).
UNKNOWN = "unknown"


def package_version(name: str) -> str:
    """The installed version of distribution ``name``, or :data:`UNKNOWN`."""
    try:
        return version(name)
    except PackageNotFoundError:
        return UNKNOWN

"""What qa reads from or sets in the environment it runs in: package versions, Hugging Face's offline switches."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

#: The variables that keep huggingface_hub and transformers from ever reaching the network:
#: every model qa loads is a local folder.
HUGGING_FACE_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def package_version(name: str, default: str = "unknown") -> str:
    """The installed version of distribution ``name``, or ``default`` when it has no metadata
    (a source tree that was never installed)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return default

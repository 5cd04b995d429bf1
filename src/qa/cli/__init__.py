"""The ``qa`` command: thin commands over the library, and terminal rendering."""

from qa.cli import serving  # noqa: F401 - registers qa serve and qa mcp on main
from qa.cli.commands import main

__all__ = ["main"]

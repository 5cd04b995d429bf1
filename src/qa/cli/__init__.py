"""The ``qa`` command: thin commands over the library, and terminal rendering."""

from qa.cli.commands import main

__all__ = ["main"]

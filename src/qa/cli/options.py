"""The options the ``qa`` commands share; help and defaults come from the settings fields they set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, get_args

import click

from qa.config import Encoder, Settings
from qa.errors import InvalidQueryError
from qa.search.models import MODES
from qa.server.schemas import AskRequest

F = TypeVar("F", bound=Callable[..., Any])
#: Largest --max-tokens accepted: far above any embedding model's window, so only a typo is refused.
MAX_TOKENS_LIMIT = 100_000
#: Largest --overlap: more shared sentences than a 96-token passage holds.
MAX_OVERLAP = 20
#: Longest --reload-interval, in seconds: an hour; 0 turns the watcher off instead.
MAX_RELOAD_INTERVAL = 3600.0

#: Filter options by the name the library's messages use (``published_from must be ...``).
_FILTER_OPTIONS = {
    "published_from": "--published-from",
    "published_to": "--published-to",
    "author": "--author",
    "outlet": "--outlet",
    "doc_id": "--doc",
}


def setting_range(name: str, upper: float | None = None) -> click.IntRange | click.FloatRange:
    """An option's range: the setting's own bounds (``ge``, ``le``), with ``upper`` where it has none above."""
    field = Settings.model_fields[name]
    low = next((m.ge for m in field.metadata if hasattr(m, "ge")), None)
    high = next((m.le for m in field.metadata if hasattr(m, "le")), upper)
    if field.annotation is float:
        return click.FloatRange(low, high)
    return click.IntRange(low, None if high is None else int(high))


def setting_help(name: str, text: str | None = None) -> str:
    """An option's help: the setting's own description (or ``text``), its variable and its default."""
    field = Settings.model_fields[name]
    shown = "" if field.default is None else f"; default: {field.default}"
    return f"{text or field.description} [env: QA_{name.upper()}{shown}]"


def request_help(name: str) -> str:
    """An option's help from the field of the API's request model it matches."""
    return str(AskRequest.model_fields[name].description)


def index_option(fn: F) -> F:
    fn = click.option("--store", metavar="URL", help=setting_help("store"))(fn)
    return click.option(
        "--index", "index_dir", type=click.Path(file_okay=False, path_type=Path), help=setting_help("index_dir")
    )(fn)


def model_options(fn: F) -> F:
    fn = click.option("--model", help=setting_help("model"))(fn)
    fn = click.option(
        "--max-tokens", type=setting_range("max_tokens", MAX_TOKENS_LIMIT), help=setting_help("max_tokens")
    )(fn)
    fn = click.option("--query-encoder", type=click.Choice(get_args(Encoder)), help=setting_help("query_encoder"))(fn)
    fn = click.option("--passage-encoder", type=click.Choice(get_args(Encoder)), help=setting_help("passage_encoder"))(
        fn
    )
    return click.option(
        "--overlap", "overlap_sentences", type=click.IntRange(0, MAX_OVERLAP), help=setting_help("overlap_sentences")
    )(fn)


def filter_options(fn: F) -> F:
    fn = click.option("--published-to", metavar="DATE", help=request_help("published_to"))(fn)
    fn = click.option("--published-from", metavar="DATE", help=request_help("published_from"))(fn)
    fn = click.option("--outlet", help=request_help("outlet"))(fn)
    fn = click.option("--author", help=request_help("author"))(fn)
    return click.option("--doc", "doc_ids", multiple=True, metavar="DOC_ID", help=request_help("doc_id"))(fn)


def mode_option(fn: F) -> F:
    return click.option(
        "--mode", type=click.Choice(MODES), default="hybrid", show_default=True, help=request_help("mode")
    )(fn)


def option_of(exc: InvalidQueryError) -> str:
    """The option a library message is about (it starts with the field's name), else the question."""
    return next((option for name, option in _FILTER_OPTIONS.items() if str(exc).startswith(name)), "QUESTION")

"""Progress bars and logging. Both go to stderr, so that stdout carries only results."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

LOGGER_NAME = "matforge"
_state = {"quiet": os.environ.get("MATFORGE_QUIET", "") not in ("", "0")}


def stderr_console() -> Console:
    return Console(stderr=True)


def set_quiet(quiet: bool) -> None:
    """Silence progress bars (and info logging, via `configure_logging`)."""
    _state["quiet"] = quiet


def is_quiet() -> bool:
    return _state["quiet"]


def configure_logging(verbosity: int = 0, *, quiet: bool = False) -> None:
    """Log to stderr: warnings when quiet, info by default, debug with verbosity >= 1."""
    set_quiet(quiet)
    level = logging.WARNING if quiet else (logging.DEBUG if verbosity >= 1 else logging.INFO)
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    if not any(isinstance(h, RichHandler) for h in logger.handlers):
        handler = RichHandler(console=stderr_console(), show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.propagate = False


def get_logger(name: str) -> logging.Logger:
    """A child of the 'matforge' logger, e.g. get_logger(__name__)."""
    if not name.startswith(LOGGER_NAME):
        name = f"{LOGGER_NAME}.{name}"
    return logging.getLogger(name)


def track(
    iterable: Iterable[T], *, description: str = "working", total: int | None = None
) -> Iterator[T]:
    """Iterate with a rich progress bar on stderr, unless matforge is quiet."""
    if is_quiet():
        yield from iterable
        return
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=stderr_console(), transient=False) as progress:
        task = progress.add_task(description, total=total)
        for item in iterable:
            yield item
            progress.advance(task)

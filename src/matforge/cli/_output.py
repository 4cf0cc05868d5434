"""Rendering shared by the commands: tables for people, one JSON object for scripts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from matforge.core.rundir import dumps_json

ConfigArgument = Annotated[Path, typer.Argument(help="YAML settings (see examples/).")]
OverridesOption = Annotated[
    list[str] | None, typer.Option("--set", help="Override a setting: key=value.")
]
JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print exactly one JSON object on stdout instead of tables.")
]


def stdout_console() -> Console:
    return Console(soft_wrap=False)


def print_json(value: Any) -> None:
    """Write one JSON object (strict: no NaN) to stdout."""
    sys.stdout.write(dumps_json(value) + "\n")
    sys.stdout.flush()


def human_size(n_bytes: int) -> str:
    size = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")

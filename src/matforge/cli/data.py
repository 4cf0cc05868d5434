"""`matforge data ...`: the bundled data sets, their provenance and their files."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from matforge.cli._output import JsonFlag, human_size, print_json, stdout_console
from matforge.data import Dataset, get_dataset, list_datasets

app = typer.Typer(
    help="Bundled data sets: list them, show provenance, print file paths.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="Data set name, as `matforge data list` shows.")]


def _summary(ds: Dataset) -> dict[str, Any]:
    return {
        "name": ds.name,
        "kind": ds.kind,
        "title": ds.title,
        "size_bytes": ds.size_bytes,
        "license": ds.license,
    }


@app.command("list")
def list_command(json_output: JsonFlag = False) -> None:
    """List the bundled data sets."""
    datasets = list_datasets()
    if json_output:
        print_json({"datasets": [_summary(ds) for ds in datasets]})
        return
    table = Table(
        title="Bundled data sets (details: matforge data show NAME)", title_justify="left"
    )
    for column in ("name", "kind", "what it is", "size", "license"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for ds in datasets:
        table.add_row(ds.name, ds.kind, ds.title, human_size(ds.size_bytes), ds.license)
    stdout_console().print(table)


@app.command("show")
def show_command(name: NameArg, json_output: JsonFlag = False) -> None:
    """Show what a data set is, where it comes from, its license and how to cite it."""
    ds = get_dataset(name)
    files = [
        {"file": f, "path": str(ds.path(f)), "size_bytes": ds.path(f).stat().st_size}
        for f in ds.files
    ]
    detail = ds.model_dump() | {
        "size_bytes": ds.size_bytes,
        "files": files,
        "license_files": [str(ds.path(f)) for f in ds.license_files],
    }
    if json_output:
        print_json(detail)
        return
    table = Table(show_header=False, title=f"{ds.name}: {ds.title}", title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("kind", ds.kind)
    table.add_row("what it is", ds.description)
    if ds.elements:
        table.add_row("elements", ", ".join(ds.elements))
    if ds.phases:
        table.add_row("phases", ", ".join(ds.phases))
    for f in files:
        table.add_row("file", f"{f['path']} ({human_size(f['size_bytes'])})")
    table.add_row("source", ds.source)
    table.add_row("license", f"{ds.license} (text: {', '.join(detail['license_files'])})")
    table.add_row("cite as", ds.citation + (f", doi:{ds.doi}" if ds.doi else ""))
    stdout_console().print(table)


@app.command("path")
def path_command(name: NameArg) -> None:
    """Print the absolute path of each file of a data set, one per line (for scripts)."""
    for path in get_dataset(name).paths():
        typer.echo(str(path))

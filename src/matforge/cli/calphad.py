"""`matforge calphad ...`: CALPHAD databases (more commands arrive with the solver)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from matforge.cli._output import JsonFlag, print_json, stdout_console

app = typer.Typer(
    help="CALPHAD databases and (soon) equilibrium calculations.", no_args_is_help=True
)


@app.command("subset")
def subset_command(
    database: Annotated[str, typer.Argument(help="TDB file, or a bundled TDB data set name.")],
    elements: Annotated[str, typer.Option(help="Comma-separated elements, e.g. CO,CR,FE.")],
    out: Annotated[Path, typer.Option(help="TDB file to write (never overwritten).")],
    json_output: JsonFlag = False,
) -> None:
    """Write the part of a TDB database that a system of ELEMENTS needs, for fast loading."""
    from matforge.calphad.database import resolve_database_path
    from matforge.calphad.subset import leading_comments, subset_database, write_database

    names = [e.strip().upper() for e in elements.split(",") if e.strip()]
    subset = subset_database(database, names)
    source = resolve_database_path(database)
    header = (
        f"Subset of {source.name} for {'-'.join(names)}, written by 'matforge calphad "
        f"subset'.\nThe header of {source.name} follows.\n\n{leading_comments(source)}"
    )
    write_database(subset, out, header=header)
    summary = {
        "database": str(database),
        "elements": names,
        "out": str(out),
        "phases": sorted(subset.phases),
        "parameters": len(subset._parameters),
        "functions": len(subset.symbols),
        "size_bytes": out.stat().st_size,
    }
    if json_output:
        print_json(summary)
        return
    stdout_console().print(
        f"wrote {out} ({summary['size_bytes']} bytes): {len(summary['phases'])} phases, "
        f"{summary['parameters']} parameters, {summary['functions']} functions"
    )

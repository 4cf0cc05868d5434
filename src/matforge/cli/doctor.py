"""`matforge doctor`: versions and which parts of matforge are usable here."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from matforge.cli._output import JsonFlag, print_json, stdout_console
from matforge.core.environment import environment_report

_STATUS_STYLE = {"usable": "green", "partial": "cyan", "needs extra": "yellow", "planned": "dim"}


def doctor(json_output: JsonFlag = False) -> None:
    """Versions of matforge, Python, torch, ASE and each extra; which parts are usable."""
    report = environment_report()
    missing_core = [p for p, v in report["core_packages"].items() if v is None]
    if json_output:
        print_json(report)
    else:
        _render(report)
    if missing_core:
        raise typer.Exit(1)


def _render(report: dict) -> None:
    console = stdout_console()
    torch = report["torch"]
    cuda = "CUDA " + str(torch["cuda_version"]) if torch.get("cuda_available") else "CPU only"
    console.print(
        f"[bold]matforge {report['matforge']}[/]  Python {report['python']}  "
        f"torch {torch['version']} ({cuda}, {torch.get('threads')} threads)\n{report['platform']}"
    )

    core = Table(title="Core packages", title_justify="left")
    core.add_column("package")
    core.add_column("version")
    for name, version in report["core_packages"].items():
        core.add_row(name, version or "[red]missing[/]")
    console.print(core)

    extras = Table(title="Optional extras", title_justify="left")
    extras.add_column("extra")
    extras.add_column("installed")
    extras.add_column("packages")
    for row in report["extras"]:
        packages = ", ".join(
            f"{p} {v}" if v else f"[red]{p} missing[/]" for p, v in row["packages"].items()
        )
        extras.add_row(row["extra"], "[green]yes[/]" if row["installed"] else "no", packages)
    console.print(extras)

    parts = Table(title="Parts", title_justify="left")
    parts.add_column("part")
    parts.add_column("status")
    parts.add_column("what it does")
    parts.add_column("checked on this machine")
    parts.add_column("to enable")
    for row in report["parts"]:
        style = _STATUS_STYLE[row["status"]]
        title = row["title"] + (f" [dim](not yet: {row['missing']})[/]" if row["missing"] else "")
        parts.add_row(
            row["part"],
            f"[{style}]{row['status']}[/]",
            title,
            escape(row["check"]),
            escape(row["install_hint"]),
        )
    console.print(parts)

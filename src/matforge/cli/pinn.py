"""`matforge pinn ...`: physics-informed neural networks for inverse problems."""

from __future__ import annotations

import typer

from matforge.cli._output import (
    ConfigArgument,
    JsonFlag,
    OverridesOption,
    print_json,
    stdout_console,
)

app = typer.Typer(
    help="Physics-informed neural networks: identify layer moduli and interfaces.",
    no_args_is_help=True,
)


@app.command("identify")
def identify_command(
    config_path: ConfigArgument,
    override: OverridesOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Identify the layers of a bar or plate from displacements; write parameters with
    uncertainty, loss curves and the modulus profile."""
    from matforge.core.config import load_config
    from matforge.pinn.job import PinnConfig, identify
    from matforge.pinn.report import write_identify_run

    config = load_config(config_path, PinnConfig, override or [])
    result = identify(config)
    run, metrics = write_identify_run(result)
    metrics["run"] = str(run.path)
    if json_output:
        print_json(metrics)
        return
    from rich.table import Table

    console = stdout_console()
    console.print(
        f"{config.problem}, {config.layers} layers, {metrics['observations']} observations, "
        f"{metrics['members']} ensemble members, {metrics['seconds']:.1f} s"
    )
    rows = metrics["parameters"]
    table = Table("", "PINN", "std")
    if "truth" in rows[0]:
        table.add_column("truth")
        table.add_column("err %")
    if "closed_form" in rows[0]:
        table.add_column("NLS")
        table.add_column("std")
        table.add_column("err %" if "truth" in rows[0] else "")
    for row in rows:
        cells = [row["parameter"], f"{row['mean']:.4g}", f"{row['std']:.2g}"]
        if "truth" in row:
            cells += [f"{row['truth']:.4g}", f"{row['error_pct']:+.2f}"]
        if "closed_form" in row:
            cells += [f"{row['closed_form']:.4g}", f"{row['closed_form_std']:.2g}"]
            cells.append(f"{row['closed_form_error_pct']:+.2f}" if "truth" in row else "")
        table.add_row(*cells)
    console.print(table)
    notes = "PINN: ensemble mean and std (bootstrap members)"
    if "closed_form" in rows[0]:
        notes += "; NLS: exact closed-form least-squares fit, Laplace std"
    if "truth" in rows[0]:
        notes += "; interface errors in % of the length / thickness"
    console.print(notes)
    console.print(f"wrote {run.path}")

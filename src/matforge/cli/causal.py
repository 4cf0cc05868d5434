"""`matforge causal ...`: structural causal models, interventions and counterfactuals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from matforge.cli._output import (
    ConfigArgument,
    JsonFlag,
    OverridesOption,
    print_json,
    stdout_console,
)

app = typer.Typer(
    help="Causal inference: fit a structural causal model, query do-interventions, "
    "counterfactuals for a unit.",
    no_args_is_help=True,
)

RunArgument = Annotated[Path, typer.Argument(help="A run directory written by 'causal fit'.")]


@app.command("fit")
def fit_command(
    config_path: ConfigArgument,
    data_path: Annotated[Path, typer.Argument(help="CSV file with one column per graph node.")],
    override: OverridesOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Fit each node's mechanism; write the model, graph.png and (with an effect) curve.png."""
    from matforge.causal.job import CausalConfig, fit
    from matforge.core.config import load_config

    config = load_config(config_path, CausalConfig, override or [])
    run, metrics = fit(config, data_path)
    metrics["run"] = str(run.path)
    if json_output:
        print_json(metrics)
        return
    from rich.table import Table

    console = stdout_console()
    table = Table("node", "mechanism", "parents", "R^2", "residual std")
    for node, entry in metrics["nodes"].items():
        table.add_row(
            node,
            entry["mechanism"],
            ", ".join(entry["parents"]) or "-",
            f"{entry['r2']:.3f}" if "r2" in entry else "-",
            f"{entry['residual_std']:.4g}" if "residual_std" in entry else "-",
        )
    console.print(f"fitted {metrics['rows']} rows")
    console.print(table)
    effect = metrics.get("effect")
    if effect:
        backdoor = effect["backdoor_set"]
        console.print(
            f"effect of {effect['treatment']} on {effect['outcome']}: backdoor adjustment set "
            f"{backdoor if backdoor is not None else 'none among the observed variables'}; "
            f"front-door sets {effect['frontdoor_sets'] or 'none'}"
        )
        curves = Table(effect["treatment"], "E[Y | X] (regression)", "E[Y | do(X)] (SCM)")
        if "adjusted" in effect:
            curves.add_column("backdoor adjustment")
        step = max(1, len(effect["grid"]) // 7)
        for i in range(0, len(effect["grid"]), step):
            row = [f"{effect['grid'][i]:.4g}", f"{effect['observational'][i]:.4g}"]
            row.append(f"{effect['interventional'][i]:.4g}")
            if "adjusted" in effect:
                row.append(f"{effect['adjusted'][i]:.4g}")
            curves.add_row(*row)
        console.print(curves)
    console.print(f"wrote {run.path}")


@app.command("query")
def query_command(
    run: RunArgument,
    do: Annotated[
        list[str],
        typer.Option("--do", help="Intervention NODE=VALUE, NODE+=DELTA or NODE*=FACTOR."),
    ],
    samples: Annotated[
        int | None, typer.Option("--samples", help="Monte-Carlo draws (default: the run's).")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Interventional means of every node beside the observational ones."""
    from matforge.causal.job import query

    result = query(run, do, samples=samples)
    if json_output:
        print_json(result)
        return
    from rich.table import Table

    table = Table(
        "node", "observational mean", f"mean under do({', '.join(result['interventions'])})", "+-"
    )
    for row in result["nodes"]:
        error = "exact" if row["exact"] else f"{row['standard_error']:.2g}"
        table.add_row(
            row["node"],
            f"{row['observational_mean']:.5g}",
            f"{row['interventional_mean']:.5g}",
            error,
        )
    stdout_console().print(table)


@app.command("counterfactual")
def counterfactual_command(
    run: RunArgument,
    unit: Annotated[int, typer.Option("--unit", help="Row of the fitted data (0-based).")],
    set_: Annotated[
        list[str],
        typer.Option("--set", help="Intervention NODE=VALUE, NODE+=DELTA or NODE*=FACTOR."),
    ],
    json_output: JsonFlag = False,
) -> None:
    """What a unit's values would have been under the interventions (abduction, action,
    prediction)."""
    from matforge.causal.job import counterfactual

    result = counterfactual(run, unit, set_)
    if json_output:
        print_json(result)
        return
    from rich.table import Table

    table = Table("node", "factual", f"counterfactual ({', '.join(result['interventions'])})")
    for row in result["nodes"]:
        table.add_row(row["node"], f"{row['factual']:.5g}", f"{row['counterfactual']:.5g}")
    stdout_console().print(f"unit {result['unit']}")
    stdout_console().print(table)

"""`matforge plan ...`: synthesis planning by reinforcement learning."""

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
    help="Synthesis planning: a REINFORCE planner of processing routes, scored against "
    "the exact optimum.",
    no_args_is_help=True,
)


@app.command("train")
def train_command(
    config_path: ConfigArgument,
    override: OverridesOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Train the goal-conditioned planner; score it, the optimum and random policies."""
    from matforge.core.config import load_config
    from matforge.synthesis.job import PlanConfig, train, write_train_run

    config = load_config(config_path, PlanConfig, override or [])
    run, metrics = write_train_run(train(config))
    metrics["run"] = str(run.path)
    if json_output:
        print_json(metrics)
        return
    from rich.table import Table

    console = stdout_console()
    console.print(
        f"REINFORCE: {metrics['environment_steps']:,} environment steps in "
        f"{metrics['train_s']:.1f} s"
    )
    table = Table("targets", "policy", "mean return", "+-", "hit rate")
    for split in ("training", "held_out"):
        for name in ("reinforce", "optimal", "random"):
            if split in metrics:
                score = metrics[split][name]
                table.add_row(
                    split,
                    name,
                    f"{score['mean_return']:.3f}",
                    f"{score['standard_error']:.3f}",
                    f"{score['hit_rate']:.0%}",
                )
    console.print(table)
    for split in ("training", "held_out"):
        if split in metrics:
            console.print(
                f"{split}: {metrics[split]['gap_to_optimal_pct']:.1f}% of the "
                "random-to-optimal gap left"
            )
    console.print(f"wrote {run.path}")


@app.command("show")
def show_command(
    run: Annotated[Path, typer.Argument(help="A run directory written by 'plan train'.")],
    target: Annotated[float, typer.Option("--target", help="Target yield strength, MPa.")],
    start: Annotated[
        str | None,
        typer.Option(
            "--start", help="grain_um,dislocations_m2,fraction,radius_nm (default: O temper)."
        ),
    ] = None,
    samples: Annotated[int, typer.Option("--samples", help="Noise draws to replay.")] = 200,
    json_output: JsonFlag = False,
) -> None:
    """The route the planner chooses, with its spread over process noise."""
    from matforge.synthesis.job import show

    result = show(run, target, start, samples)
    if json_output:
        print_json(result)
        return
    from rich.table import Table

    console = stdout_console()
    table = Table(
        "step", "operation", "grain um", "rho m^-2", "f", "r nm", "yield MPa", "ductility", "cost"
    )
    for row in result["route"]:
        table.add_row(
            str(row["step"]),
            row["operation"],
            f"{row['grain_um']:.1f}",
            f"{row['dislocations_m2']:.2e}",
            f"{row['precipitate_fraction']:.3f}",
            f"{row['radius_nm']:.1f}",
            f"{row['yield_strength_MPa']:.0f} +- {row['yield_strength_MPa_std']:.0f}",
            f"{row['ductility']:.3f}",
            f"{row['cost']:.3f}",
        )
    console.print(table)
    console.print(
        f"target {target:g} MPa: final {result['final_strength_MPa']:.0f} +- "
        f"{result['final_strength_std']:.0f} MPa, hit rate {result['hit_rate']:.0%}, mean return "
        f"{result['mean_return']:.3f} ({result['route_share']:.0%} of noise draws took this route)"
    )

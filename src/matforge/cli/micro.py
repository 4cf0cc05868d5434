"""`matforge micro ...`: generative microstructures with an exact volume fraction."""

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
    help="Generative microstructures: train, generate at an exact fraction, inverse design.",
    no_args_is_help=True,
)

RunArgument = Annotated[Path, typer.Argument(help="A run directory written by 'micro train'.")]
PhiOption = Annotated[float, typer.Option("--phi", help="Volume fraction of phase 1, in (0, 1).")]
LengthOption = Annotated[
    float | None,
    typer.Option("--length", help="Length-scale condition in voxels (default: training median)."),
]


@app.command("train")
def train_command(
    config_path: ConfigArgument,
    override: OverridesOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Train a conditional VAE or WGAN-GP; write the model, sample grids, S2 plots."""
    from matforge.core.config import load_config
    from matforge.microstructure.job import MicroConfig, train, write_train_run

    config = load_config(config_path, MicroConfig, override or [])
    run, metrics = write_train_run(train(config))
    metrics["run"] = str(run.path)
    if json_output:
        print_json(metrics)
        return
    from rich.table import Table

    console = stdout_console()
    console.print(
        f"{metrics['kind']} ({metrics['constraint']}), {metrics['training_samples']} training "
        f"fields, {metrics['epochs']} epochs, {metrics['train_s']:.1f} s"
    )
    table = Table(
        "phi", "S2 rel. error", "covariance rel. error", "|mean - phi| max", "grey voxels"
    )
    for row in metrics["per_fraction"]:
        table.add_row(
            f"{row['phi']:g}",
            f"{row['s2_rel_error']:.2%}",
            f"{row['covariance_rel_error']:.2%}",
            f"{row['fraction_violation_max']:.1e}",
            f"{row['grey_fraction']:.1%}",
        )
    console.print(table)
    console.print(f"wrote {run.path}")


@app.command("generate")
def generate_command(
    run: RunArgument,
    phi: PhiOption,
    n: Annotated[int, typer.Option("-n", help="Number of samples.")] = 16,
    length: LengthOption = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    json_output: JsonFlag = False,
) -> None:
    """Sample microstructures at an exact volume fraction (samples.npy, samples.png)."""
    from matforge.microstructure.job import generate

    folder, metrics = generate(run, phi, n, length=length, seed=seed)
    metrics["folder"] = str(folder.path)
    if json_output:
        print_json(metrics)
        return
    console = stdout_console()
    console.print(
        f"{n} samples at phi={phi:g} (length {metrics['length']:.2f} voxels): largest "
        f"|mean - phi| = {metrics['fraction_violation_max']:.1e}, voxels in "
        f"[{metrics['voxel_min']:.3g}, {metrics['voxel_max']:.3g}]"
    )
    console.print(f"wrote {folder.path}")


@app.command("design")
def design_command(
    run: RunArgument,
    phi: PhiOption,
    target: Annotated[
        float, typer.Option("--target-conductivity", help="Effective conductivity to reach.")
    ],
    length: LengthOption = None,
    starts: Annotated[int, typer.Option("--starts", help="Latent starts run as one batch.")] = 8,
    steps: Annotated[int, typer.Option("--steps", help="Adam steps on the latent field.")] = 150,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    json_output: JsonFlag = False,
) -> None:
    """Find a microstructure at exactly phi with a target effective conductivity."""
    from matforge.microstructure.design import DesignSettings
    from matforge.microstructure.job import design

    settings = DesignSettings(starts=starts, steps=steps, seed=seed)
    folder, metrics = design(run, phi, target, length=length, settings=settings)
    metrics["folder"] = str(folder.path)
    if json_output:
        print_json(metrics)
        return
    console = stdout_console()
    console.print(
        f"k_eff = {metrics['conductivity']:.5g} for target {target:g} "
        f"({metrics['relative_error']:.2%} off) at phi = {phi:g} "
        f"(|mean - phi| = {metrics['fraction_error']:.1e}), {metrics['steps']} steps"
    )
    if not metrics["solver_converged"]:
        console.print("[yellow]warning:[/] some homogenization solves did not converge")
    console.print(f"wrote {folder.path}")

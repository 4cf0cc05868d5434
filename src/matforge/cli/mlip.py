"""`matforge mlip ...`: fit interatomic potentials, evaluate them, run MD with them."""

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
    help="Machine-learned interatomic potentials: fit, evaluate, molecular dynamics.",
    no_args_is_help=True,
)


@app.command("fit")
def fit_command(
    config_path: ConfigArgument,
    override: OverridesOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Fit a SNAP, GAP or NEP potential on energies, forces and stresses; write model, errors,
    plots."""
    from matforge.core.config import load_config
    from matforge.mlip.job import MlipFitConfig, run_fit
    from matforge.mlip.report import write_fit_run

    config = load_config(config_path, MlipFitConfig, override or [])
    result = run_fit(config)
    run, metrics = write_fit_run(result)
    metrics["run"] = str(run.path)
    if json_output:
        print_json(metrics)
        return
    console = stdout_console()
    table = result.errors[result.errors.weighting == "unweighted"]
    if config.model == "nep":
        console.print(
            f"trained a NEP ({metrics['parameters']} parameters, {metrics['method']}) on "
            f"{metrics['train_structures']} structures ({metrics['test_structures']} held out) "
            f"in {metrics['fit_seconds']:.1f} s; nep.txt for GPUMD is in the run directory"
        )
    elif config.model == "gap":
        console.print(
            f"fitted a GAP with {metrics['sparse_points']} sparse points on "
            f"{metrics['train_structures']} structures ({metrics['test_structures']} held out) "
            f"in {metrics['fit_seconds']:.1f} s"
        )
    else:
        console.print(
            f"fitted {metrics['coefficients']} coefficients on {metrics['train_structures']} "
            f"structures ({metrics['test_structures']} held out), solver {config.fit.solver}"
            + (f", alpha {result.alpha:g}" if config.fit.solver == "ridge" else "")
        )
    console.print("unweighted errors (energy eV/atom, force eV/A, stress bar):")
    console.print(
        table[["split", "group", "kind", "count", "mae", "rmse"]].to_string(
            index=False, float_format=lambda v: f"{v:.4g}"
        )
    )
    console.print(f"wrote {run.path}")


@app.command("eval")
def eval_command(
    model: Annotated[Path, typer.Argument(help="model.pt written by 'matforge mlip fit'.")],
    data: Annotated[
        Path,
        typer.Argument(
            help="Labelled structures: a file ASE reads, or a folder of FitSNAP JSON groups."
        ),
    ],
    json_output: JsonFlag = False,
) -> None:
    """Errors of a potential on labelled structures, per group."""
    from matforge.mlip.evaluate import evaluate_potential
    from matforge.mlip.io import load_potential

    table = evaluate_potential(load_potential(model), data)
    if json_output:
        print_json({"model": str(model), "data": str(data), "errors": table.to_dict("records")})
        return
    stdout_console().print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


@app.command("convert")
def convert_command(
    data: Annotated[
        Path, typer.Argument(help="A folder of FitSNAP JSON groups, or a file ASE reads.")
    ],
    out: Annotated[Path, typer.Argument(help="ASE database to create (.db: SQLite).")],
    json_output: JsonFlag = False,
) -> None:
    """Store labelled structures (energies, forces, stresses, groups) in an ASE database."""
    from matforge.mlip.data import read_fitsnap_groups, read_structures, write_database

    structures = read_fitsnap_groups(data) if data.is_dir() else read_structures(data)
    write_database(structures, out)
    groups = sorted({str(a.info.get("group", "")) for a in structures})
    summary = {"structures": len(structures), "groups": groups, "database": str(out)}
    if json_output:
        print_json(summary)
        return
    stdout_console().print(f"wrote {len(structures)} structures ({len(groups)} groups) to {out}")


@app.command("md")
def md_command(
    model: Annotated[Path, typer.Argument(help="model.pt written by 'matforge mlip fit'.")],
    structure: Annotated[Path, typer.Argument(help="Starting structure (any file ASE reads).")],
    ensemble: Annotated[str, typer.Option(help="nve, nvt (Langevin) or npt (MTK).")] = "nve",
    temperature: Annotated[float, typer.Option(help="K")] = 300.0,
    timestep: Annotated[float, typer.Option(help="fs")] = 1.0,
    steps: Annotated[int, typer.Option()] = 1000,
    pressure: Annotated[float, typer.Option(help="GPa, for npt")] = 0.0,
    repeat: Annotated[str, typer.Option(help="Supercell, e.g. 4,4,4.")] = "1,1,1",
    log_every: Annotated[int, typer.Option()] = 10,
    backend: Annotated[
        str, typer.Option(help="torch, or numba (compiled: linear SNAP, NEP; extra jit).")
    ] = "torch",
    trajectory: Annotated[
        Path, typer.Option(help="ASE trajectory to write (never overwritten).")
    ] = Path("md.traj"),
    json_output: JsonFlag = False,
) -> None:
    """Molecular dynamics with a fitted potential through ASE; writes a trajectory and a log."""
    from matforge.core.errors import ConfigError
    from matforge.core.progress import is_quiet
    from matforge.core.rundir import atomic_write_text
    from matforge.mlip.calculator import MatforgeCalculator
    from matforge.mlip.data import read_structures
    from matforge.mlip.md import run_md

    try:
        reps = tuple(int(v) for v in repeat.split(","))
    except ValueError:
        raise ConfigError(f"--repeat must look like 4,4,4, got {repeat!r}") from None
    if len(reps) != 3 or min(reps) < 1:
        raise ConfigError(f"--repeat must be three positive integers, got {repeat!r}")
    atoms = read_structures(structure, index="-1")[0].repeat(reps)
    atoms.calc = MatforgeCalculator.from_file(str(model), backend=backend)
    log = run_md(
        atoms,
        ensemble=ensemble,  # type: ignore[arg-type]
        temperature=temperature,
        timestep_fs=timestep,
        steps=steps,
        pressure_gpa=pressure,
        log_every=log_every,
        trajectory=trajectory,
        show_progress=not is_quiet() and not json_output,
    )
    import pandas as pd

    log_path = trajectory.with_suffix(".csv")
    atomic_write_text(log_path, pd.DataFrame(log.rows()).to_csv(index=False))
    summary = {
        "atoms": len(atoms),
        "steps": steps,
        "ensemble": ensemble,
        "final_temperature_K": log.temperature[-1],
        "energy_drift_eV_per_atom": log.drift_per_atom(len(atoms)),
        "trajectory": str(trajectory),
        "log": str(log_path),
    }
    if json_output:
        print_json(summary)
        return
    console = stdout_console()
    for key, value in summary.items():
        console.print(f"{key}: {value}")

"""`matforge xc ...`: exchange-correlation functionals in torch, run in PySCF."""

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
    help="Exchange-correlation functionals: self-consistent calculations with torch "
    "functionals in PySCF, exact-constraint reports.",
    no_args_is_help=True,
)

FunctionalArgument = Annotated[
    str,
    typer.Argument(
        help="A run directory of 'xc train', lda, lda_pw, pbe, scan (torch), or libxc:NAME "
        "(e.g. libxc:B3LYP)."
    ),
]


@app.command("train")
def train_command(
    config_path: ConfigArgument, override: OverridesOption = None, json_output: JsonFlag = False
) -> None:
    """Fit a constrained neural meta-GGA to G2-1 atomization energies on fixed densities."""
    from matforge.xc.pyscf_bridge import require_pyscf

    require_pyscf()
    from matforge.core.config import load_config
    from matforge.xc.job import XCTrainConfig, train

    config = load_config(config_path, XCTrainConfig, override or [])
    run, metrics = train(config)
    metrics["run"] = str(run.path)
    if json_output:
        print_json(metrics)
        return
    console = stdout_console()
    split = metrics["split"]
    console.print(
        f"G2-1 split {len(split['train'])} train / {len(split['validation'])} validation / "
        f"{len(split['test'])} test molecules; densities from {metrics['reference']}/"
        f"{metrics['basis']} ({metrics['prepare_s']:.0f} s)"
    )
    console.print(
        f"fixed-density MAE: train {metrics['initial_train_mae']:.2f} -> "
        f"{metrics['final_train_mae']:.2f} kcal/mol, best validation "
        f"{metrics['best_validation_mae_fixed_density']:.2f} at epoch {metrics['best_epoch']} "
        f"({metrics['fit_s']:.0f} s)"
    )
    console.print(f"wrote {run.path}")


@app.command("eval")
def eval_command(
    run: Annotated[Path, typer.Argument(help="A run directory of 'xc train'.")],
    data_set: Annotated[str, typer.Option("--set", help="Data set (g2-1).")] = "g2-1",
    split: Annotated[str, typer.Option(help="train, validation or test.")] = "test",
    reference: Annotated[
        list[str] | None, typer.Option(help="libxc functionals to run beside it (repeat).")
    ] = None,
    basis: Annotated[str | None, typer.Option(help="Basis (default: the run's).")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Self-consistent atomization energies of a G2-1 split, learned beside references."""
    from matforge.xc.pyscf_bridge import require_pyscf

    require_pyscf()
    from matforge.core.errors import ConfigError
    from matforge.xc.job import evaluate_run

    if data_set.lower() != "g2-1":
        raise ConfigError(f"--set must be g2-1, got {data_set!r}")
    report = evaluate_run(run, split=split, references=tuple(reference or ()), basis=basis)
    if json_output:
        print_json(report)
        return
    from rich.table import Table

    table = Table("functional", "MAE (kcal/mol)", "molecules", "SCF failures", "wall (s)")
    for label, entry in report["functionals"].items():
        table.add_row(
            label,
            f"{entry['mae']:.2f}" if entry["mae"] is not None else "-",
            str(len(entry["errors"])),
            ", ".join(entry["failed"]) or "none",
            f"{entry['wall_s']:.0f}",
        )
    console = stdout_console()
    console.print(f"G2-1 {split} split, {report['basis']}, self-consistent")
    console.print(table)


@app.command("scf")
def scf_command(
    functional: FunctionalArgument,
    molecule: Annotated[Path, typer.Argument(help="A structure file ASE reads (XYZ, ...).")],
    basis: Annotated[str, typer.Option(help="Gaussian basis set.")] = "def2-svp",
    charge: Annotated[int, typer.Option(help="Total charge.")] = 0,
    spin: Annotated[
        int | None, typer.Option(help="2S = N_alpha - N_beta (default: 0 or 1 by parity).")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """One self-consistent calculation; a non-converged SCF is reported, exit code 1."""
    from matforge.xc.pyscf_bridge import require_pyscf

    require_pyscf()
    from matforge.xc.molecules import resolve, run_scf

    result = run_scf(resolve(functional), molecule, basis=basis, charge=charge, spin=spin)
    if json_output:
        print_json(result)
    else:
        console = stdout_console()
        head = f"{result['formula']} ({result['molecule']}), {result['functional']}/{basis}, "
        head += f"charge {charge}, 2S = {result['spin']}"
        console.print(head)
        if result["converged"]:
            console.print(
                f"E = {result['energy']:.10f} Ha, HOMO {result['homo']:.6f} Ha, "
                f"{result['seconds']:.1f} s"
            )
        else:
            console.print(result["message"])
    if not result["converged"]:
        raise typer.Exit(1)


@app.command("constraints")
def constraints_command(
    functional: FunctionalArgument,
    basis: Annotated[str, typer.Option(help="Basis for the H atom and E(N).")] = "cc-pvtz",
    points: Annotated[int, typer.Option(help="Fractional electron numbers in [0, 1].")] = 5,
    json_output: JsonFlag = False,
) -> None:
    """The H atom's energy error, self-interaction error and E(N) deviation from linearity
    for H and He+ (0 for the exact functional)."""
    from matforge.xc.pyscf_bridge import require_pyscf

    require_pyscf()
    from matforge.xc.constraints import fractional_charge_curve, one_electron_report
    from matforge.xc.molecules import resolve

    resolved = resolve(functional)
    report: dict = {"functional": functional, "basis": basis}
    report["h_atom"] = one_electron_report(resolved, basis=basis)
    report["fractional"] = {
        nucleus: fractional_charge_curve(resolved, nucleus, points=points, basis=basis)
        for nucleus in ("H", "He")
    }
    if json_output:
        print_json(report)
        return
    console = stdout_console()
    h = report["h_atom"]
    console.print(
        f"{functional}/{basis}: H atom E - E_exact = {h['energy_error'] * 1000:+.3f} mHa, "
        f"self-interaction E_xc + J = {h['self_interaction'] * 1000:+.3f} mHa"
        + (f", E_c = {h['correlation']:.2e} Ha" if "correlation" in h else "")
    )
    for nucleus, curve in report["fractional"].items():
        label = "H" if nucleus == "H" else "He+"
        missing = [
            n for n, ok in zip(curve["electrons"], curve["converged"], strict=True) if not ok
        ]
        deviation = curve["max_deviation"]
        console.print(
            f"{label}: largest deviation of E(N) from linearity "
            + (f"{deviation * 1000:+.2f} mHa" if deviation is not None else "unavailable")
            + (f" (SCF not converged at N = {missing})" if missing else "")
        )

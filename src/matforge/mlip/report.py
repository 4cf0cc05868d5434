"""The run directory of `matforge mlip fit`: model files, error tables, parity plots."""

from __future__ import annotations

from typing import Any

import numpy as np

from matforge.core.rundir import RunDirectory, pyplot
from matforge.mlip.io import save_potential
from matforge.mlip.job import FitResult
from matforge.mlip.lammps_files import write_snap_files


def parity_figure(series: list[tuple[str, np.ndarray, np.ndarray, str]], xlabel: str, ylabel: str):
    """Predicted against reference values, one scatter per (label, truth, predicted, colour)."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    for label, truth, predicted, colour in series:
        axis.scatter(truth, predicted, s=4, alpha=0.5, c=colour, label=label)
    low, high = axis.get_xlim()
    axis.plot([low, high], [low, high], "k--", lw=0.8)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.legend()
    figure.tight_layout()
    return figure


def _parity(result: FitResult, kind: int, label: str, unit: str):
    coefficients = result.potential.model.coefficients.detach().numpy().reshape(-1)
    series = []
    for split, indices, colour in (("train", result.train, "C0"), ("test", result.test, "C3")):
        if len(indices) == 0:
            continue
        part = result.system.subset(indices)
        rows = part.kind == kind
        series.append((split, part.b[rows], part.a[rows] @ coefficients, colour))
    return parity_figure(series, f"DFT - reference {label} ({unit})", f"SNAP {label} ({unit})")


def write_fit_run(result: FitResult) -> tuple[RunDirectory, dict[str, Any]]:
    from matforge.mlip.gap_job import GapFitResult, write_gap_fit_run
    from matforge.mlip.nep_job import NepFitResult, write_nep_fit_run

    if isinstance(result, GapFitResult):
        return write_gap_fit_run(result)
    if isinstance(result, NepFitResult):
        return write_nep_fit_run(result)
    config = result.config
    run = RunDirectory.create(config.name, config.runs_dir)
    run.write_config(config)
    save_potential(result.potential, run.file("model.pt"))
    coefficients = result.potential.model.coefficients.detach().numpy()
    write_snap_files(
        run.file("model"),
        result.potential.descriptor.parameters,
        {e: coefficients[k] for k, e in enumerate(result.potential.elements)},
    )
    run.write_table("errors.csv", result.errors)
    for kind, label, unit in ((0, "energy", "eV/atom"), (1, "force", "eV/A")):
        figure = _parity(result, kind, label, unit)
        run.save_figure(f"parity_{label}.png", figure)
        pyplot().close(figure)
    overall = result.errors[
        (result.errors.group == "*ALL") & (result.errors.weighting == "unweighted")
    ]
    metrics = {
        "structures": len(result.structures),
        "train_structures": len(result.train),
        "test_structures": len(result.test),
        "alpha": result.alpha,
        "weight_scales": result.scales,
        "solver": config.fit.solver,
        "errors": {
            f"{row.split}_{row.kind}_{stat}": float(getattr(row, stat))
            for row in overall.itertuples()
            for stat in ("mae", "rmse")
        },
        "coefficients": int(np.size(coefficients)),
    }
    run.write_json("metrics.json", metrics)
    return run, metrics

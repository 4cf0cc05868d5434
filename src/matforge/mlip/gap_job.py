"""`matforge mlip fit` with `model: gap`: the split, the fit, errors and the run directory.

Configurations (not rows) are split per group with the seeded shuffle SNAP uses
(`job.split_by_group`), the GAP is fitted on the training part only, and errors are
measured on both parts with the same code that `matforge mlip eval` runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from matforge.core.rundir import RunDirectory, pyplot
from matforge.mlip.evaluate import evaluate_structures
from matforge.mlip.gap import GapFit, GapSettings, fit_gap, two_body_term
from matforge.mlip.potential import Potential
from matforge.mlip.two_body import TwoBodySettings


@dataclass
class GapFitResult:
    config: Any  # MlipFitConfig
    potential: Potential
    fit: GapFit
    train: np.ndarray
    test: np.ndarray
    errors: pd.DataFrame
    structures: list
    seconds: float


def gap_settings(config: Any) -> GapSettings:
    g = config.gap.model_dump()
    g["default_sigma"] = tuple(g["default_sigma"])
    g["group_sigma"] = {k: tuple(v) for k, v in g["group_sigma"].items()}
    if g["two_body"] is not None:
        g["two_body"] = TwoBodySettings(**g["two_body"])
    return GapSettings(**g, seed=config.seed)


def run_gap_fit(config: Any, structures: list) -> GapFitResult:
    from matforge.mlip.job import build_potential, split_by_group

    groups = [str(a.info.get("group", "all")) for a in structures]
    train, test = split_by_group(groups, config.fit.test_fraction, config.seed)
    potential = build_potential(config)
    start = time.perf_counter()
    fit = fit_gap(potential, [structures[i] for i in train], gap_settings(config))
    seconds = time.perf_counter() - start
    tables = [evaluate_structures(potential, [structures[i] for i in train]).assign(split="train")]
    if len(test):
        tables.append(
            evaluate_structures(potential, [structures[i] for i in test]).assign(split="test")
        )
    errors = pd.concat(tables, ignore_index=True).assign(weighting="unweighted")
    return GapFitResult(config, potential, fit, train, test, errors, structures, seconds)


def parity_figure_of(potential: Potential, structures: list, train, test, kind: str, label: str):
    """Predicted against reference energies (eV/atom) or force components (eV/A)."""
    from matforge.mlip.report import parity_figure

    series = []
    for split, indices, colour in (("train", train, "C0"), ("test", test, "C3")):
        if len(indices) == 0:
            continue
        part = [structures[i] for i in indices]
        out = potential(potential.batch(part), stress=False)
        if kind == "energy":
            counts = np.array([len(a) for a in part])
            truth = np.array([a.get_potential_energy() for a in part]) / counts
            predicted = out.energy.detach().numpy() / counts
        else:
            truth = np.concatenate([a.get_forces() for a in part]).reshape(-1)
            predicted = out.forces.detach().numpy().reshape(-1)
        series.append((split, truth, predicted, colour))
    unit = "eV/atom" if kind == "energy" else "eV/A"
    return parity_figure(series, f"reference {kind} ({unit})", f"{label} {kind} ({unit})")


def parity_figures(run: RunDirectory, potential: Potential, structures, train, test, label: str):
    for kind in ("energy", "force"):
        figure = parity_figure_of(potential, structures, train, test, kind, label)
        run.save_figure(f"parity_{kind}.png", figure)
        pyplot().close(figure)


def write_gap_fit_run(result: GapFitResult) -> tuple[RunDirectory, dict[str, Any]]:
    from matforge.mlip.io import save_potential

    config = result.config
    run = RunDirectory.create(config.name, config.runs_dir)
    run.write_config(config)
    save_potential(result.potential, run.file("model.pt"))
    run.write_table("errors.csv", result.errors)
    parity_figures(run, result.potential, result.structures, result.train, result.test, "GAP")
    overall = result.errors[result.errors.group == "*ALL"]
    term = two_body_term(result.potential)
    metrics = {
        "model": "gap",
        "structures": len(result.structures),
        "train_structures": len(result.train),
        "test_structures": len(result.test),
        "sparse_points": result.potential.model.n_sparse,
        "two_body_sparse_points": term.n_sparse if term is not None else 0,
        "fit_seconds": result.seconds,
        "errors": {
            f"{row.split}_{row.kind}_{stat}": float(getattr(row, stat))
            for row in overall.itertuples()
            for stat in ("mae", "rmse")
        },
        "coefficients": result.potential.model.n_sparse + (term.n_sparse if term else 0),
    }
    run.write_json("metrics.json", metrics)
    return run, metrics

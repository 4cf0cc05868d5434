"""`matforge mlip fit` with `model: nep`: split, train (SNES or gradients), errors, run dir.

The run directory holds model.pt (matforge), nep.txt (GPUMD, also read by calorine),
learning_curve.csv and .png, errors.csv (the same per-group table as SNAP and GAP),
metrics.json and parity plots.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from matforge.core.rundir import RunDirectory, pyplot
from matforge.mlip.evaluate import evaluate_structures
from matforge.mlip.nep import NepSettings, nep_potential
from matforge.mlip.nep_io import NepTrainingSettings, with_max_neighbors, write_nep_txt
from matforge.mlip.nep_train import (
    NepDataset,
    NepTrainResult,
    make_datasets,
    train_gradient,
    train_snes,
)


@dataclass
class NepFitResult:
    config: Any  # MlipFitConfig
    potential: Any
    training: NepTrainResult
    train: np.ndarray
    test: np.ndarray
    errors: pd.DataFrame
    structures: list
    seconds: float


def nep_settings(d: Any, t: Any) -> tuple[NepSettings, NepTrainingSettings]:
    """From the `descriptor` (NepConfig) and `nep` (NepTrainConfig) sections."""
    settings = NepSettings(
        tuple(d.elements),
        cutoff_radial=d.cutoff[0],
        cutoff_angular=d.cutoff[1],
        n_max_radial=d.n_max[0],
        n_max_angular=d.n_max[1],
        basis_size_radial=d.basis_size[0],
        basis_size_angular=d.basis_size[1],
        l_max=d.l_max[0],
        l_max_4body=d.l_max[1],
        l_max_5body=d.l_max[2],
        neurons=d.neuron,
        zbl=None if d.zbl is None else (d.zbl / 2.0, d.zbl),
    )
    training = NepTrainingSettings(
        lambda_1=t.lambda_1,
        lambda_2=t.lambda_2,
        lambda_e=t.lambda_e,
        lambda_f=t.lambda_f,
        lambda_v=t.lambda_v,
        batch=t.batch,
        population=t.population,
        generation=t.generation,
    )
    return settings, training


def run_nep_fit(config: Any, structures: list) -> NepFitResult:
    from matforge.mlip.job import split_by_group

    settings, training = nep_settings(config.descriptor, config.nep)
    groups = [str(a.info.get("group", "all")) for a in structures]
    train, test = split_by_group(groups, config.fit.test_fraction, config.seed)
    potential = nep_potential(settings)
    train_structures = [structures[i] for i in train]
    datasets = make_datasets(
        settings, train_structures, training.batch, potential.reference, config.seed
    )
    validation = (
        NepDataset.from_structures(settings, [structures[i] for i in test], potential.reference)
        if len(test)
        else None
    )
    start = time.perf_counter()
    t = config.nep
    if t.method == "snes":
        result = train_snes(
            potential,
            datasets,
            training,
            seconds=t.seconds,
            seed=config.seed,
            validation=validation,
        )
    else:
        result = train_gradient(
            potential,
            datasets,
            training,
            adam_steps=t.adam_steps,
            lbfgs_steps=t.lbfgs_steps,
            learning_rate=t.learning_rate,
            seconds=t.seconds,
            seed=config.seed,
            validation=validation,
        )
    seconds = time.perf_counter() - start
    with_max_neighbors(potential, train_structures)
    tables = [evaluate_structures(potential, train_structures).assign(split="train")]
    if len(test):
        tables.append(
            evaluate_structures(potential, [structures[i] for i in test]).assign(split="test")
        )
    errors = pd.concat(tables, ignore_index=True).assign(weighting="unweighted")
    return NepFitResult(config, potential, result, train, test, errors, structures, seconds)


def write_nep_fit_run(result: NepFitResult) -> tuple[RunDirectory, dict[str, Any]]:
    from matforge.mlip.gap_job import parity_figures
    from matforge.mlip.io import save_potential

    config = result.config
    run = RunDirectory.create(config.name, config.runs_dir)
    run.write_config(config)
    save_potential(result.potential, run.file("model.pt"))
    write_nep_txt(result.potential, run.file("nep.txt"))
    curve = pd.DataFrame(result.training.curve.rows)
    run.write_table("learning_curve.csv", curve)
    run.write_table("errors.csv", result.errors)
    if len(curve):
        figure = _curve_figure(curve)
        run.save_figure("learning_curve.png", figure)
        pyplot().close(figure)
    parity_figures(run, result.potential, result.structures, result.train, result.test, "NEP")
    overall = result.errors[result.errors.group == "*ALL"]
    metrics = {
        "model": "nep",
        "method": result.training.method,
        "structures": len(result.structures),
        "train_structures": len(result.train),
        "test_structures": len(result.test),
        "parameters": result.potential.descriptor.settings.n_parameters,
        "fit_seconds": result.seconds,
        "last": result.training.curve.last(),
        "errors": {
            f"{row.split}_{row.kind}_{stat}": float(getattr(row, stat))
            for row in overall.itertuples()
            for stat in ("mae", "rmse")
        },
    }
    run.write_json("metrics.json", metrics)
    return run, metrics


def _curve_figure(curve: pd.DataFrame):
    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    x = curve["seconds"]
    for axis, key, unit in ((axes[0], "rmse_energy", "eV/atom"), (axes[1], "rmse_force", "eV/A")):
        axis.semilogy(x, curve[key], label="train")
        if f"test_{key}" in curve:
            axis.semilogy(x, curve[f"test_{key}"], label="test")
        axis.set_xlabel("seconds")
        axis.set_ylabel(f"RMSE ({unit})")
        axis.legend()
    figure.tight_layout()
    return figure

"""Run directories of `matforge psp fit` and `psp design`: chain, errors, plots, design."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from matforge.core.rundir import RunDirectory, pyplot
from matforge.psp.job import DesignOutcome, FitResult, PspConfig, save_ensemble
from matforge.psp.training import ChainEnsemble, columns


def _parity(fit: FitResult) -> Any:
    """Predicted vs measured, on the test split, for each link's outputs and the chain."""
    plt = pyplot()
    config = fit.config
    data = fit.test if len(fit.test) else fit.train
    names = [n for n in [*config.structure_names[:2], config.property] if n in data.columns]
    figure, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4))
    axes = np.atleast_1d(axes)
    with torch.no_grad():
        chain_out = fit.ensemble(columns(data, list(fit.ensemble.inputs)))
        links = fit.ensemble.chains
        structure_given = all(n in data.columns for n in config.structure_names)
        link_out = {}
        if structure_given:
            prop = [c.links[1](columns(data, c.links[1].input_names())) for c in links]
            link_out = {config.property: torch.stack([p[config.property] for p in prop]).mean(0)}
    for axis, name in zip(axes, names, strict=True):
        truth = data[name].to_numpy()
        axis.scatter(truth, chain_out[name].numpy(), s=6, alpha=0.6, label="chain")
        if name in link_out:
            axis.scatter(truth, link_out[name].numpy(), s=6, alpha=0.6, label="property link")
            axis.legend()
        low, high = truth.min(), truth.max()
        axis.plot([low, high], [low, high], "k--", lw=0.8)
        axis.set_xlabel(f"measured {name}")
        axis.set_ylabel(f"predicted {name}")
        if name.startswith("grain_size"):
            axis.set_xscale("log")
            axis.set_yscale("log")
    figure.tight_layout()
    return figure


def write_fit_run(fit: FitResult) -> tuple[RunDirectory, dict[str, Any]]:
    config = fit.config
    run = RunDirectory.create(config.name, config.runs_dir)
    run.write_config(config)
    save_ensemble(fit.ensemble, config, run.file("chain.pt"))
    errors = pd.DataFrame(fit.errors)
    run.write_table("errors.csv", errors)
    figure = _parity(fit)
    run.save_figure("parity.png", figure)
    pyplot().close(figure)
    metrics = {
        "rows": len(fit.train) + len(fit.test),
        "train_rows": len(fit.train),
        "test_rows": len(fit.test),
        "mode": fit.mode,
        "members": len(fit.ensemble.chains),
        "errors": fit.errors,
    }
    links = fit.ensemble.chains[0].links
    if hasattr(links[1], "sigma0"):
        metrics["hall_petch"] = {
            "phases": list(links[1].phases),
            "sigma0_MPa": [
                c.links[1].sigma0.detach().numpy().tolist() for c in fit.ensemble.chains
            ],
            "k_MPa_sqrt_m": [c.links[1].k.detach().numpy().tolist() for c in fit.ensemble.chains],
        }
    run.write_metrics(metrics)
    return run, metrics


def strength_map(
    config: PspConfig, ensemble: ChainEnsemble, outcome: DesignOutcome, points: int = 80
) -> Any:
    """Predicted property over two process axes (others at the design), optimum marked."""
    plt = pyplot()
    spec = config.design
    assert spec is not None
    by_name = {p.name: p for p in config.process}
    x_name, y_name = spec.map_axes
    if x_name not in by_name or y_name not in by_name:
        x_name, y_name = config.process[0].name, config.process[-1].name
    bx, by = by_name[x_name].bound(), by_name[y_name].bound()
    unit = torch.linspace(0, 1, points, dtype=torch.float64)
    gx, gy = torch.meshgrid(bx.from_unit(unit), by.from_unit(unit), indexing="xy")
    values = {
        k: torch.full((points * points,), v, dtype=torch.float64)
        for k, v in outcome.result.process.items()
    }
    values[x_name], values[y_name] = gx.reshape(-1), gy.reshape(-1)
    with torch.no_grad():
        z = ensemble(values)[config.property].reshape(points, points).numpy()
    figure, axis = plt.subplots(figsize=(6, 4.6))
    mesh = axis.pcolormesh(gx.numpy(), gy.numpy(), z, shading="auto", cmap="viridis")
    figure.colorbar(mesh, ax=axis, label=f"predicted {config.property}")
    axis.plot(
        outcome.result.process[x_name],
        outcome.result.process[y_name],
        "r*",
        ms=14,
        label="design (gradient)",
    )
    if outcome.grid_process is not None:
        axis.plot(
            outcome.grid_process[x_name],
            outcome.grid_process[y_name],
            "wx",
            ms=10,
            mew=2,
            label="dense grid on the true process",
        )
    if by.log:
        axis.set_yscale("log")
    if bx.log:
        axis.set_xscale("log")
    axis.set_xlabel(x_name)
    axis.set_ylabel(y_name)
    others = {
        k: round(v, 3) for k, v in outcome.result.process.items() if k not in (x_name, y_name)
    }
    axis.set_title(f"others at the design: {others}" if others else "")
    axis.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    return figure


def design_summary(config: PspConfig, outcome: DesignOutcome) -> dict[str, Any]:
    spec = config.design
    assert spec is not None
    result = outcome.result
    summary: dict[str, Any] = {
        "objective": "maximize" if spec.maximize else f"target {spec.target}",
        "process": result.process,
        "predicted": result.predicted,
        "uncertainty": result.uncertainty,
        "design_seconds": result.seconds,
        "starts": result.starts,
    }
    if outcome.truth is not None:
        summary["true_property"] = outcome.truth
        summary["grid_process"] = outcome.grid_process
        summary["grid_value"] = outcome.grid_value
        summary["grid_points"] = outcome.grid_points
        summary["grid_seconds"] = outcome.grid_seconds
        if spec.target is not None:
            summary["target_error_pct"] = 100 * abs(outcome.truth - spec.target) / abs(spec.target)
        else:
            summary["optimum_gap_pct"] = (
                100 * (outcome.grid_value - outcome.truth) / abs(outcome.grid_value)
            )
    return summary


def write_design_run(
    config: PspConfig, ensemble: ChainEnsemble, outcome: DesignOutcome, run: RunDirectory
) -> dict[str, Any]:
    summary = design_summary(config, outcome)
    run.write_json("design.json", summary)
    run.write_table("design_starts.csv", pd.DataFrame(outcome.result.all_starts))
    figure = strength_map(config, ensemble, outcome)
    run.save_figure("property_map.png", figure)
    pyplot().close(figure)
    return summary

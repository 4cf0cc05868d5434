"""Run directory of `matforge pinn identify`: parameters with uncertainty, loss curves, the
identified vs true modulus profile."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from matforge.core.rundir import RunDirectory, pyplot
from matforge.pinn.job import IdentifyResult


def _extent(result: IdentifyResult) -> float:
    config = result.config
    return config.bar.length if config.problem == "bar" else config.plate.height


def parameter_table(result: IdentifyResult) -> pd.DataFrame:
    """One row per parameter: ensemble mean and std; truth and error where known (moduli:
    relative, interfaces: relative to the bar length or plate thickness); for the bar the
    closed-form least-squares fit and its Laplace std."""
    table = pd.DataFrame(result.estimate.table())
    truth = result.config.truth
    n = result.config.layers
    if truth is not None:
        values = np.concatenate([truth.moduli, truth.interfaces])
        table["truth"] = values
        error = (table["mean"].to_numpy() - values) / np.concatenate(
            [values[:n], np.full(n - 1, _extent(result))]
        )
        table["error_pct"] = 100 * error
    if result.reference is not None:
        ref = result.reference
        table["closed_form"] = np.concatenate([ref.moduli, ref.interfaces])
        table["closed_form_std"] = np.concatenate([ref.moduli_std, ref.interfaces_std])
        if truth is not None:
            table["closed_form_error_pct"] = (
                100
                * (table["closed_form"].to_numpy() - values)
                / np.concatenate([values[:n], np.full(n - 1, _extent(result))])
            )
    return table


def _profile(result: IdentifyResult) -> Any:
    plt = pyplot()
    extent = _extent(result)
    position = np.linspace(0.0, extent, 801)
    axis_name = "x" if result.config.problem == "bar" else "y"

    def steps(moduli: np.ndarray, interfaces: np.ndarray) -> np.ndarray:
        return np.asarray(moduli)[np.searchsorted(np.asarray(interfaces), position, side="right")]

    figure, axis = plt.subplots(figsize=(6, 4))
    est = result.estimate
    for k, (m, i) in enumerate(zip(est.moduli, est.interfaces, strict=True)):
        axis.plot(
            position, steps(m, i), color="C0", alpha=0.3, lw=1, label="members" if k == 0 else None
        )
    axis.plot(
        position,
        steps(est.moduli_mean, est.interfaces_mean),
        color="C0",
        lw=2,
        label="identified (mean)",
    )
    if result.config.truth is not None:
        t = result.config.truth
        axis.plot(
            position,
            steps(np.array(t.moduli), np.array(t.interfaces)),
            "k--",
            lw=1.5,
            label="truth",
        )
    if result.reference is not None:
        r = result.reference
        axis.plot(
            position,
            steps(r.moduli, r.interfaces),
            color="C3",
            lw=1,
            ls=":",
            label="closed-form fit",
        )
    axis.set_xlabel(f"{axis_name} (length units)")
    axis.set_ylabel("modulus")
    axis.set_yscale("log")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _loss_curves(history: pd.DataFrame) -> Any:
    plt = pyplot()
    terms = [c for c in history.columns if c not in ("member", "step", "total")]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for member, rows in history.groupby("member"):
        axes[0].semilogy(rows["step"], rows["total"], label=f"member {member}")
        for k, term in enumerate(terms):
            axes[1].semilogy(
                rows["step"],
                rows[term],
                color=f"C{k}",
                alpha=0.7,
                label=term if member == 0 else None,
            )
    axes[0].set_title("weighted total")
    axes[1].set_title("terms (unweighted mean squares)")
    for axis in axes:
        axis.set_xlabel("Adam step, then L-BFGS evaluation")
        axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def write_identify_run(result: IdentifyResult) -> tuple[RunDirectory, dict[str, Any]]:
    config = result.config
    run = RunDirectory.create(config.name, config.runs_dir)
    run.write_config(config)
    run.write_table("observations.csv", result.observations)
    table = parameter_table(result)
    run.write_table("parameters.csv", table)
    est = result.estimate
    members = pd.DataFrame(
        np.column_stack([est.moduli, est.interfaces, est.losses]),
        columns=[
            *(f"E{k + 1}" for k in range(config.layers)),
            *(f"y{k + 1}" for k in range(config.layers - 1)),
            "loss",
        ],
    )
    run.write_table("members.csv", members)
    rows = []
    for member, history in enumerate(result.histories):
        for j, step in enumerate(history.steps):
            rows.append(
                {
                    "member": member,
                    "step": step,
                    "total": history.total[j],
                    **{name: values[j] for name, values in history.terms.items()},
                }
            )
    history = pd.DataFrame(rows)
    plt = pyplot()
    if len(history):
        run.write_table("loss_history.csv", history)
        figure = _loss_curves(history)
        run.save_figure("loss_curves.png", figure)
        plt.close(figure)
    figure = _profile(result)
    run.save_figure("modulus_profile.png", figure)
    plt.close(figure)
    metrics: dict[str, Any] = {
        "problem": config.problem,
        "layers": config.layers,
        "observations": len(result.observations),
        "members": len(est.losses),
        "seconds": result.seconds,
        "parameters": table.to_dict(orient="records"),
    }
    if "error_pct" in table:
        n = config.layers
        metrics["moduli_err_pct"] = float(np.abs(table["error_pct"][:n]).max())
        if n > 1:
            metrics["interface_err_pct"] = float(np.abs(table["error_pct"][n:]).max())
    run.write_metrics(metrics)
    return run, metrics

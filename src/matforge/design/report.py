"""Run directory of `matforge design`: tables, metrics and plots."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import torch

from matforge.core.rundir import RunDirectory, pyplot

if TYPE_CHECKING:
    from matforge.design.job import DesignJobResult


def _convergence(ax, result: DesignJobResult) -> None:  # type: ignore[no-untyped-def]
    trace = result.history.best_feasible_trace().numpy()
    evaluations = range(1, len(trace) + 1)
    ax.plot(evaluations, trace, drawstyle="steps-post", lw=1.5, label="best feasible")
    y = result.history.outputs.numpy()
    feasible = result.history.feasible_mask.numpy()
    ax.scatter(
        [i + 1 for i in range(len(y)) if feasible[i]], y[feasible], s=10, c="C2", label="feasible"
    )
    ax.scatter(
        [i + 1 for i in range(len(y)) if not feasible[i]],
        y[~feasible],
        s=10,
        marker="x",
        c="C3",
        label="infeasible",
    )
    ax.axvline(result.config.initial + 0.5, color="k", lw=0.6, ls=":")
    ax.set_xlabel("evaluation")
    ax.set_ylabel("objective")
    ax.legend(fontsize=7)


def _compositions(ax, result: DesignJobResult) -> None:  # type: ignore[no-untyped-def]
    x = result.history.inputs.numpy()
    for j, element in enumerate(result.history.elements):
        ax.plot(range(1, len(x) + 1), x[:, j], marker=".", lw=0.8, label=element)
    ax.set_xlabel("evaluation")
    ax.set_ylabel("mole fraction")
    ax.legend(fontsize=7, ncol=len(result.history.elements))


def _feasibility_map(ax, result: DesignJobResult, resolution: int) -> bool:  # type: ignore[no-untyped-def]
    """PoF on the 2D slice through the best feasible alloy in which its three largest free
    elements a, b, c vary (x_a, x_b on the axes, x_c = rest - x_a - x_b) and the others stay
    fixed; False when there is nothing to draw."""
    best = result.best_feasible(1)
    if result.feasibility is None or not best:
        return False
    elements = result.history.elements
    space = result.config.space()
    center = torch.tensor([best[0][f"x_{e}"] for e in elements], dtype=torch.float64)
    free = list(space.free)
    if len(free) < 3:
        return False
    a, b, c = sorted(free, key=lambda i: -float(center[i]))[:3]
    rest = float(center[a] + center[b] + center[c])
    u = torch.linspace(float(space.limits[a, 0]), float(space.limits[a, 1]), resolution)
    v = torch.linspace(float(space.limits[b, 0]), float(space.limits[b, 1]), resolution)
    uu, vv = torch.meshgrid(u.double(), v.double(), indexing="xy")
    points = center.repeat(uu.numel(), 1)
    points[:, a] = uu.reshape(-1)
    points[:, b] = vv.reshape(-1)
    points[:, c] = rest - points[:, a] - points[:, b]
    inside = space.contains(points)
    pof = torch.full((uu.numel(),), float("nan"), dtype=torch.float64)
    if inside.any():
        pof[inside] = result.feasibility.probability(points[inside])
    image = ax.pcolormesh(
        uu.numpy(),
        vv.numpy(),
        pof.reshape(uu.shape).numpy(),
        vmin=0,
        vmax=1,
        cmap="RdYlGn",
        shading="nearest",
    )
    ax.figure.colorbar(image, ax=ax, label="probability of feasibility")
    ax.plot(float(center[a]), float(center[b]), marker="*", ms=12, c="k", label="best feasible")
    ax.set_xlabel(f"x({elements[a]})")
    ax.set_ylabel(f"x({elements[b]})")
    others = ", ".join(f"{elements[i]} {float(center[i]):.3f}" for i in free if i not in (a, b, c))
    ax.set_title(
        f"x({elements[c]}) = {rest:.3f} - x({elements[a]}) - x({elements[b]})"
        + (f"; {others}" if others else ""),
        fontsize=8,
    )
    ax.legend(fontsize=7, loc="upper right")
    return True


def _closed_loop_outputs(run, result, metrics: dict, best: dict | None) -> None:  # type: ignore[no-untyped-def]
    """alloys.csv (every composition's learned properties and strength), learning_curve.csv
    (each refit's labels and uncertainty), oracle_calls.csv (each label, when and why),
    final_alloy.json (the best feasible alloy's properties with their uncertainties) and
    closed_loop.png; `metrics` gains the oracle's tally."""
    import pandas as pd

    from matforge.design.learned_properties import composition_key

    oracle = result.oracle
    learned = oracle.properties
    rows = []
    for composition, answer, strength in oracle.answers:
        p = answer.properties
        rows.append(
            {
                **{f"x_{e}": composition.get(e, 0.0) for e in oracle.elements},
                "lattice_constant_A": p.lattice_constant,
                "c11_GPa": p.c11,
                "c12_GPa": p.c12,
                "c44_GPa": p.c44,
                **{f"misfit_{e}_A3": v for e, v in p.misfit_volumes.items()},
                **{f"committee_sd_{k}": v for k, v in answer.uncertainty.items()},
                # acceptance "residual": relative error against the answer's own labels
                **{f"measured_error_{k}": v for k, v in answer.residual.items()},
                "sigma_y_MPa": strength["sigma_y"],
                "verified_sigma_y_MPa": oracle.verified.get(
                    composition_key(composition), float("nan")
                ),
                "trusted": answer.trusted,
                "max_score": answer.max_score,
                "refits": answer.rounds,
                "labels_added": answer.labels,
                "source": answer.source,
                "seconds": answer.seconds,
            }
        )
    run.write_table("alloys.csv", pd.DataFrame(rows))
    curve = pd.DataFrame(learned.curve)
    run.write_table("learning_curve.csv", curve)
    calls = pd.DataFrame(learned.oracle_calls())
    if len(calls) and calls["started"].notna().any():
        calls["elapsed_s"] = calls["started"] - calls["started"].min()
    run.write_table("oracle_calls.csv", calls)
    summary = learned.summary()
    metrics["closed_loop"] = {
        "oracle_labels": summary["labels"],
        "oracle_failed": summary["failed"],
        "direct_oracle_property_calls": summary["direct_calls"],
        "compositions": summary["compositions"],
        "untrusted": summary["untrusted"],
        "verified": oracle.verified,
        "committee_calibration_factor": summary["calibration_factor"],
        "acceptance": learned.acceptance,
        "relax_residual": learned.relax_residual,
        "newton_steps": learned.newton_steps,
        "newton_fallback": learned.newton_fallback,
        "newton_damping": learned.newton_damping,
        "reached_by_newton": summary["reached_by_newton"],
        "computed_by_oracle": summary["computed_by_oracle"],
        "database": str(learned.store.url),
    }
    if best is not None:
        key_values = {e: best[f"x_{e}"] for e in oracle.elements if best[f"x_{e}"] > 0}
        key = composition_key(key_values)
        answer = learned.answers.get(key)
        if answer is not None:
            p = answer.verified or answer.properties
            final = {
                "composition": key_values,
                "sigma_y_MPa": best["objective"],
                # computed by the oracle directly (`verify`), or the potential's answer
                "verified": key in oracle.verified or answer.source == "oracle",
                "learned": asdict(answer.properties) if answer.verified else None,
                "lattice_constant_A": p.lattice_constant,
                "elastic_GPa": {"c11": p.c11, "c12": p.c12, "c44": p.c44},
                "misfit_volumes_A3": p.misfit_volumes,
                "spread_over_realizations": p.spread,
                # the potential's own uncertainty: committee sd of each property (A, GPa,
                # A^3); empty when the oracle computed the alloy directly
                "committee_sd": answer.uncertainty,
                # acceptance "residual": each property's relative error measured against
                # the oracle's labels of the configurations the answer rests on
                "measured_error": answer.residual,
                "trusted": answer.trusted,
                "max_score": answer.max_score,
                "source": answer.source,
            }
            run.write_json("final_alloy.json", final)
            metrics["final_alloy"] = final
    if len(curve):
        plt = pyplot()
        figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        left.plot(curve["step"], curve["labels"], marker=".", label="labels")
        left.set_xlabel("refit")
        left.set_ylabel("oracle labels in the training set")
        twin = left.twinx()
        twin.semilogy(curve["step"], curve["max_score"], c="C1", marker=".", lw=0.8)
        twin.axhline(1.0, c="C1", ls="--", lw=0.8)
        twin.set_ylabel("largest uncertainty score (label above 1)", color="C1")
        if "elapsed_s" in calls:
            done = calls.dropna(subset=["elapsed_s"]).sort_values("elapsed_s")
            right.step(done["elapsed_s"], range(1, len(done) + 1), where="post")
        right.set_xlabel("time since the first oracle call (s)")
        right.set_ylabel("oracle calls")
        figure.tight_layout()
        run.save_figure("closed_loop.png", figure)
        plt.close(figure)


def write_design_run(
    result: DesignJobResult, *, map_resolution: int = 15
) -> tuple[RunDirectory, dict]:
    import pandas as pd

    plt = pyplot()

    config = result.config
    run = RunDirectory.create(config.name, config.runs_dir)
    run.write_config(config)
    history = pd.DataFrame(result.history.rows())
    run.write_table("history.csv", history)
    best = result.best_feasible()
    run.write_table("best_feasible.csv", pd.DataFrame(best))
    trace = result.history.best_feasible_trace()
    metrics: dict = {
        "strategy": config.strategy,
        "evaluations": len(result.history.x),
        "stop_reason": result.history.stop_reason,
        "feasible_evaluations": int(result.history.feasible_mask.sum()),
        "best_feasible_objective": best[0]["objective"] if best else None,
        "best_feasible_composition": (
            {e: best[0][f"x_{e}"] for e in result.history.elements} if best else None
        ),
        "best_feasible_trace": [None if torch.isnan(v) else float(v) for v in trace],
    }
    if result.feasibility is not None:
        metrics["calphad_equilibria"] = result.feasibility.evaluated
        metrics["calphad_unconverged"] = result.feasibility.unconverged
    if result.calibration is not None:
        metrics["surrogate_calibration"] = result.calibration.as_dict()
        predictions = pd.DataFrame(
            {
                "evaluation": range(1, len(result.history.x) + 1),
                "observed": result.history.objective,
                "cv_mean": result.calibration.predictions[:, 0].tolist(),
                "cv_std": result.calibration.predictions[:, 1].tolist(),
            }
        )
        run.write_table("predictions.csv", predictions)
    if hasattr(result.oracle, "properties"):
        _closed_loop_outputs(run, result, metrics, best[0] if best else None)
    run.write_metrics(metrics)

    figure, ax = plt.subplots(figsize=(6, 4))
    _convergence(ax, result)
    figure.tight_layout()
    run.save_figure("convergence.png", figure)
    plt.close(figure)
    figure, ax = plt.subplots(figsize=(7, 4))
    _compositions(ax, result)
    figure.tight_layout()
    run.save_figure("compositions.png", figure)
    plt.close(figure)
    figure, ax = plt.subplots(figsize=(6, 5))
    if _feasibility_map(ax, result, map_resolution):
        figure.tight_layout()
        run.save_figure("feasibility_slice.png", figure)
    plt.close(figure)
    return run, metrics

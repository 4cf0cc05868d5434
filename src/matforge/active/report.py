"""Files of an active-learning run: model, learning curve (CSV + PNG), metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from matforge.active.loop import ActiveResult
from matforge.core.rundir import atomic_write_bytes, atomic_write_json, pyplot, save_figure


def learning_curve_figure(curves: dict[str, pd.DataFrame], *, target: float | None = None):
    """Test force RMSE against oracle calls, one line per strategy (or run)."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 4))
    for label, frame in curves.items():
        if "test_force_rmse" in frame and frame["test_force_rmse"].notna().any():
            axis.plot(frame["oracle_calls"], frame["test_force_rmse"], "o-", ms=3, label=label)
    if target is not None:
        axis.axhline(target, color="k", ls="--", lw=0.8, label="target")
    axis.set_xlabel("oracle calls (labelled configurations)")
    axis.set_ylabel("test force RMSE (eV/A)")
    axis.set_yscale("log")
    axis.legend()
    figure.tight_layout()
    return figure


def write_active_run(result: ActiveResult, path: Path) -> dict[str, Any]:
    """Write model.pt, learning_curve.csv/.png and metrics.json into `path` (replacing the
    previous run's versions of these derived files; the database is never rewritten)."""
    from matforge.mlip.io import save_potential

    path.mkdir(parents=True, exist_ok=True)
    curve = pd.DataFrame(result.curve)
    atomic_write_bytes(
        path / "learning_curve.csv", curve.to_csv(index=False).encode(), overwrite=True
    )
    figure = learning_curve_figure({result.config.name: curve})
    save_figure(path / "learning_curve.png", figure, overwrite=True)
    pyplot().close(figure)
    save_potential(result.potential, path / "model.pt", overwrite=True)
    store = result.store
    metrics = {
        "database": store.url,
        "oracle_calls": store.count(role="train", status="labelled"),
        "failed_calls": store.count(role="train", status="failed"),
        "test_structures": store.count(role="test", status="labelled"),
        "iterations": int(curve["iteration"].max()) if len(curve) else 0,
        "final": result.curve[-1] if result.curve else {},
        "failures": result.failed,
        "stop_reason": store.metadata.get("stop_reason"),
    }
    atomic_write_json(path / "metrics.json", metrics, overwrite=True)
    return metrics

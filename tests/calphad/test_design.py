"""Composition design through the solver, checked against a brute-force grid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from matforge.calphad.design import DesignConfig, project
from matforge.cli import app
from matforge.core.config import load_config, validate_config
from matforge.core.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "examples" / "calphad_design.yaml"


def test_projection_lands_on_the_bounded_simplex() -> None:
    limits = torch.tensor([[0.1, 0.6], [0.0, 0.6], [0.1, 0.8]], dtype=torch.float64)
    x = torch.tensor([[0.9, 0.9, -0.5], [0.2, 0.3, 0.5], [0.0, 0.0, 0.0]], dtype=torch.float64)
    p = project(x, limits)
    torch.testing.assert_close(p.sum(dim=1), torch.ones(3, dtype=torch.float64))
    assert bool((p >= limits[:, 0] - 1e-12).all() and (p <= limits[:, 1] + 1e-12).all())
    torch.testing.assert_close(p[1], x[1])  # already feasible: unchanged
    torch.testing.assert_close(project(p, limits), p)
    # The projection of (0.9, 0.9, -0.5): NI at its lower bound, the rest shifted equally.
    torch.testing.assert_close(p[0], torch.tensor([0.45, 0.45, 0.1], dtype=torch.float64))


def test_design_settings_are_validated() -> None:
    base = load_config(EXAMPLE, DesignConfig).model_dump()
    with pytest.raises(ConfigError, match="either maximize"):
        validate_config({**base, "target_fraction": 0.5}, DesignConfig)
    with pytest.raises(ConfigError, match="FE is not among"):
        validate_config({**base, "bounds": {"FE": [0, 1]}}, DesignConfig)
    with pytest.raises(ConfigError, match="min_fraction"):
        validate_config({**base, "min_fraction": None}, DesignConfig)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_design_reaches_the_goal_and_beats_a_grid_search(tmp_path: Path) -> None:
    """Max Cr in single-phase FCC Co-Cr-Ni at 1200 K vs a 0.02 grid over the same box."""
    result = CliRunner().invoke(
        app,
        [
            "calphad", "design", str(EXAMPLE), "--check-grid", "0.02", "--json",
            "--set", f"runs_dir={tmp_path}", "--set", "starts=4", "--set", "steps=25",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["reached_goal"]
    assert metrics["best_phase_fraction"] >= 0.99
    composition = metrics["best_composition"]
    assert sum(composition.values()) == pytest.approx(1.0, abs=1e-9)
    assert 0.1 - 1e-9 <= composition["CO"] <= 0.6 + 1e-9
    grid = metrics["grid_check"]
    # The grid's best Cr content is within one spacing of the true optimum; gradient steps
    # on the continuous problem beat it (measured: 0.4475 against the grid's 0.44).
    assert composition["CR"] > grid["best_objective"] + 0.002
    assert composition["CR"] <= grid["best_objective"] + 0.02 + 0.005
    run = Path(metrics["run"])
    for name in ("config.yaml", "metrics.json", "history.csv", "design.png"):
        assert (run / name).is_file(), name

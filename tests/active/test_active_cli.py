"""`matforge active run`: MD exploration end to end, files, resume, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from matforge.active.config import ActiveConfig
from matforge.cli import app
from matforge.core.config import load_config

EXAMPLES = Path(__file__).parents[2] / "examples"


def _config(tmp_path: Path) -> Path:
    data = {
        "name": "cli",
        "runs_dir": str(tmp_path / "runs"),
        "structures": [{"kind": "bulk", "symbol": "Cu", "a": 3.61, "repeat": [2, 2, 2]}],
        "initial": {"count": 2, "rattle": 0.03},
        "potential": {"twojmax": 2, "rcutfac": 4.6, "radius": {"Cu": 0.5}, "weight": {"Cu": 1.0}},
        "uncertainty": {"measure": "maxvol", "lower": 1.2, "upper": 1000},
        "selection": {"batch_size": 2},
        "explore": {
            "kind": "md",
            "stages": [{"temperature": 300, "steps": 20}, {"temperature": 1200, "steps": 20}],
            "sample_every": 10,
        },
        "executor": {"kind": "serial"},
        "test_set": {
            "kind": "md",
            "stages": [{"temperature": 900, "steps": 20}],
            "frames_per_stage": 2,
        },
        "iterations": 1,
    }
    path = tmp_path / "active.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_run_writes_curve_model_and_metrics_then_resumes(tmp_path):
    config = _config(tmp_path)
    runner = CliRunner()
    first = runner.invoke(app, ["active", "run", str(config), "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    run = Path(report["run"])
    for name in (
        "active.db",
        "model.pt",
        "learning_curve.csv",
        "learning_curve.png",
        "metrics.json",
    ):
        assert (run / name).is_file(), name
    assert [c["iteration"] for c in report["curve"]] == [0, 1]
    assert report["curve"][0]["oracle_calls"] == 2
    assert report["test_structures"] == 2
    assert report["curve"][-1]["test_force_rmse"] > 0
    first_calls = report["oracle_calls"]

    changed = runner.invoke(app, ["active", "run", str(config), "--set", "fit.alpha=1e-3"])
    assert changed.exit_code != 0
    assert "different settings" in str(changed.exception) + changed.output

    more = runner.invoke(app, ["active", "run", str(config), "--set", "iterations=2", "--json"])
    assert more.exit_code == 0, more.output
    resumed = json.loads(more.stdout)
    assert [c["iteration"] for c in resumed["curve"]][:2] == [0, 1]
    assert resumed["oracle_calls"] >= first_calls
    assert resumed["curve"][:2] == report["curve"]  # the finished part is kept, not redone


def test_config_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "structures: [{kind: bulk, symbol: Cu}]\npotential: {twojmax: 2, rcutfac: 4.6, "
        "radius: {Cu: 0.5}, weight: {Cu: 1.0}}\nuncertainty: {measure: maxvol, lower: 2, "
        "upper: 1}\n"
    )
    result = CliRunner().invoke(app, ["active", "run", str(path)])
    assert result.exit_code != 0
    message = str(result.exception) + result.output
    assert "line 3" in message
    assert "upper" in message


@pytest.mark.parametrize(
    "name", ["active_cu_emt.yaml", "active_h2o_pyscf.yaml", "active_cu_gap.yaml"]
)
def test_examples_are_valid(name):
    config = load_config(EXAMPLES / name, ActiveConfig)
    assert config.iterations >= 1

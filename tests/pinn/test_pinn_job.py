"""`matforge pinn identify`: config validation, CSV errors with their line, run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from matforge.cli import app
from matforge.core.config import load_config
from matforge.core.errors import ConfigError
from matforge.pinn.job import PinnConfig, read_observations

EXAMPLES = Path(__file__).parents[2] / "examples"
BAR = EXAMPLES / "pinn_bar.yaml"
FAST = [
    "--set",
    "training.adam_steps=300",
    "--set",
    "training.lbfgs_steps=100",
    "--set",
    "uncertainty.members=2",
]


def _config(**update) -> PinnConfig:
    config = load_config(BAR, PinnConfig)
    return config.model_copy(update=update)


def test_example_configs_are_valid():
    bar = load_config(BAR, PinnConfig)
    assert bar.problem == "bar"
    assert bar.settings().n_layers == 3
    plate = load_config(EXAMPLES / "pinn_plate.yaml", PinnConfig)
    assert plate.problem == "plate"
    assert plate.plate.loading().right_edge == "roller"


def test_config_mistakes_are_named():
    with pytest.raises(ConfigError, match=r"truth\.moduli needs 3"):
        load_config(BAR, PinnConfig, ["truth.moduli=[1.0, 2.0]"])
    with pytest.raises(ConfigError, match=r"unknown settings \['adam_step'\]"):
        load_config(BAR, PinnConfig, ["training.adam_step=3"])
    with pytest.raises(ConfigError, match=r"training\.learning_rate must be a positive number"):
        load_config(BAR, PinnConfig, ["training.learning_rate=-1"])
    with pytest.raises(ConfigError, match="set the number of layers with 'layers'"):
        load_config(BAR, PinnConfig, ["training.n_layers=4"])
    with pytest.raises(ConfigError, match="needs a truth"):
        load_config(BAR, PinnConfig, ["data.source=synthetic", "truth=null"])


def test_csv_problems_name_the_column_and_line(tmp_path):
    config = _config()
    table = pd.read_csv(EXAMPLES / "data" / "pinn_bar_3layer.csv")
    text = table.astype(str)
    text.loc[6, "u_m"] = "n/a"
    bad = tmp_path / "bad.csv"
    text.to_csv(bad, index=False)
    with pytest.raises(
        ConfigError, match=r"bad\.csv, line 8: column 'u' has missing or non-numeric"
    ):
        read_observations(bad, config)
    outside = table.copy()
    outside.loc[2, "x_m"] = 1.5
    outside.to_csv(tmp_path / "outside.csv", index=False)
    with pytest.raises(
        ConfigError, match=r"outside\.csv, line 4: x = 1.5 lies outside the bar \[0.0, 1.0\]"
    ):
        read_observations(tmp_path / "outside.csv", config)
    unmapped = config.model_copy(update={"data": config.data.model_copy(update={"columns": {}})})
    with pytest.raises(ConfigError, match=r"missing column\(s\) \['x', 'u'\] for the bar problem"):
        read_observations(EXAMPLES / "data" / "pinn_bar_3layer.csv", unmapped)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("x_m,u_m\n0.1,1e-5\n0.2,2e-5,7\n")
    with pytest.raises(
        ConfigError, match=r"ragged\.csv, line 3: 3 fields, but the header \(line 1\) has 2"
    ):
        read_observations(ragged, config)
    with pytest.raises(ConfigError, match="no such file"):
        read_observations(tmp_path / "missing.csv", config)


@pytest.mark.slow
def test_identify_writes_parameters_with_uncertainty_curves_and_profile(tmp_path):
    result = CliRunner().invoke(
        app, ["pinn", "identify", str(BAR), "--set", f"runs_dir={tmp_path}", *FAST, "--json"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    run = Path(metrics["run"])
    for name in (
        "parameters.csv",
        "members.csv",
        "loss_history.csv",
        "loss_curves.png",
        "modulus_profile.png",
        "observations.csv",
        "config.yaml",
        "metrics.json",
    ):
        assert (run / name).stat().st_size > 0, name
    parameters = pd.read_csv(run / "parameters.csv")
    assert list(parameters["parameter"]) == ["E1", "E2", "E3", "y1", "y2"]
    assert (parameters["std"] > 0).all()  # bootstrap members differ
    assert (parameters["closed_form_std"] > 0).all()
    # even a short run gets within 15% (moduli) and 5% of L (interfaces) on these data
    assert metrics["moduli_err_pct"] < 15
    assert metrics["interface_err_pct"] < 5
    assert len(pd.read_csv(run / "members.csv")) == 2
    history = pd.read_csv(run / "loss_history.csv")
    assert {"member", "step", "total", "data", "pde", "end_force"} <= set(history.columns)

"""`matforge psp fit | design`: run directories, CSV input, errors naming columns and lines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from matforge.cli import app
from matforge.core.config import load_config
from matforge.core.errors import ConfigError
from matforge.psp.generator import DualPhaseSteel
from matforge.psp.job import PspConfig, read_table

EXAMPLE = Path(__file__).parents[2] / "examples" / "psp_dp_steel.yaml"
FAST = [
    "--set",
    "training.adam_steps=150",
    "--set",
    "training.lbfgs_steps=50",
    "--set",
    "ensemble.members=2",
    "--set",
    "design.grid_points=20",
]


def _csv(tmp_path: Path) -> Path:
    table = DualPhaseSteel().sample(
        150,
        np.random.default_rng(0),
        {"temperature_C": (600, 1000), "time_h": (0.1, 10), "cold_work": (0.3, 0.7)},
    )
    table = table.rename(columns={"temperature_C": "T [C]", "yield_strength_MPa": "YS"})
    path = tmp_path / "experiments.csv"
    table.to_csv(path, index=False)
    return path


def _config(tmp_path: Path, csv: Path) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["runs_dir"] = str(tmp_path / "runs")
    data["data"] = {
        "source": "csv",
        "path": str(csv),
        "columns": {"temperature_C": "T [C]", "yield_strength_MPa": "YS"},
    }
    data["design"] = {"target": 800.0, "starts": 4, "steps": 50}
    path = tmp_path / "psp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_fit_then_design_from_a_csv(tmp_path):
    config = _config(tmp_path, _csv(tmp_path))
    runner = CliRunner()
    fitted = runner.invoke(app, ["psp", "fit", str(config), *FAST[:6], "--json"])
    assert fitted.exit_code == 0, fitted.output
    metrics = json.loads(fitted.stdout)
    run = Path(metrics["run"])
    for name in ("chain.pt", "errors.csv", "parity.png", "metrics.json", "config.yaml"):
        assert (run / name).is_file(), name
    assert (metrics["mode"], metrics["members"]) == ("separate", 2)
    assert {e["link"] for e in metrics["errors"]} == {
        "process->structure",
        "structure->property",
        "chain",
    }

    designed = runner.invoke(
        app, ["psp", "design", str(config), "--set", f"design.chain={run / 'chain.pt'}", "--json"]
    )
    assert designed.exit_code == 0, designed.output
    summary = json.loads(designed.stdout)
    assert summary["predicted"]["yield_strength_MPa"] == pytest.approx(800.0, abs=5.0)
    assert "true_property" not in summary  # CSV data: no truth to check against
    assert (Path(summary["run"]) / "property_map.png").is_file()
    assert summary["uncertainty"]["yield_strength_MPa"] >= 0


@pytest.mark.slow
def test_design_on_generator_data_reports_the_truth_and_the_grid(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "psp",
            "design",
            str(EXAMPLE),
            "--set",
            f"runs_dir={tmp_path}",
            "--set",
            "data.samples=200",
            *FAST,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["grid_points"] == 20**3
    assert {"true_property", "optimum_gap_pct", "grid_seconds", "design_seconds"} <= set(summary)


def test_csv_problems_name_the_column_and_line(tmp_path):
    csv = _csv(tmp_path)
    config = load_config(_config(tmp_path, csv), PspConfig)
    text = csv.read_text().splitlines()
    header = text[0].split(",")
    row = text[3].split(",")
    row[header.index("YS")] = "n/a"
    text[3] = ",".join(row)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(text) + "\n")
    with pytest.raises(
        ConfigError, match=r"bad\.csv, line 4: column 'yield_strength_MPa' has missing"
    ):
        read_table(bad, config)
    unmapped = config.model_copy(update={"data": config.data.model_copy(update={"columns": {}})})
    with pytest.raises(ConfigError, match=r"missing column\(s\) \['temperature_C', 'yield_str"):
        read_table(csv, unmapped)


def test_example_config_is_valid():
    config = load_config(EXAMPLE, PspConfig)
    assert config.design is not None
    assert config.design.maximize


def test_damaged_chain_files_are_reported_by_name(tmp_path):
    import torch

    from matforge.psp.job import load_ensemble

    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    with pytest.raises(ConfigError, match=r"junk\.pt: not a matforge PSP chain file"):
        load_ensemble(tmp_path / "junk.pt")
    torch.save({"format": "matforge-psp-chain", "format_version": 1}, tmp_path / "empty.pt")
    with pytest.raises(ConfigError, match=r"empty\.pt: damaged model file, no 'config'"):
        load_ensemble(tmp_path / "empty.pt")
    with pytest.raises(ConfigError, match="no such matforge PSP chain file"):
        load_ensemble(tmp_path / "absent.pt")

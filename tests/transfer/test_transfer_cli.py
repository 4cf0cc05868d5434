"""`matforge transfer run|predict` end to end on a tiny budget, and its input errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from matforge.cli import app
from matforge.core.config import load_config
from matforge.transfer.job import TransferConfig

EXAMPLE = Path(__file__).parents[2] / "examples" / "transfer_mpea.yaml"
runner = CliRunner()


def _text(result) -> str:
    return " ".join(result.output.split())


def test_example_config_is_valid() -> None:
    config = load_config(EXAMPLE, TransferConfig)
    assert "scratch" in config.strategies


def test_run_and_predict(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"name: tiny\nruns_dir: {tmp_path / 'runs'}\n"
        "model: {size: 16, head: [16]}\n"
        "pretrain: {epochs: 20}\n"
        "target_training: {epochs: 10, batch_size: 8, patience: 5}\n"
        "strategies: [scratch, finetune]\nsizes: [6]\nrepeats: 2\nensemble: 2\n"
    )
    result = runner.invoke(app, ["transfer", "run", str(config), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    run = Path(metrics["run"])
    assert {"model.pt", "learning_curve.csv", "learning_curve.png", "metrics.json"} <= {
        p.name for p in run.iterdir()
    }
    assert {r["strategy"] for r in metrics["paired_differences"]} == {"scratch", "finetune"}
    formulas = tmp_path / "formulas.csv"
    formulas.write_text("formula\nAl0.5CoCrFeNiTi0.5\nCoCrFeMnNiV\nQq2Fe\n")
    bad = runner.invoke(app, ["transfer", "predict", str(run), str(formulas)])
    assert bad.exit_code == 1
    assert "line 4" in _text(bad), bad.output
    assert "--drop-bad" in _text(bad)
    out = tmp_path / "predictions.csv"
    result = runner.invoke(
        app,
        ["transfer", "predict", str(run), str(formulas), "--drop-bad", "--out", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    predicted = json.loads(result.stdout)
    assert len(predicted["predictions"]) == 2
    assert predicted["dropped"][0]["line"] == 4
    assert all(row["std"] >= 0 for row in predicted["predictions"])
    assert out.read_text().startswith("formula,prediction,std")
    again = runner.invoke(
        app, ["transfer", "predict", str(run), str(formulas), "--drop-bad", "--out", str(out)]
    )
    assert again.exit_code == 1  # never overwrites a file silently
    assert "exists" in _text(again)


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("strategies: [scratch, magic]\n")
    result = runner.invoke(app, ["transfer", "run", str(config)])
    assert result.exit_code == 1
    assert "magic" in _text(result)
    config.write_text("task: {kind: files}\n")
    result = runner.invoke(app, ["transfer", "run", str(config)])
    assert result.exit_code == 1
    assert "source and target" in _text(result)

"""`matforge xc scf|constraints` end to end, and the errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("pyscf")

from matforge.cli import app
from matforge.xc.functionals import get_functional
from matforge.xc.molecules import run_scf

runner = CliRunner()
WATER = "3\nwater\nO 0 0 0.1173\nH 0 0.7572 -0.4692\nH 0 -0.7572 -0.4692\n"


def _text(result) -> str:
    return " ".join(result.output.split())


def test_example_config_is_valid() -> None:
    from matforge.core.config import load_config
    from matforge.xc.job import XCTrainConfig

    example = Path(__file__).parents[2] / "examples" / "xc_neural.yaml"
    config = load_config(example, XCTrainConfig, [])
    assert config.reference == "PBE"
    assert config.training.epochs > 0


def test_scf_with_torch_and_libxc_functionals_agree(tmp_path: Path) -> None:
    path = tmp_path / "water.xyz"
    path.write_text(WATER)
    energies = {}
    for name in ("pbe", "libxc:PBE"):
        result = runner.invoke(app, ["xc", "scf", name, str(path), "--basis", "sto-3g", "--json"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["converged"]
        energies[name] = data["energy"]
    assert abs(energies["pbe"] - energies["libxc:PBE"]) < 1e-9
    result = runner.invoke(app, ["xc", "scf", "pbe", str(path), "--basis", "sto-3g"])
    assert "E = -75.2255" in _text(result)


def test_bad_input_is_named(tmp_path: Path) -> None:
    path = tmp_path / "water.xyz"
    path.write_text(WATER)
    result = runner.invoke(app, ["xc", "scf", "pbe", str(path), "--spin", "1"])
    assert result.exit_code == 1
    assert "10 electrons (charge 0) cannot have spin 1" in _text(result)
    result = runner.invoke(app, ["xc", "scf", "b3lyp", str(path)])
    assert result.exit_code == 1
    assert "unknown functional 'b3lyp'" in _text(result)
    result = runner.invoke(app, ["xc", "scf", "libxc:NOTAFUNCTIONAL", str(path)])
    assert result.exit_code == 1
    assert "unknown libxc functional" in _text(result)
    broken = tmp_path / "broken.xyz"
    broken.write_text("2\n\nO 0 0\n")
    result = runner.invoke(app, ["xc", "scf", "pbe", str(broken)])
    assert result.exit_code == 1
    assert "broken.xyz" in _text(result)
    assert "Traceback" not in result.output


def test_unconverged_scf_is_reported_not_a_number(tmp_path: Path) -> None:
    path = tmp_path / "water.xyz"
    path.write_text(WATER)
    result = run_scf(get_functional("lda"), path, basis="sto-3g", max_cycle=2)
    assert result["converged"] is False
    assert result["energy"] is None
    assert "did not converge in 2 cycles" in result["message"]


def test_train_eval_and_scf_with_the_learned_functional(tmp_path: Path, monkeypatch) -> None:
    """A tiny run (STO-3G, grid level 0, 3 epochs) of the real pipeline: train writes a
    functional that eval and scf load; the untrained start is SCAN, so after 0 epochs the
    learned functional's SCF energy is SCAN's."""
    import matforge.xc.data as data

    split = {"train": ["HF"], "validation": ["OH"], "test": ["H2O"]}
    monkeypatch.setattr(data, "g2_1_split", lambda seed=0, fractions=None: split)
    monkeypatch.setattr("matforge.xc.job.g2_1_split", lambda seed=0: split)
    config = tmp_path / "xc.yaml"
    config.write_text(
        f"name: tiny\nruns_dir: {tmp_path / 'runs'}\nbasis: sto-3g\ngrid_level: 0\n"
        f"cache: {tmp_path / 'cache'}\nmodel: {{hidden: 4, layers: 1}}\n"
        "training: {epochs: 3, learning_rate: 0.01, linearity: {species: [H]}}\n"
    )
    result = runner.invoke(app, ["xc", "train", str(config), "--json"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)["run"]
    result = runner.invoke(
        app, ["xc", "eval", run, "--split", "test", "--reference", "SCAN", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["functionals"]) == {"learned", "SCAN"}
    assert report["functionals"]["learned"]["mae"] is not None
    path = tmp_path / "water.xyz"
    path.write_text(WATER)
    result = runner.invoke(app, ["xc", "scf", run, str(path), "--basis", "sto-3g", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["converged"]
    result = runner.invoke(app, ["xc", "eval", str(tmp_path), "--json"])
    assert result.exit_code == 1


def test_local_hybrid_trained_on_coupled_cluster_targets(tmp_path: Path, monkeypatch) -> None:
    """The job with `model.kind: local_hybrid`, CCSD(T) targets computed into a database
    (serial executor here; Dask in tests/xc/test_xc_reference.py) and the linearity
    penalty; a rerun reuses every stored CCSD(T) energy; `xc scf` runs the saved hybrid."""
    split = {"train": ["HF"], "validation": ["OH"], "test": ["H2O"]}
    monkeypatch.setattr("matforge.xc.job.g2_1_split", lambda seed=0: split)
    config = tmp_path / "xc.yaml"
    config.write_text(
        f"name: hybrid\nruns_dir: {tmp_path / 'runs'}\nbasis: sto-3g\ngrid_level: 0\n"
        f"cache: {tmp_path / 'cache'}\nmodel: {{kind: local_hybrid, hidden: 4, layers: 1}}\n"
        "training: {epochs: 3, learning_rate: 0.01,"
        " linearity: {species: [H], fractions: [0.5], weight: 1.0}}\n"
        "reference_data: {method: ccsd(t), basis: sto-3g, frozen_core: false,"
        f" database: {tmp_path / 'cc.db'}, executor: {{kind: serial}}}}\n"
    )
    metrics = []
    for _ in range(2):
        result = runner.invoke(app, ["xc", "train", str(config), "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        metrics.append(json.loads((Path(report["run"]) / "metrics.json").read_text()))
    first, second = metrics
    assert first["targets"] == "pyscf:ccsd(t)/sto-3g"
    assert first["reference_data"]["computed"] == 5  # HF, OH, H, F, O
    assert second["reference_data"]["computed"] == 0
    linearity = first["linearity_deviation_kcal"]
    assert set(linearity["initial"]) == {"H"}
    path = tmp_path / "water.xyz"
    path.write_text(WATER)
    result = runner.invoke(
        app, ["xc", "scf", report["run"], str(path), "--basis", "sto-3g", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["converged"]

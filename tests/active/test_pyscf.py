"""PySCF as the oracle: forces consistent with energies; the water example end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule
from typer.testing import CliRunner

pytest.importorskip("pyscf", reason="PySCF (extra 'dft') not installed")

from matforge.active import PyscfOracle
from matforge.cli import app

EXAMPLE = Path(__file__).parents[2] / "examples" / "active_h2o_pyscf.yaml"


def test_pyscf_forces_are_minus_the_energy_gradient():
    oracle = PyscfOracle(basis="sto-3g")
    water = molecule("H2O")
    water.rattle(0.05, seed=1)
    labels = oracle(water)
    h = 1e-3
    for atom, axis in ((0, 2), (1, 0)):
        plus, minus = water.copy(), water.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        numeric = -(oracle(plus).energy - oracle(minus).energy) / (2 * h)
        assert labels.forces[atom, axis] == pytest.approx(numeric, abs=2e-4)
    assert abs(labels.forces.sum(axis=0)).max() < 1e-6  # no net force on a free molecule
    with pytest.raises(ValueError, match="periodic"):
        oracle(
            water.copy().__class__(
                "H2", positions=[[0, 0, 0], [0, 0, 0.74]], cell=[3] * 3, pbc=True
            )
        )


@pytest.mark.slow
def test_water_example_runs_end_to_end(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "active",
            "run",
            str(EXAMPLE),
            "--set",
            f"runs_dir={tmp_path}",
            "--set",
            "iterations=2",
            "--set",
            "executor.kind=serial",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    curve = report["curve"]
    assert [c["iteration"] for c in curve] == [0, 1, 2]
    assert curve[-1]["oracle_calls"] > curve[0]["oracle_calls"]
    assert report["failed_calls"] == 0
    # Labels are Hartree-Fock forces (eV/A); the fitted model follows them on the test set.
    assert curve[-1]["test_force_rmse"] < curve[0]["test_force_rmse"]
    assert np.isfinite(curve[-1]["test_energy_rmse"])

"""NVE with the FitSNAP Ta SNAP conserves energy (a short run; the note gives 2,000 steps)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk

from matforge.core.errors import ConfigError
from matforge.mlip.calculator import MatforgeCalculator
from matforge.mlip.lammps_files import read_snapcoeff, read_snapparam
from matforge.mlip.md import run_md
from matforge.mlip.potential import LinearModel, Potential
from matforge.mlip.snap import Bispectrum
from matforge.mlip.zbl import ZBL


@pytest.fixture(scope="module")
def ta_snap(shared_data):
    output = shared_data / "mlip" / "Ta_JCP2014" / "20May21_Standard"
    if not output.is_dir():
        pytest.skip(f"FitSNAP's Ta potential is absent from {output}")
    radius, weight, coefficients = read_snapcoeff(output / "Ta_pot.snapcoeff")
    parameters = read_snapparam(output / "Ta_pot.snapparam", radius, weight)
    model = LinearModel(1, 30)
    with torch.no_grad():
        model.coefficients.copy_(torch.tensor(coefficients["Ta"])[None])
    return Potential(Bispectrum(parameters), model, ZBL({"Ta": 73.0}, 4.0, 4.8))


def test_nve_conserves_energy_on_128_atoms_of_bcc_ta(ta_snap, tmp_path):
    atoms = bulk("Ta", "bcc", a=3.316, cubic=True).repeat(4)
    atoms.calc = MatforgeCalculator(ta_snap)
    log = run_md(
        atoms,
        ensemble="nve",
        temperature=600.0,  # equipartition brings it to about 300 K
        timestep_fs=1.0,
        steps=200,
        log_every=5,
        trajectory=tmp_path / "md.traj",
        show_progress=False,
    )
    # Measured 9.9e-6 eV/atom over these 200 steps of 1 fs (the README quotes it).
    assert log.drift_per_atom(len(atoms)) < 2e-5
    assert 150 < np.mean(log.temperature[10:]) < 450
    assert (tmp_path / "md.traj").stat().st_size > 0
    # The bcc lattice energy of this potential (-11.8 eV/atom, near Ta's cohesive energy).
    assert -12.0 < log.potential[0] / len(atoms) < -11.6


def test_nve_with_the_compiled_backend_conserves_energy(ta_snap):
    pytest.importorskip("numba", reason="the compiled backend needs numba (extra jit)")
    atoms = bulk("Ta", "bcc", a=3.316, cubic=True).repeat(4)
    ta_snap.backend = "numba"
    try:
        atoms.calc = MatforgeCalculator(ta_snap)
        log = run_md(atoms, temperature=600.0, steps=100, log_every=5, show_progress=False)
    finally:
        ta_snap.backend = "torch"
    assert log.drift_per_atom(len(atoms)) < 1e-4


def test_md_refuses_to_overwrite_a_trajectory(ta_snap, tmp_path):
    atoms = bulk("Ta", "bcc", a=3.316, cubic=True).repeat(2)
    atoms.calc = MatforgeCalculator(ta_snap)
    (tmp_path / "md.traj").write_text("keep me")
    with pytest.raises(ConfigError, match="exists"):
        run_md(atoms, steps=2, trajectory=tmp_path / "md.traj", show_progress=False)
    assert (tmp_path / "md.traj").read_text() == "keep me"

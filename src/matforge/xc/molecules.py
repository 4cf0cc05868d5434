"""Molecules for PySCF from structure files, and one self-consistent calculation.

`resolve(name)` gives what a calculation runs: a run directory of `xc train` (the
learned functional), a torch functional of matforge (`lda`, `lda_pw`, `pbe`, `scan`) or,
prefixed `libxc:`, any functional PySCF's libxc knows (`libxc:B3LYP`), so learned and
standard functionals go through the same code.
`run_scf` reports a calculation that did not converge as such (`converged: false`, no
energy), never as a number.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from matforge.core.errors import ConfigError
from matforge.xc.functionals import XCFunctional, get_functional

__all__ = ["molecule", "resolve", "run_scf"]


def resolve(name: str) -> XCFunctional | str:
    if Path(name).is_dir():
        from matforge.xc.job import load_functional

        return load_functional(name)
    if name.lower().startswith("libxc:"):
        code = name.split(":", 1)[1]
        from pyscf.dft import libxc

        try:
            libxc.parse_xc(code)
        except (KeyError, ValueError) as error:
            raise ConfigError(f"unknown libxc functional {code!r} ({error})") from None
        return code
    return get_functional(name)


def molecule(
    atoms: Any, *, basis: str, charge: int = 0, spin: int | None = None, source: str = ""
) -> Any:
    """A PySCF Mole from ASE Atoms; spin = N_alpha - N_beta (default: 0 or 1 by parity)."""
    from pyscf import gto

    where = f"{source}: " if source else ""
    electrons = int(sum(atoms.numbers)) - charge
    if electrons <= 0:
        raise ConfigError(f"{where}charge {charge} leaves {electrons} electrons")
    if spin is None:
        spin = electrons % 2
    if spin < 0 or spin > electrons or (electrons - spin) % 2:
        raise ConfigError(
            f"{where}{electrons} electrons (charge {charge}) cannot have spin {spin} "
            f"(2S = N_alpha - N_beta must have the parity of the electron count)"
        )
    entries = [
        (s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)
    ]
    try:
        return gto.M(
            atom=entries, basis=basis, charge=charge, spin=spin, unit="Angstrom", verbose=0
        )
    except (KeyError, RuntimeError, ValueError) as error:
        raise ConfigError(
            f"{where}cannot build the molecule in basis {basis!r} ({error})"
        ) from None


def run_scf(
    functional: XCFunctional | str,
    path: str | Path,
    *,
    basis: str = "def2-svp",
    charge: int = 0,
    spin: int | None = None,
    grid_level: int = 3,
    max_cycle: int = 100,
) -> dict[str, Any]:
    from matforge.mlip.data import read_structures
    from matforge.xc.pyscf_bridge import kohn_sham

    structures = read_structures(path)
    if len(structures) != 1:
        raise ConfigError(f"{path}: expected one molecule, found {len(structures)}")
    mol = molecule(structures[0], basis=basis, charge=charge, spin=spin, source=str(path))
    mf = kohn_sham(mol, functional, grid_level=grid_level)
    mf.max_cycle = max_cycle
    start = time.perf_counter()
    energy = float(mf.kernel())
    seconds = time.perf_counter() - start
    name = functional if isinstance(functional, str) else functional.name
    result: dict[str, Any] = {
        "functional": name,
        "molecule": str(path),
        "formula": structures[0].get_chemical_formula(),
        "basis": basis,
        "charge": charge,
        "spin": mol.spin,
        "converged": bool(mf.converged),
        "seconds": seconds,
    }
    if not mf.converged:
        result["energy"] = None
        result["message"] = (
            f"SCF did not converge in {max_cycle} cycles (last energy {energy:.8f} Ha, "
            "not a result)"
        )
        return result
    result["energy"] = energy
    occupied = mf.mo_occ > 0
    mo_energy = mf.mo_energy
    if occupied.ndim == 2:  # UKS: the highest occupied over both spins
        result["homo"] = float(
            max(mo_energy[s][occupied[s]].max() for s in (0, 1) if occupied[s].any())
        )
    else:
        result["homo"] = float(mo_energy[occupied].max())
    return result

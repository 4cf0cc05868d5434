"""Reference data: the G2-1 set (55 molecules, ASE's `ase.data.g2_1`: geometries, spins,
and experimental atomization energies extrapolated to 0 K without zero-point energy, in
kcal/mol), its atoms, and a fixed split of the molecules into train / validation / test;
the rest of the G2 collection (`ase.collections.g2`, 148 molecules: geometries and spins,
no experimental energies here) as extra training molecules labelled by a reference method
(`matforge.xc.reference`).

The split is by molecule and fixed by a seed; `test` molecules are never used for
training or for choosing settings (`benchmarks/xc_g2.py` reports on them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matforge.core.errors import ConfigError

__all__ = [
    "System",
    "atom_counts",
    "atomization_energy",
    "g2_1_atoms",
    "g2_1_molecules",
    "g2_1_split",
    "g2_extra_molecules",
]


@dataclass(frozen=True)
class System:
    name: str
    symbols: tuple[str, ...]
    positions: tuple[tuple[float, float, float], ...]  # Angstrom
    spin: int  # 2S
    charge: int = 0

    def atoms_string(self) -> str:
        return "; ".join(
            f"{s} {x:.8f} {y:.8f} {z:.8f}"
            for s, (x, y, z) in zip(self.symbols, self.positions, strict=True)
        )


def _system(name: str) -> System:
    from ase.data import g2_1

    entry = g2_1.data[name]
    symbols = tuple(g2_1.string2symbols(entry["symbols"]))
    positions = entry.get("positions") or [[0.0, 0.0, 0.0]]
    magmoms = entry.get("magmoms")
    spin = round(sum(magmoms)) if magmoms else 0
    return System(name, symbols, tuple(tuple(map(float, p)) for p in positions), spin)


def g2_1_molecules() -> list[System]:
    from ase.data import g2_1

    return [_system(name) for name in g2_1.molecule_names]


def g2_1_atoms() -> list[System]:
    from ase.data import g2_1

    return [_system(name) for name in g2_1.atom_names]


def g2_extra_molecules(max_heavy_atoms: int = 2) -> list[System]:
    """G2 molecules outside G2-1 with at most `max_heavy_atoms` atoms heavier than He
    (sorted by name): extra training molecules, never in a G2-1 split."""
    from ase.collections import g2
    from ase.data import g2_1

    out = []
    for name in sorted(g2.names):
        atoms = g2[name]
        if name in g2_1.data or len(atoms) < 2 or (atoms.numbers > 2).sum() > max_heavy_atoms:
            continue
        spin = round(float(atoms.get_initial_magnetic_moments().sum()))
        positions = tuple(tuple(map(float, p)) for p in atoms.positions)
        out.append(System(name, tuple(atoms.get_chemical_symbols()), positions, spin))
    return out


def atom_counts(name: str) -> dict[str, int]:
    """Atoms per element of a G2 molecule (G2-1 or the rest of the G2 collection)."""
    from ase.collections import g2
    from ase.data import g2_1

    if name in g2_1.data:
        symbols = g2_1.string2symbols(g2_1.data[name]["symbols"])
    elif name in g2.names:
        symbols = g2[name].get_chemical_symbols()
    else:
        raise ConfigError(f"{name!r} is not a G2 molecule")
    counts: dict[str, int] = {}
    for symbol in symbols:
        counts[symbol] = counts.get(symbol, 0) + 1
    return counts


def atomization_energy(name: str) -> float:
    """Experimental atomization energy (kcal/mol, 0 K, no zero-point energy)."""
    from ase.data import g2_1

    if name not in g2_1.molecule_names:
        raise ConfigError(f"{name!r} is not a G2-1 molecule")
    return float(g2_1.get_atomization_energy(name))


def g2_1_split(
    seed: int = 0, fractions: tuple[float, float, float] = (0.5, 0.2, 0.3)
) -> dict[str, list[str]]:
    """Molecule names in train / validation / test (a seeded permutation)."""
    from ase.data import g2_1

    if abs(sum(fractions) - 1) > 1e-9 or min(fractions) < 0:
        raise ConfigError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    names = list(g2_1.molecule_names)
    order = np.random.default_rng(seed).permutation(len(names))
    n_train = round(fractions[0] * len(names))
    n_validation = round(fractions[1] * len(names))
    picked = [names[i] for i in order]
    return {
        "train": sorted(picked[:n_train]),
        "validation": sorted(picked[n_train : n_train + n_validation]),
        "test": sorted(picked[n_train + n_validation :]),
    }

"""Alloy properties computed atomistically: lattice constant, cubic elastic constants and
misfit volumes of a random FCC solid solution, with any ASE calculator.

For a composition, `alloy_properties` builds random FCC supercells (`size`^3 conventional
cells, species placed at random in the proportions of the composition, rounded to whole
atoms), and on each:

- relaxes the cell shape and volume and the atomic positions (`UnitCellFilter` + BFGS)
  -> volume per atom and the lattice constant of the average cubic cell;
- applies strains +-e to the relaxed cell (normal xx, yy, zz; engineering shear yz, xz,
  xy), relaxes positions at fixed cell, and takes C_ij = d sigma_i / d e_j by central
  differences; the cubic constants average the symmetry-equivalent entries (C11 over
  11/22/33, C12 over 12/13/23/21/31/32, C44 over 44/55/66), which also averages out the
  random cell's small anisotropy;
- measures misfit volumes by swaps: replacing one atom of element m by element n and
  relaxing again changes the cell volume by dV(m -> n) = dv/dc_n - dv/dc_m (v the volume
  per atom, c the composition), so with a reference element r and D_n = mean dV(r -> n),
  the apparent volumes of Varvenne & Curtin are V_n = v + sum_m c_m (D_n - D_m) and the
  misfit volumes dV_n = V_n - v (sum_n c_n dV_n = 0 by construction). Several sites are
  swapped per element and averaged.

Results are averaged over `structures` random supercells; the spread is reported, so a
caller can see how converged the average is. `calls` counts energy/force evaluations
(the cost of the oracle). Units: A, A^3, GPa.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms, units

from matforge.core.errors import ConfigError

__all__ = [
    "AlloyProperties",
    "RelaxationError",
    "SupercellSpec",
    "alloy_properties",
    "random_fcc_supercell",
    "vegard_lattice_constant",
]

CalculatorFactory = Callable[[], Any]
#: Called with (step, relaxed configuration) after every relaxation, step one of "cell",
#: "strain", "swap": the configurations a property depends on, e.g. for an uncertainty check.
Observer = Callable[[str, Atoms], None]


@dataclass(frozen=True)
class SupercellSpec:
    size: int = 3  # conventional cubic cells per edge: 4 size^3 atoms
    structures: int = 2  # random realizations averaged
    swaps: int = 2  # sites swapped per element for the misfit volumes
    strain: float = 5e-3
    fmax: float = 1e-3  # eV/A, relaxation convergence
    max_steps: int = 300
    seed: int = 0

    def __post_init__(self) -> None:
        if self.size < 1 or self.structures < 1 or self.swaps < 1:
            raise ConfigError("size, structures and swaps must be >= 1")
        if not 0 < self.strain < 0.05 or self.fmax <= 0:
            raise ConfigError("strain must lie in (0, 0.05) and fmax be > 0")


@dataclass
class AlloyProperties:
    composition: dict[str, float]
    lattice_constant: float
    volume_per_atom: float
    c11: float
    c12: float
    c44: float
    misfit_volumes: dict[str, float]
    spread: dict[str, float] = field(default_factory=dict)  # std over structures
    atoms: int = 0
    calls: int = 0

    @property
    def shear_modulus(self) -> float:
        """Isotropic shear modulus as Varvenne & Curtin take it: sqrt(C44 (C11 - C12) / 2)."""
        return float(np.sqrt(self.c44 * (self.c11 - self.c12) / 2))

    @property
    def poisson_ratio(self) -> float:
        """Isotropic Poisson ratio from the Voigt bulk modulus and the shear modulus above."""
        bulk = (self.c11 + 2 * self.c12) / 3
        mu = self.shear_modulus
        return float((3 * bulk - 2 * mu) / (2 * (3 * bulk + mu)))


class RelaxationError(RuntimeError):
    """A relaxation that did not converge; `atoms` is where it stopped."""

    def __init__(self, message: str, atoms: Atoms) -> None:
        super().__init__(message)
        self.atoms = atoms


class _Counter:
    """Wraps a calculator factory; counts the energy/force evaluations of its products."""

    def __init__(self, factory: CalculatorFactory) -> None:
        self.factory = factory
        self.calls = 0

    def attach(self, atoms: Atoms) -> Atoms:
        calculator = self.factory()
        original = calculator.calculate
        counter = self

        def calculate(*args: Any, **kwargs: Any) -> Any:
            counter.calls += 1
            return original(*args, **kwargs)

        calculator.calculate = calculate
        atoms.calc = calculator
        return atoms


def _normalized(composition: Mapping[str, float]) -> dict[str, float]:
    if not composition or any(v < 0 for v in composition.values()):
        raise ConfigError(f"composition needs non-negative fractions, got {dict(composition)}")
    total = sum(composition.values())
    if total <= 0:
        raise ConfigError("composition fractions sum to zero")
    return {e: v / total for e, v in composition.items() if v > 0}


def vegard_lattice_constant(composition: Mapping[str, float], default: float = 3.6) -> float:
    """The FCC lattice constant by Vegard's law from the elements' own (ASE's reference
    states; `default` for an element that is not FCC there): a starting point that keeps
    relaxations short."""
    from ase.data import atomic_numbers, reference_states

    fractions = _normalized(composition)
    total = 0.0
    for element, fraction in fractions.items():
        state = reference_states[atomic_numbers[element]] or {}
        total += fraction * (state.get("a", default) if state.get("symmetry") == "fcc" else default)
    return total


def random_fcc_supercell(
    composition: Mapping[str, float], lattice_constant: float, size: int, seed: int
) -> Atoms:
    """An FCC supercell (size^3 conventional cells) with species at random sites, counts
    rounded to whole atoms (largest remainders), at least one atom of every element."""
    from ase.build import bulk

    fractions = _normalized(composition)
    atoms = bulk("Cu", "fcc", a=lattice_constant, cubic=True).repeat(size)
    n = len(atoms)
    if len(fractions) > n:
        raise ConfigError(f"{len(fractions)} elements do not fit in {n} sites")
    exact = {e: f * n for e, f in fractions.items()}
    counts = {e: max(1, int(np.floor(v))) for e, v in exact.items()}
    by_remainder = sorted(exact, key=lambda e: exact[e] - np.floor(exact[e]), reverse=True)
    index = 0
    while sum(counts.values()) < n:
        counts[by_remainder[index % len(by_remainder)]] += 1
        index += 1
    while sum(counts.values()) > n:
        largest = max(counts, key=counts.get)  # type: ignore[arg-type]
        counts[largest] -= 1
    symbols = [e for e, k in counts.items() for _ in range(k)]
    np.random.default_rng(seed).shuffle(symbols)
    atoms.set_chemical_symbols(symbols)
    return atoms


RELAXATION = "UnitCellFilter+BFGS"  # what `_relax` runs: part of a cached result's identity


def _relax(atoms: Atoms, spec: SupercellSpec, *, cell: bool) -> Atoms:
    from ase.filters import UnitCellFilter
    from ase.optimize import BFGS
    from threadpoolctl import threadpool_limits

    # UnitCellFilter, not FrechetCellFilter: the latter spent a third of the relaxation
    # time in scipy's logm of a 3x3 matrix and took as many steps on these cells (EMT,
    # 32-atom Al-Cu-Ni-Pd: 1,563 calls either way, 19.5 vs 29.7 s; C_ij agree to 8e-5,
    # misfit volumes to 5e-3 A^3, i.e. within the fmax tolerance)
    target = UnitCellFilter(atoms) if cell else atoms
    optimizer = BFGS(target, logfile=None)
    # BFGS's and the cell filter's matrices are ~100 x 100: BLAS threads only contend
    # (measured: a 105 x 105 eigh at 78 ms with threads on a busy 2-core machine)
    with threadpool_limits(limits=1, user_api="blas"):
        converged = optimizer.run(fmax=spec.fmax, steps=spec.max_steps)
    if not converged:
        raise RelaxationError(
            f"relaxation of a {len(atoms)}-atom cell did not converge to fmax {spec.fmax} "
            f"eV/A in {spec.max_steps} steps",
            atoms.copy(),
        )
    return atoms


def _observed(observe: Observer | None, step: str, atoms: Atoms, **tags: Any) -> None:
    """Shows `observe` a copy of a relaxed configuration, tagged in `atoms.info` with what
    it is for (realization; strain component and sign; swapped-in element)."""
    if observe is not None:
        copy = atoms.copy()
        copy.info.update(tags)
        observe(step, copy)


def _elastic(
    atoms: Atoms,
    counter: _Counter,
    spec: SupercellSpec,
    observe: Observer | None = None,
    realization: int = 0,
) -> tuple[float, float, float]:
    """Cubic C11, C12, C44 (GPa) by central differences of the stress, positions relaxed."""
    base = atoms.cell.array.copy()
    columns = []
    for component in range(6):
        stresses = []
        for sign in (1, -1):
            strain = np.zeros((3, 3))
            e = sign * spec.strain
            if component < 3:
                strain[component, component] = e
            else:
                i, j = [(1, 2), (0, 2), (0, 1)][component - 3]
                strain[i, j] = strain[j, i] = e / 2  # engineering shear e
            strained = atoms.copy()
            strained.set_cell(base @ (np.eye(3) + strain), scale_atoms=True)
            counter.attach(strained)
            _relax(strained, spec, cell=False)
            _observed(
                observe,
                "strain",
                strained,
                realization=realization,
                component=component,
                sign=sign,
            )
            stresses.append(np.asarray(strained.get_stress(voigt=True)))
        columns.append((stresses[0] - stresses[1]) / (2 * spec.strain))
    matrix = np.array(columns).T / units.GPa  # C[i, j] = d sigma_i / d e_j
    c11 = float(np.mean(np.diag(matrix)[:3]))
    c12 = float(np.mean([matrix[i, j] for i in range(3) for j in range(3) if i != j]))
    c44 = float(np.mean(np.diag(matrix)[3:]))
    return c11, c12, c44


def _misfits(
    atoms: Atoms,
    fractions: dict[str, float],
    counter: _Counter,
    spec: SupercellSpec,
    seed: int,
    observe: Observer | None = None,
    realization: int = 0,
) -> dict[str, float]:
    elements = list(fractions)
    volume = atoms.get_volume()
    reference = max(fractions, key=fractions.get)  # type: ignore[arg-type]
    symbols = np.array(atoms.get_chemical_symbols())
    rng = np.random.default_rng(seed)
    sites = rng.permutation(np.flatnonzero(symbols == reference))[: spec.swaps]
    shift = {reference: 0.0}
    for element in elements:
        if element == reference:
            continue
        changes = []
        for site in sites:
            swapped = atoms.copy()
            swapped.symbols[site] = element
            counter.attach(swapped)
            _relax(swapped, spec, cell=True)
            _observed(observe, "swap", swapped, realization=realization, element=element)
            changes.append(swapped.get_volume() - volume)
        shift[element] = float(np.mean(changes))  # = dv/dc_n - dv/dc_ref
    return {n: sum(fractions[m] * (shift[n] - shift[m]) for m in elements) for n in elements}


def alloy_properties(
    composition: Mapping[str, float],
    calculator: CalculatorFactory,
    spec: SupercellSpec | None = None,
    *,
    lattice_guess: float | None = None,
    elastic: bool = True,
    misfit: bool = True,
    observe: Observer | None = None,
) -> AlloyProperties:
    """Properties of the random FCC solid solution `composition` (see module docstring).
    `calculator()` makes a fresh ASE calculator (EMT, a trained potential, ...);
    `elastic` / `misfit` False skip those steps (their values are NaN); `observe` sees
    every relaxed configuration. Relaxations start from `lattice_guess` (default: Vegard's
    law over the elements' FCC lattice constants)."""
    spec = spec or SupercellSpec()
    fractions = _normalized(composition)
    if lattice_guess is None:
        lattice_guess = vegard_lattice_constant(fractions)
    counter = _Counter(calculator)
    records: list[dict[str, float]] = []
    atom_count = 0
    for index in range(spec.structures):
        seed = spec.seed + index
        atoms = random_fcc_supercell(fractions, lattice_guess, spec.size, seed)
        atom_count = len(atoms)
        counter.attach(atoms)
        _relax(atoms, spec, cell=True)
        _observed(observe, "cell", atoms, realization=index)
        v = atoms.get_volume() / len(atoms)
        c11, c12, c44 = _elastic(atoms, counter, spec, observe, index) if elastic else (np.nan,) * 3
        record = {"volume_per_atom": v, "c11": c11, "c12": c12, "c44": c44}
        if len(fractions) > 1 and misfit:
            misfits = _misfits(atoms, fractions, counter, spec, seed, observe, index)
            record.update({f"misfit:{e}": value for e, value in misfits.items()})
        records.append(record)
    mean = {k: float(np.mean([r[k] for r in records])) for k in records[0]}
    spread = {
        k: float(np.std([r[k] for r in records], ddof=1)) if len(records) > 1 else 0.0
        for k in records[0]
    }
    volume = mean["volume_per_atom"]
    return AlloyProperties(
        composition=fractions,
        lattice_constant=float((4 * volume) ** (1 / 3)),
        volume_per_atom=volume,
        c11=mean["c11"],
        c12=mean["c12"],
        c44=mean["c44"],
        misfit_volumes={
            e: mean.get(f"misfit:{e}", 0.0 if len(fractions) == 1 else np.nan) for e in fractions
        },
        spread=spread,
        atoms=atom_count,
        calls=counter.calls,
    )

"""Piecewise linearity in the electron number, as a training signal.

The exact E(N) is a straight line between integers (Perdew, Parr, Levy & Balduz 1982);
semilocal functionals bend it below the line (delocalization error). A `FractionalSeries`
holds fixed densities of a species at N + q electrons, q in (0, 1), from the reference
functional's SCF with the frontier orbital fractionally occupied, and the integer ends
N and N + 1. On these densities a functional's energies are first-order exact, like
every fixed-density energy in `matforge.xc.training`, and

    deviation(q) = E(N + q) - (1 - q) E(N) - q E(N + 1)

is its departure from the line (0 for the exact functional). `linearity_penalty` is the
mean squared deviation in kcal/mol: DM21's fractional-charge constraint, imposed on
fixed densities.

Species are atoms or cations named "H", "He+", "Li", "C", "Na+": the named species is
the N + 1 end, the cation with one electron fewer the N end (no electrons for "H" and
"He+": E(0) = 0). Ground-state spins follow Hund's rules for the first 18 elements.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from matforge.core.errors import ConfigError
from matforge.xc.data import System
from matforge.xc.functionals import XCFunctional
from matforge.xc.training import HARTREE_KCAL, FixedDensity, cached_fixed_density, prepare_one

__all__ = [
    "FractionalSeries",
    "hund_spin",
    "linearity_deviations",
    "linearity_penalty",
    "prepare_fractional",
]

# 2S of the ground state of an atom or ion with n electrons (n = 1 .. 18)
_HUND = (1, 0, 1, 0, 1, 2, 3, 2, 1, 0, 1, 0, 1, 2, 3, 2, 1, 0)
_SPECIES = re.compile(r"^([A-Z][a-z]?)(\+*)$")


def hund_spin(electrons: int) -> int:
    if not 0 <= electrons <= len(_HUND):
        raise ConfigError(f"spins are tabulated for 0 to {len(_HUND)} electrons, got {electrons}")
    return 0 if electrons == 0 else _HUND[electrons - 1]


def _parse(species: str) -> tuple[str, int, int]:
    """(element, charge of the N + 1 end, its electron count)."""
    from ase.data import atomic_numbers

    match = _SPECIES.match(species)
    if match is None or match.group(1) not in atomic_numbers:
        raise ConfigError(
            f"fractional species {species!r}: expected an element symbol with optional "
            "'+' signs, e.g. 'H', 'He+', 'Li'"
        )
    charge = len(match.group(2))
    electrons = atomic_numbers[match.group(1)] - charge
    if electrons < 1:
        raise ConfigError(f"fractional species {species!r} has no electron")
    hund_spin(electrons)  # raises beyond the table
    return match.group(1), charge, electrons


def _atom(element: str, charge: int, electrons: int, name: str) -> System:
    return System(name, (element,), ((0.0, 0.0, 0.0),), hund_spin(electrons), charge)


def _frontier_occupations(alpha: int, beta: int, q: float) -> Callable[[np.ndarray], np.ndarray]:
    """Aufbau occupations of `alpha` and `beta` electrons, the highest one (alpha when
    alpha > beta, else beta) occupied by q."""
    channel = 0 if alpha > beta else 1

    def occupations(mo_energy: np.ndarray) -> np.ndarray:
        energies = np.asarray(mo_energy)
        occ = np.zeros_like(energies)
        for spin, count in ((0, alpha), (1, beta)):
            order = np.argsort(energies[spin], kind="stable")
            occ[spin, order[:count]] = 1.0
            if spin == channel:
                occ[spin, order[count - 1]] = q
        return occ

    return occupations


@dataclass
class FractionalSeries:
    species: str
    fractions: tuple[float, ...]
    points: list[FixedDensity]  # at N + q, one per fraction
    upper: FixedDensity  # N + 1 electrons
    lower: FixedDensity | None  # N electrons; None when N = 0 (E = 0)


def prepare_fractional(
    species: Sequence[str],
    cache: str | Path,
    *,
    fractions: Sequence[float] = (0.25, 0.5, 0.75),
    reference: str = "PBE",
    basis: str = "def2-svp",
    grid_level: int = 2,
    exact_exchange: bool = False,
    progress: Callable[[str, float], None] | None = None,
) -> list[FractionalSeries]:
    """Fixed densities for the fractional series of each species (cached like `prepare`)."""
    if not fractions or not all(0 < q < 1 for q in fractions):
        raise ConfigError(f"fractions must lie strictly between 0 and 1, got {list(fractions)}")
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    out = []

    def cached(name: str, compute: Callable[[], FixedDensity]) -> FixedDensity:
        start = time.perf_counter()
        suffix = "-exx" if exact_exchange else ""
        path = cache / f"{name}-{reference}-{basis}-{grid_level}{suffix}.pt"
        fixed, computed = cached_fixed_density(path, compute, name)
        if computed and progress is not None:
            progress(name, time.perf_counter() - start)
        return fixed

    settings = {
        "reference": reference,
        "basis": basis,
        "grid_level": grid_level,
        "exact_exchange": exact_exchange,
    }
    for name in species:
        element, charge, electrons = _parse(name)
        upper_system = _atom(element, charge, electrons, name)
        upper = cached(name, lambda s=upper_system: prepare_one(s, **settings))
        lower = None
        if electrons > 1:
            lower_system = _atom(
                element, charge + 1, electrons - 1, f"{element}{'+' * (charge + 1)}"
            )
            lower = cached(lower_system.name, lambda s=lower_system: prepare_one(s, **settings))
        spin = upper_system.spin
        alpha, beta = (electrons + spin) // 2, (electrons - spin) // 2
        points = []
        for q in fractions:
            label = f"{name}@{q:.3f}"
            system = System(label, (element,), ((0.0, 0.0, 0.0),), spin, charge)
            occupations = _frontier_occupations(alpha, beta, q)
            points.append(
                cached(
                    label,
                    lambda s=system, o=occupations: prepare_one(s, occupations=o, **settings),
                )
            )
        out.append(FractionalSeries(name, tuple(fractions), points, upper, lower))
    return out


def linearity_deviations(functional: XCFunctional, series: FractionalSeries) -> torch.Tensor:
    """E(N + q) - (1 - q) E(N) - q E(N + 1) per fraction, Hartree (differentiable)."""
    upper = series.upper.energy(functional)
    lower = series.lower.energy(functional) if series.lower is not None else torch.zeros(())
    return torch.stack(
        [
            point.energy(functional) - (1 - q) * lower - q * upper
            for q, point in zip(series.fractions, series.points, strict=True)
        ]
    )


def linearity_penalty(functional: XCFunctional, series: Sequence[FractionalSeries]) -> torch.Tensor:
    """Mean squared deviation from piecewise linearity over every point, (kcal/mol)^2."""
    deviations = torch.cat([linearity_deviations(functional, s) for s in series])
    return ((deviations * HARTREE_KCAL) ** 2).mean()

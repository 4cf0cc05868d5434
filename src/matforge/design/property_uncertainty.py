"""How far a committee of linear potentials disagrees on the properties themselves.

A configuration's stress spread overstates the uncertainty of an elastic constant or a
misfit volume: those are differences (stress at +e minus stress at -e, volume of a swapped
cell minus the parent's), and a committee member that is off on one configuration is off
by nearly as much on its neighbour. `property_spread` propagates each member's stress on
the configurations `design.atomistic.alloy_properties` relaxed (tagged there: realization,
strain component and sign, swapped-in element) to its own estimate of the properties, to
first order about the configurations the fitted potential relaxed:

- C_ij: the member's stress difference over the strain pair, as `alloy_properties` does;
- volumes: a member whose pressure on a relaxed cell is dP would relax it to
  V (1 + dP / B), B = (C11 + 2 C12) / 3; the lattice constant and the misfit volumes follow
  from those volumes as in `alloy_properties`.

Each member's deviation from the committee mean gives the standard deviation of every
quantity (ddof 1); the relaxation of the atoms' positions under each member is not redone
(a second-order change).

`property_residual` runs the same propagation on the difference between the oracle's
stresses on those configurations (their labels) and the potential's own: the error of each
property that comes from the potential's stresses, measured rather than estimated. What it
leaves out is that the oracle would relax the atoms' positions a little differently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from matforge.design.atomistic import (
    AlloyProperties,
    CalculatorFactory,
    Observer,
    SupercellSpec,
    alloy_properties,
)

__all__ = [
    "DEFAULT_TOLERANCES",
    "QUANTITIES",
    "property_deviations",
    "property_residual",
    "property_spread",
    "relative_spread",
    "relaxed_residual",
]

QUANTITIES = ("lattice_constant", "c11", "c12", "c44", "misfit")
# relative; misfit: of the alloy's rms misfit (the closed-loop issue's tolerances)
DEFAULT_TOLERANCES = {
    "lattice_constant": 0.002,
    "c11": 0.05,
    "c12": 0.05,
    "c44": 0.05,
    "misfit": 0.10,
}


def property_spread(
    properties: AlloyProperties,
    visited: Sequence[Atoms],
    stresses: np.ndarray,
    spec: SupercellSpec,
) -> dict[str, float]:
    """Committee standard deviations of the properties: lattice constant (A), C11, C12,
    C44 (GPa) and, per element, the misfit volume (A^3, keys ``misfit:<element>``).
    `stresses` (configurations, members, 6): each member's stress on `visited` in GPa, ASE
    convention (Voigt xx yy zz yz xz xy)."""
    stresses = _checked(stresses, len(visited))
    deviation = stresses - stresses.mean(axis=1, keepdims=True)
    changes = property_deviations(properties, visited, deviation, spec)
    return {key: float(np.std(values, ddof=1)) for key, values in changes.items()}


def property_residual(
    properties: AlloyProperties,
    visited: Sequence[Atoms],
    predicted: np.ndarray,
    reference: np.ndarray,
    spec: SupercellSpec,
) -> dict[str, float]:
    """How much each property (keys as `property_spread`) changes, to first order, when the
    potential's stresses on `visited` (`predicted`, (configurations, 6), GPa) are replaced
    by the oracle's (`reference`, same shape): signed, in the property's unit."""
    predicted = _checked(np.asarray(predicted, dtype=float)[:, None, :], len(visited))
    reference = _checked(np.asarray(reference, dtype=float)[:, None, :], len(visited))
    changes = property_deviations(properties, visited, reference - predicted, spec)
    return {key: float(values[0]) for key, values in changes.items()}


def _checked(stresses: np.ndarray, configurations: int) -> np.ndarray:
    stresses = np.asarray(stresses, dtype=float)
    if stresses.ndim != 3 or stresses.shape[0] != configurations or stresses.shape[2] != 6:
        raise ValueError(f"stresses must be ({configurations}, members, 6), got {stresses.shape}")
    return stresses


def property_deviations(
    properties: AlloyProperties,
    visited: Sequence[Atoms],
    deviation: np.ndarray,
    spec: SupercellSpec,
) -> dict[str, np.ndarray]:
    """The first-order change of each property (keys as `property_spread`; one value per
    member) for stress deviations (configurations, members, 6) in GPa on `visited`,
    averaged over the realizations as `alloy_properties` averages the properties."""
    members = deviation.shape[1]
    bulk = (properties.c11 + 2 * properties.c12) / 3
    fractions = properties.composition
    realizations = sorted({int(a.info.get("realization", 0)) for a in visited})
    per_realization = []
    for realization in realizations:
        mine = [i for i, a in enumerate(visited) if a.info.get("realization", 0) == realization]
        found: dict[str, np.ndarray] = {}
        columns: dict[tuple[int, int], np.ndarray] = {}
        cell = None
        swaps: dict[str, list[np.ndarray]] = {}
        for i in mine:
            atoms, step = visited[i], visited[i].info.get("step")
            if step == "strain":
                columns[(atoms.info["component"], atoms.info["sign"])] = deviation[i]
            elif step == "cell":
                cell = i
            elif step == "swap":
                swaps.setdefault(atoms.info["element"], []).append(i)
        if len(columns) == 12:
            matrix = np.stack(
                [(columns[(c, 1)] - columns[(c, -1)]) / (2 * spec.strain) for c in range(6)],
                axis=-1,
            )  # (M, 6 stress, 6 strain)
            diagonal = np.diagonal(matrix, axis1=1, axis2=2)
            off = [matrix[:, i, j] for i in range(3) for j in range(3) if i != j]
            found["c11"] = diagonal[:, :3].mean(axis=1)
            found["c12"] = np.mean(off, axis=0)
            found["c44"] = diagonal[:, 3:].mean(axis=1)
        if cell is not None and bulk > 0:

            def volume_change(i: int) -> np.ndarray:
                pressure = -deviation[i, :, :3].mean(axis=1)  # GPa, per member
                return visited[i].get_volume() * pressure / bulk

            base = volume_change(cell)
            found["lattice_constant"] = (
                properties.lattice_constant * base / (3 * visited[cell].get_volume())
            )
            if swaps and len(fractions) > 1:
                shift = {e: np.zeros(members) for e in fractions}
                for element, indices in swaps.items():
                    shift[element] = np.mean([volume_change(i) - base for i in indices], axis=0)
                for n in fractions:
                    found[f"misfit:{n}"] = sum(
                        fractions[m] * (shift[n] - shift[m]) for m in fractions
                    )
        per_realization.append(found)
    keys = set.intersection(*(set(f) for f in per_realization)) if per_realization else set()
    return {key: np.mean([f[key] for f in per_realization], axis=0) for key in sorted(keys)}


def relative_spread(properties: AlloyProperties, spread: dict[str, float]) -> dict[str, float]:
    """`property_spread` relative to the property: lattice constant, C11, C12, C44, and
    the largest misfit-volume spread over the alloy's rms misfit
    sqrt(sum_n c_n dV_n^2) (single misfits cross zero)."""
    out = {}
    for key in ("lattice_constant", "c11", "c12", "c44"):
        value = getattr(properties, key)
        if key in spread and value:
            out[key] = spread[key] / abs(value)
    misfits = properties.misfit_volumes
    rms = float(np.sqrt(sum(c * misfits[e] ** 2 for e, c in properties.composition.items())))
    spreads = [spread[k] for k in spread if k.startswith("misfit:")]
    if spreads and rms > 0:
        out["misfit"] = max(spreads) / rms
    return out


class _Corrected(Calculator):
    """A calculator plus constant force (eV/A, per atom) and stress (eV/A^3, Voigt)
    corrections. The energy is left as is: ASE's BFGS and cell filter step on forces and
    stress only."""

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, inner: Any, forces: np.ndarray, stress: np.ndarray) -> None:
        super().__init__()
        self.inner, self.forces, self.stress = inner, forces, stress

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        super().calculate(atoms, properties, system_changes)
        self.inner.calculate(self.atoms, properties or ["energy"], system_changes)
        results = dict(self.inner.results)
        results["forces"] = results["forces"] + self.forces
        if "stress" in results:
            results["stress"] = results["stress"] + self.stress
        self.results = results


def corrected_properties(
    composition: Mapping[str, float],
    visited: Sequence[Atoms],
    forces: Sequence[np.ndarray],
    stresses: np.ndarray,
    calculator: CalculatorFactory,
    spec: SupercellSpec,
    observe: Observer | None = None,
) -> AlloyProperties:
    """`alloy_properties(composition, calculator, spec)` with every relaxation redone under
    the calculator plus constant corrections: the oracle's forces (`forces`, eV/A, one
    (atoms, 3) array per configuration) and stresses (`stresses`, (configurations, 6),
    eV/A^3, ASE's Voigt order) minus the calculator's own, on `visited` (the configurations
    an earlier run relaxed to, in the order it relaxed them). One Newton step toward the
    oracle's relaxed states with the calculator's Hessian; at a fixed point (the oracle's
    forces and stresses vanish on `visited`) these are the oracle's own properties.
    `observe` sees the configurations relaxed under the corrections (as
    `alloy_properties`'s): labelled by the oracle, they are the next step's input. Raises
    `RelaxationError` when a corrected relaxation does not converge."""
    if len(forces) != len(visited) or np.shape(stresses) != (len(visited), 6):
        raise ValueError(
            f"need forces and stresses for each of the {len(visited)} configurations, got "
            f"{len(forces)} and {np.shape(stresses)}"
        )
    corrections = []
    for atoms, force, stress in zip(visited, forces, stresses, strict=True):
        probe = atoms.copy()
        probe.calc = calculator()
        corrections.append(
            (
                np.asarray(force) - probe.get_forces(),
                np.asarray(stress) - probe.get_stress(voigt=True),
            )
        )
    made = iter(corrections)

    def corrected() -> _Corrected:
        # alloy_properties asks for a calculator once per relaxation, in the order it
        # reports the relaxed configurations: the n-th one gets the n-th correction
        try:
            force, stress = next(made)
        except StopIteration:
            raise ValueError(
                f"alloy_properties relaxed more than the {len(visited)} configurations given"
            ) from None
        return _Corrected(calculator(), force, stress)

    again = alloy_properties(composition, corrected, spec, observe=observe)
    if next(made, None) is not None:
        raise ValueError(f"alloy_properties relaxed fewer than the {len(visited)} configurations")
    return again


def property_change(before: AlloyProperties, after: AlloyProperties) -> dict[str, float]:
    """after - before per property, signed, keys as `property_spread`."""
    change = {
        key: getattr(after, key) - getattr(before, key)
        for key in ("lattice_constant", "c11", "c12", "c44")
    }
    for element, value in before.misfit_volumes.items():
        change[f"misfit:{element}"] = after.misfit_volumes[element] - value
    return change


def relaxed_residual(
    properties: AlloyProperties,
    composition: Mapping[str, float],
    visited: Sequence[Atoms],
    forces: Sequence[np.ndarray],
    stresses: np.ndarray,
    calculator: CalculatorFactory,
    spec: SupercellSpec,
    observe: Observer | None = None,
) -> dict[str, float]:
    """How much each property (keys as `property_spread`) changes from `properties` (what
    `alloy_properties(composition, calculator, spec)` gave, relaxing `visited`) when its
    relaxations are redone under the oracle's corrections (`corrected_properties`, whose
    arguments these are): signed, in the property's unit."""
    again = corrected_properties(
        composition, visited, forces, stresses, calculator, spec, observe=observe
    )
    return property_change(properties, again)

"""Refitting a linear potential (SNAP) on the labels gathered so far, and committees of it.

`LinearTrainer` solves the weighted least-squares problem of FitSNAP (energy per atom,
force components, optionally stresses) with ridge regularization in standardized columns:
each column is divided by its root mean square over the training rows, so `alpha` is
relative and the same value serves every descriptor size. A committee is a set of such fits
on bootstrap resamples: of atoms (each atom's three force rows and each structure's energy
row are units that are drawn with replacement; works from a handful of structures) or of
whole structures.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.linalg
import torch
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError

from matforge.active.rows import DesignCache, StructureRows
from matforge.core.ensemble import bootstrap_counts
from matforge.core.errors import ConfigError
from matforge.mlip.potential import Potential

Resample = Literal["atoms", "structures"]


@dataclass(frozen=True)
class RowWeights:
    """Weights of energy-per-atom (1/eV), force-component (A/eV) and stress rows (A^3/eV).

    Unlike `mlip.linear.GroupWeights` (FitSNAP: per group, stress rows in bar) these apply
    to every structure and stress rows are in eV/A^3, the unit of ASE labels.
    """

    energy: float = 1.0
    force: float = 1.0
    stress: float = 0.0


@dataclass
class WeightedSystem:
    a: np.ndarray
    b: np.ndarray
    unit: np.ndarray  # resampling unit of each row (atom or structure energy row)
    structure: np.ndarray


def _labels(atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray | None]:
    try:
        energy = float(atoms.get_potential_energy())
        forces = np.asarray(atoms.get_forces())
    except (PropertyNotImplementedError, RuntimeError, AttributeError) as error:
        uid = atoms.info.get("uid", "?")
        raise ConfigError(f"structure {uid}: needs energy and forces labels ({error})") from error
    try:
        stress = np.asarray(atoms.get_stress(voigt=True))
    except (PropertyNotImplementedError, RuntimeError):
        stress = None
    return energy, forces, stress


class LinearTrainer:
    """Fits the coefficients of a linear potential's model from labelled structures."""

    def __init__(
        self,
        potential: Potential,
        *,
        weights: RowWeights = RowWeights(),
        alpha: float = 1e-8,
        cache: DesignCache | None = None,
    ) -> None:
        if alpha < 0:
            raise ConfigError(f"alpha must be >= 0, got {alpha}")
        self.potential = potential
        self.weights = weights
        self.alpha = alpha
        self.cache = cache if cache is not None else DesignCache(potential)

    def system(self, labelled: Sequence[Atoms]) -> WeightedSystem:
        stress = self.weights.stress > 0
        rows = self.cache.rows(labelled, forces=True, stress=stress)
        blocks_a, blocks_b, units, owners = [], [], [], []
        next_unit = 0
        for index, (atoms, r) in enumerate(zip(labelled, rows, strict=True)):
            energy, forces, sigma = _labels(atoms)
            n = r.n_atoms
            w = self.weights
            blocks_a.append(w.energy * r.energy[None] / n)
            blocks_b.append([w.energy * (energy - r.reference_energy) / n])
            units.append([next_unit])
            f_ref = r.reference_forces if r.reference_forces is not None else 0.0
            blocks_a.append(w.force * r.forces)
            blocks_b.append(w.force * (forces - f_ref).reshape(-1))
            units.append(next_unit + 1 + np.repeat(np.arange(n), 3))
            count = 3 * n + 1
            if stress and r.stress is not None and sigma is not None:
                s_ref = r.reference_stress if r.reference_stress is not None else 0.0
                blocks_a.append(w.stress * r.stress)
                blocks_b.append(w.stress * (sigma - s_ref))
                units.append(np.full(6, next_unit))
                count += 6
            next_unit += n + 1
            owners.append(np.full(count, index))
        return WeightedSystem(
            np.vstack(blocks_a),
            np.concatenate([np.asarray(b, dtype=float) for b in blocks_b]),
            np.concatenate([np.asarray(u) for u in units]),
            np.concatenate(owners),
        )

    def solve(self, system: WeightedSystem, row_weights: np.ndarray | None = None) -> np.ndarray:
        a, b = system.a, system.b
        if row_weights is not None:
            root = np.sqrt(row_weights)
            a, b = a * root[:, None], b * root
        scale = np.sqrt((a**2).mean(axis=0))
        scale[scale == 0] = 1.0
        k = a.shape[1]
        stacked_a = np.vstack([a / scale, np.sqrt(self.alpha * len(a)) * np.eye(k)])
        stacked_b = np.concatenate([b, np.zeros(k)])
        solution, *_ = scipy.linalg.lstsq(stacked_a, stacked_b, lapack_driver="gelsd")
        return solution / scale

    def with_coefficients(self, coefficients: np.ndarray) -> Potential:
        potential = copy.deepcopy(self.potential)
        shape = potential.model.coefficients.shape
        with torch.no_grad():
            potential.model.coefficients.copy_(torch.from_numpy(coefficients.reshape(shape)))
        return potential

    def fit(self, labelled: Sequence[Atoms]) -> Potential:
        if not labelled:
            raise ConfigError("cannot fit a potential on an empty training set")
        return self.with_coefficients(self.solve(self.system(labelled)))

    def fit_committee(
        self,
        labelled: Sequence[Atoms],
        size: int,
        rng: np.random.Generator,
        *,
        resample: Resample = "atoms",
        system: WeightedSystem | None = None,
        row_weights: np.ndarray | None = None,
    ) -> np.ndarray:
        """Coefficients (size, K) of `size` fits on bootstrap resamples (`system`: this
        trainer's `system(labelled)` when the caller has it; `row_weights` multiply the
        bootstrap counts, as they weight `solve`)."""
        if size < 2:
            raise ConfigError(f"a committee needs at least 2 members, got {size}")
        system = system if system is not None else self.system(labelled)
        units = system.unit if resample == "atoms" else system.structure
        n_units = int(units.max()) + 1
        members = []
        for _ in range(size):
            weights = bootstrap_counts(rng, n_units)[units].astype(float)
            if row_weights is not None:
                weights = weights * row_weights
            members.append(self.solve(system, weights))
        return np.stack(members)


def predict(rows: Sequence[StructureRows], coefficients: np.ndarray) -> tuple[list, list]:
    """Energies (M,) and forces (M, N, 3) per structure for coefficient sets (M, K)."""
    coefficients = np.atleast_2d(coefficients)
    energies, forces = [], []
    for r in rows:
        energies.append(r.energy @ coefficients.T + r.reference_energy)
        f = (r.forces @ coefficients.T).T.reshape(len(coefficients), r.n_atoms, 3)
        if r.reference_forces is not None:
            f = f + r.reference_forces[None]
        forces.append(f)
    return energies, forces

"""How unsure a potential is about a configuration: one interface, several measures.

Every measure gives a value per atom and per configuration (the largest over its atoms),
larger meaning less trustworthy:

- `CommitteeUncertainty`: committee disagreement, per atom the norm of the standard
  deviation of the predicted force vector over the members (eV/A); also the standard
  deviation of the energy per atom. Works with any matforge potentials as members;
  `LinearCommitteeUncertainty` gets the same numbers for linear members from cached rows.
- `LeverageGrade`: h = b^T (B^T B)^-1 b of an atom's row b against the training set's atom
  rows B (statistical leverage; D-optimal design).
- `MaxVolGrade`: the extrapolation grade of moment tensor potentials (Podryabinkin &
  Shapeev, Comput. Mater. Sci. 140 (2017) 171): the active set A holds the training rows of
  largest |det| (maxvol), and gamma = max_j |(b^T A^-1)_j|; gamma <= 1 is interpolation,
  gamma > 1 extrapolation.

Both grades are computed in standardized columns with `regularization` virtual rows (e.g.
when every training atom sits in a perfect crystal and the rows span few directions): a
direction the training set never saw gets a grade of order 1/regularization instead of a
singular matrix. The grades need only the atoms' rows, not labels, so `with_added` gives
the grade after hypothetically adding structures, which is what greedy D-optimal batch
selection uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import scipy.linalg
from ase import Atoms

from matforge.active.model import predict
from matforge.active.rows import DesignCache
from matforge.core.ensemble import spread
from matforge.mlip.potential import Potential


@dataclass(frozen=True)
class UncertaintyEstimate:
    measure: str
    per_atom: list[np.ndarray]
    per_structure: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)


@runtime_checkable
class Uncertainty(Protocol):
    name: str

    def estimate(self, structures: Sequence[Atoms]) -> UncertaintyEstimate: ...


def _from_atoms(name: str, per_atom: list[np.ndarray], **extra: np.ndarray) -> UncertaintyEstimate:
    per_structure = np.array([float(v.max()) if len(v) else 0.0 for v in per_atom])
    return UncertaintyEstimate(name, per_atom, per_structure, dict(extra))


def _committee_statistics(
    energies: list[np.ndarray], forces: list[np.ndarray]
) -> UncertaintyEstimate:
    # Population spread (ddof 0) of the members, as committee disagreement is defined.
    per_atom = [np.linalg.norm(spread(f, ddof=0)[1], axis=1) for f in forces]
    energy_std = np.array(
        [spread(e, ddof=0)[1] / f.shape[1] for e, f in zip(energies, forces, strict=True)]
    )
    return _from_atoms("committee", per_atom, energy_std_per_atom=energy_std)


class CommitteeUncertainty:
    """Disagreement of several potentials (any matforge `Potential`s)."""

    name = "committee"

    def __init__(self, members: Sequence[Potential]) -> None:
        if len(members) < 2:
            raise ValueError(f"a committee needs at least 2 members, got {len(members)}")
        self.members = list(members)

    def estimate(self, structures: Sequence[Atoms]) -> UncertaintyEstimate:
        outputs = []
        for member in self.members:
            batch = member.batch(list(structures))
            outputs.append(member(batch, forces=True, stress=False))
        counts = np.array([len(a) for a in structures])
        offsets = np.concatenate([[0], np.cumsum(counts)])
        energies = [np.array([float(o.energy[k]) for o in outputs]) for k in range(len(counts))]
        forces = [
            np.stack([o.forces[offsets[k] : offsets[k + 1]].numpy() for o in outputs])
            for k in range(len(counts))
        ]
        return _committee_statistics(energies, forces)


def linear_stresses(
    cache: DesignCache, structures: Sequence[Atoms], coefficients: np.ndarray
) -> np.ndarray:
    """The stress of each coefficient set (M, K) of a linear potential on each periodic
    structure (S, M, 6), GPa, Voigt, ASE's sign, reference potential included."""
    from ase.units import GPa

    coefficients = np.atleast_2d(coefficients)
    out = []
    for r in cache.rows(structures, forces=False, stress=True):
        if r.stress is None:
            raise ValueError("the stress committee needs periodic cells")
        stresses = (r.stress @ coefficients.T).T  # (M, 6)
        if r.reference_stress is not None:
            stresses = stresses + r.reference_stress
        out.append(stresses / GPa)
    return np.stack(out) if out else np.zeros((0, len(coefficients), 6))


class LinearCommitteeUncertainty:
    """The committee measure for linear members given as coefficient sets (M, K)."""

    name = "committee"

    def __init__(self, cache: DesignCache, coefficients: np.ndarray) -> None:
        if coefficients.ndim != 2 or len(coefficients) < 2:
            raise ValueError("coefficients must be (members >= 2, K)")
        self.cache = cache
        self.coefficients = coefficients

    def estimate(self, structures: Sequence[Atoms]) -> UncertaintyEstimate:
        rows = self.cache.rows(structures, forces=True)
        energies, forces = predict(rows, self.coefficients)
        return _committee_statistics(energies, forces)


class StressCommitteeUncertainty(LinearCommitteeUncertainty):
    """Committee disagreement on the stress of periodic cells, for linear members (M, K):
    per configuration the largest standard deviation over the six components, in GPa.
    Elastic constants and relaxed volumes rest on stresses, which an extrapolation grade
    of the atoms' rows does not measure: a cell can be inside the training set's span and
    still have a poorly determined stress."""

    name = "stress_committee"

    def member_stresses(self, structures: Sequence[Atoms]) -> np.ndarray:
        """Each member's stress on each structure (S, M, 6), GPa, Voigt, ASE's sign."""
        return linear_stresses(self.cache, structures, self.coefficients)

    def estimate(
        self, structures: Sequence[Atoms], stresses: np.ndarray | None = None
    ) -> UncertaintyEstimate:
        """`stresses`: `member_stresses(structures)` when the caller has them already."""
        if stresses is None:
            stresses = self.member_stresses(structures)
        per_structure = spread(stresses.transpose(1, 0, 2), ddof=0)[1].max(axis=-1)
        per_atom = [np.full(len(a), v) for a, v in zip(structures, per_structure, strict=True)]
        return UncertaintyEstimate(self.name, per_atom, per_structure)


class _Grade:
    name = "grade"

    def __init__(
        self, cache: DesignCache, training: Sequence[Atoms], *, regularization: float = 1e-3
    ) -> None:
        self.cache = cache
        self.regularization = regularization
        self.training_rows = np.vstack([r.atoms for r in cache.rows(training, forces=False)])
        scale = np.sqrt((self.training_rows**2).mean(axis=0))
        scale[scale == 0] = 1.0
        self.scale = scale
        self._prepare(self.training_rows / scale)

    def _prepare(self, rows: np.ndarray) -> None:
        raise NotImplementedError

    def _grade(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def with_added(self, structures: Sequence[Atoms]) -> _Grade:
        """The same grade with `structures` (unlabelled) added to the training set."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        added = np.vstack([r.atoms for r in self.cache.rows(structures, forces=False)])
        new.training_rows = np.vstack([self.training_rows, added])
        new._prepare(new.training_rows / new.scale)
        return new

    def estimate(self, structures: Sequence[Atoms]) -> UncertaintyEstimate:
        rows = self.cache.rows(structures, forces=False)
        return _from_atoms(self.name, [self._grade(r.atoms / self.scale) for r in rows])


class LeverageGrade(_Grade):
    """h = b^T (B^T B + lambda^2 I)^-1 b in standardized columns (lambda: regularization)."""

    name = "leverage"

    def _prepare(self, rows: np.ndarray) -> None:
        k = rows.shape[1]
        gram = rows.T @ rows + self.regularization**2 * np.eye(k)
        self._factor = scipy.linalg.cho_factor(gram)

    def _grade(self, rows: np.ndarray) -> np.ndarray:
        solved = scipy.linalg.cho_solve(self._factor, rows.T)
        return np.einsum("ik,ki->i", rows, solved)


def maxvol(matrix: np.ndarray, *, tolerance: float = 1.01, max_swaps: int = 1000) -> np.ndarray:
    """Indices of rows of `matrix` (n >= k rows, k columns) forming a k x k submatrix of
    locally maximal |det|: no other row has a coefficient above `tolerance` in its basis."""
    n, k = matrix.shape
    if n < k:
        raise ValueError(f"maxvol needs at least as many rows ({n}) as columns ({k})")
    _, _, pivots = scipy.linalg.qr(matrix.T, pivoting=True, mode="economic")
    chosen = np.array(pivots[:k])
    for _ in range(max_swaps):
        coefficients = np.linalg.solve(matrix[chosen].T, matrix.T).T  # (n, k): rows in A basis
        i, j = np.unravel_index(np.abs(coefficients).argmax(), coefficients.shape)
        if abs(coefficients[i, j]) <= tolerance:
            break
        chosen[j] = i
    return chosen


class MaxVolGrade(_Grade):
    """MTP's extrapolation grade gamma = max_j |(b^T A^-1)_j| over a maxvol active set."""

    name = "maxvol"

    def _prepare(self, rows: np.ndarray) -> None:
        k = rows.shape[1]
        candidates = np.vstack([rows, self.regularization * np.eye(k)])
        self.active = candidates[maxvol(candidates)]
        self._lu = scipy.linalg.lu_factor(self.active.T)

    def _grade(self, rows: np.ndarray) -> np.ndarray:
        coefficients = scipy.linalg.lu_solve(self._lu, rows.T)  # (k, n)
        return np.abs(coefficients).max(axis=0)

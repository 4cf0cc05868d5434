"""Design-matrix rows of structures for a linear potential, computed once and cached.

Active learning asks the same questions of the same structures many times (refit on the
training set, uncertainty of candidates), and for a linear model (SNAP) every answer is a
product of these rows with coefficients: the energy row, the 3N force rows, the optional
6 stress rows and each atom's own row (whose span is what the extrapolation grade
measures). Rows are cached under the structure's ``atoms.info["uid"]``; structures without
a uid are computed every time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from matforge.mlip.descriptors import design_matrix, to_voigt
from matforge.mlip.potential import LinearModel, Potential


@dataclass(frozen=True)
class StructureRows:
    """Rows of one structure; K = n_elements * (1 + n_features) columns."""

    energy: np.ndarray  # (K,)
    atoms: np.ndarray  # (N, K)
    forces: np.ndarray | None  # (3N, K), -d energy-row / d positions (atom-major)
    stress: np.ndarray | None  # (6, K), ASE stress convention, Voigt xx yy zz yz xz xy
    reference_energy: float  # of the reference pair potential (0 without one)
    reference_forces: np.ndarray | None  # (N, 3)
    reference_stress: np.ndarray | None  # (6,)

    @property
    def n_atoms(self) -> int:
        return len(self.atoms)


class DesignCache:
    """Computes and remembers `StructureRows` of structures for one linear potential."""

    def __init__(self, potential: Potential, *, chunk: int = 20) -> None:
        if not isinstance(potential.model, LinearModel):
            raise TypeError("DesignCache needs a potential with a LinearModel (e.g. SNAP)")
        self.potential = potential
        self.chunk = chunk
        self._rows: dict[str, StructureRows] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def retain(self, uids: set[str]) -> None:
        """Forget every structure but these (candidates that were not selected)."""
        self._rows = {uid: rows for uid, rows in self._rows.items() if uid in uids}

    def _cached(self, atoms: Atoms, forces: bool, stress: bool) -> StructureRows | None:
        uid = atoms.info.get("uid")
        rows = self._rows.get(uid) if uid is not None else None
        if rows is None:
            return None
        if (forces and rows.forces is None) or (stress and rows.stress is None):
            return None
        return rows

    def rows(
        self, structures: Sequence[Atoms], *, forces: bool = True, stress: bool = False
    ) -> list[StructureRows]:
        out: list[StructureRows | None] = [self._cached(a, forces, stress) for a in structures]
        missing = [i for i, r in enumerate(out) if r is None]
        for start in range(0, len(missing), self.chunk):
            part = missing[start : start + self.chunk]
            computed = self._compute([structures[i] for i in part], forces, stress)
            for i, rows in zip(part, computed, strict=True):
                out[i] = rows
                uid = structures[i].info.get("uid")
                if uid is not None:
                    self._rows[uid] = rows
        return out  # type: ignore[return-value]

    def _compute(self, part: list[Atoms], forces: bool, stress: bool) -> list[StructureRows]:
        potential = self.potential
        periodic = [bool(a.pbc.all()) for a in part]
        stress = stress and all(periodic)
        batch = potential.batch(part)
        matrix = design_matrix(potential.descriptor, batch, forces=forces, stress=stress)
        reference = None
        if potential.reference is not None:
            reference = potential.reference_output(batch, stress=stress)
        offsets = np.concatenate([[0], np.cumsum(batch.n_atoms.numpy())])
        result = []
        for k in range(len(part)):
            lo, hi = offsets[k], offsets[k + 1]
            result.append(
                StructureRows(
                    energy=matrix.energy[k].numpy(),
                    atoms=matrix.atoms[lo:hi].numpy(),
                    forces=matrix.forces[3 * lo : 3 * hi].numpy() if forces else None,
                    stress=matrix.stress[k].numpy() if stress else None,
                    reference_energy=float(reference.energy[k]) if reference is not None else 0.0,
                    reference_forces=(
                        reference.forces[lo:hi].numpy() if reference is not None else None
                    ),
                    reference_stress=(
                        to_voigt(reference.stress[k].numpy())
                        if reference is not None and stress
                        else None
                    ),
                )
            )
        return result

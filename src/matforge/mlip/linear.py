"""Fitting linear potentials (SNAP) by weighted least squares, as FitSNAP does.

Rows, per structure: one energy row (per atom: the design-matrix row and the reference-
subtracted energy both divided by the number of atoms), 3N force rows and 6 stress rows
(Voigt xx yy zz yz xz xy, as pressure in bar, positive when compressed, so that FitSNAP's
group weights carry over unchanged). Each row is multiplied by its group's energy, force or
stress weight; the coefficients minimize || w (A c - b) ||^2 (+ alpha || c ||^2 for ridge).
The SVD solver is LAPACK's gelsd with a relative singular-value cutoff of 1e-13, FitSNAP's
choice. Errors are reported per group and per kind of row, unweighted and weighted, as in
FitSNAP's metrics file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError

from matforge.core.errors import ConfigError
from matforge.core.progress import track
from matforge.mlip.data import BAR
from matforge.mlip.descriptors import design_matrix, to_voigt
from matforge.mlip.potential import LinearModel, Potential

KINDS = ("energy", "force", "stress")


@dataclass(frozen=True)
class GroupWeights:
    """FitSNAP's per-group row weights (energy per atom, force component, stress in bar)."""

    energy: float = 1.0
    force: float = 1.0
    stress: float = 0.0


@dataclass
class LinearSystem:
    """Unweighted rows A c ~ b with, per row, its kind, group and structure."""

    a: np.ndarray
    b: np.ndarray
    kind: np.ndarray  # 0 energy, 1 force, 2 stress
    group: np.ndarray
    structure: np.ndarray

    def weights(self, by_group: Mapping[str, GroupWeights]) -> np.ndarray:
        missing = sorted(set(self.group) - set(by_group))
        if missing:
            raise ConfigError(f"no weights given for groups {missing}")
        table = {g: (w.energy, w.force, w.stress) for g, w in by_group.items()}
        return np.array([table[g][k] for g, k in zip(self.group, self.kind, strict=True)])

    def subset(self, structures: np.ndarray) -> LinearSystem:
        keep = np.isin(self.structure, structures)
        return LinearSystem(
            self.a[keep], self.b[keep], self.kind[keep], self.group[keep], self.structure[keep]
        )


def read_labels(atoms: Atoms, index: int) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Energy, forces and (3x3 or None) stress of a labelled structure; a missing energy or
    force label is a ConfigError naming the structure."""
    where = atoms.info.get("source", f"structure {index}")
    try:
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
    except (PropertyNotImplementedError, RuntimeError) as error:
        raise ConfigError(f"{where}: needs energy and forces labels ({error})") from error
    try:
        stress = atoms.get_stress(voigt=False)
    except (PropertyNotImplementedError, RuntimeError):
        stress = None
    return energy, forces, stress


def assemble(potential: Potential, structures: Sequence[Atoms], *, chunk: int = 40) -> LinearSystem:
    """Design matrix and reference-subtracted targets of a linear potential."""
    if not isinstance(potential.model, LinearModel):
        raise ConfigError("assemble needs a potential with a LinearModel")
    blocks: list[tuple[np.ndarray, ...]] = []
    starts = range(0, len(structures), chunk)
    for start in track(starts, description="SNAP design matrix"):
        part = list(structures[start : start + chunk])
        batch = potential.batch(part)
        rows = design_matrix(potential.descriptor, batch)
        reference = potential.reference_output(batch) if potential.reference is not None else None
        counts = batch.n_atoms.numpy()
        offsets = np.concatenate([[0], np.cumsum(counts)])
        for k, atoms in enumerate(part):
            index = start + k
            energy, forces, stress = read_labels(atoms, index)
            n = counts[k]
            e_ref = float(reference.energy[k]) if reference is not None else 0.0
            f_ref = (
                reference.forces[offsets[k] : offsets[k + 1]].numpy()
                if reference is not None
                else 0.0
            )
            a_e = rows.energy[k].numpy()[None] / n
            b_e = np.array([(energy - e_ref) / n])
            a_f = rows.forces[3 * offsets[k] : 3 * offsets[k + 1]].numpy()
            b_f = (forces - f_ref).reshape(-1)
            parts_a, parts_b, kinds = [a_e, a_f], [b_e, b_f], [0, 1]
            if stress is not None:
                s_ref = reference.stress[k].numpy() if reference is not None else 0.0
                pressure = -(stress - s_ref) / BAR
                a_s = -rows.stress[k].numpy() / BAR
                parts_a.append(a_s)
                parts_b.append(to_voigt(pressure))
                kinds.append(2)
            sizes = [len(p) for p in parts_b]
            group = str(atoms.info.get("group", "all"))
            blocks.append(
                (
                    np.concatenate(parts_a),
                    np.concatenate(parts_b),
                    np.repeat(kinds, sizes),
                    np.array([group] * sum(sizes), dtype=object),
                    np.full(sum(sizes), index),
                )
            )
    a, b, kind, group, owner = (np.concatenate(x) for x in zip(*blocks, strict=True))
    return LinearSystem(a, b, kind.astype(np.int64), group, owner)


def solve(
    system: LinearSystem,
    weights: Mapping[str, GroupWeights],
    *,
    solver: str = "svd",
    alpha: float = 0.0,
) -> np.ndarray:
    """Coefficients minimizing || w (A c - b) ||^2 (+ alpha || c ||^2 with solver ridge)."""
    w = system.weights(weights)
    aw, bw = w[:, None] * system.a, w * system.b
    if solver == "svd":
        coefficients, *_ = scipy.linalg.lstsq(aw, bw, cond=1e-13, lapack_driver="gelsd")
        return coefficients
    if solver == "ridge":
        if alpha < 0:
            raise ConfigError(f"ridge alpha must be >= 0, got {alpha}")
        # Least squares on [w A; sqrt(alpha) I] c = [w b; 0]: the normal equations would
        # square the condition number (1e17 for SNAP's bispectrum columns).
        k = aw.shape[1]
        stacked_a = np.vstack([aw, np.sqrt(alpha) * np.eye(k)])
        stacked_b = np.concatenate([bw, np.zeros(k)])
        coefficients, *_ = scipy.linalg.lstsq(stacked_a, stacked_b, lapack_driver="gelsd")
        return coefficients
    raise ConfigError(f"solver must be 'svd' or 'ridge', got {solver!r}")


def error_table(
    system: LinearSystem, coefficients: np.ndarray, weights: Mapping[str, GroupWeights]
) -> pd.DataFrame:
    """MAE, RMSE and R^2 per group (and '*ALL') and kind, unweighted and weighted.

    Units: energy eV/atom, force eV/A, stress bar.
    """
    residual = system.a @ coefficients - system.b
    w = system.weights(weights)
    records = []
    for group in ["*ALL", *sorted(set(system.group))]:
        in_group = np.ones(len(residual), bool) if group == "*ALL" else system.group == group
        for code, kind in enumerate(KINDS):
            rows = in_group & (system.kind == code)
            if not rows.any():
                continue
            for weighting, scale in (("unweighted", 1.0), ("weighted", w[rows])):
                r = residual[rows] * scale
                truth = system.b[rows] * scale
                total = ((truth - truth.mean()) ** 2).sum()
                records.append(
                    {
                        "group": group,
                        "weighting": weighting,
                        "kind": kind,
                        "count": int(rows.sum()),
                        "mae": float(np.abs(r).mean()),
                        "rmse": float(np.sqrt((r**2).mean())),
                        "rsq": float(1 - (r**2).sum() / total) if total > 0 else float("nan"),
                    }
                )
    return pd.DataFrame.from_records(records)

"""Errors of a potential on labelled structures (any potential, not only linear ones)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from matforge.core.progress import track
from matforge.mlip.data import BAR, read_fitsnap_groups, read_structures
from matforge.mlip.potential import Potential


def evaluate_potential(potential: Potential, data: str | Path, *, chunk: int = 40) -> pd.DataFrame:
    """MAE and RMSE per group of energy (eV/atom), force components (eV/A), stress (bar)."""
    data = Path(data)
    structures = read_fitsnap_groups(data) if data.is_dir() else read_structures(data)
    return evaluate_structures(potential, structures, chunk=chunk)


def evaluate_structures(potential: Potential, structures: list, *, chunk: int = 40) -> pd.DataFrame:
    """`evaluate_potential` on structures in memory."""
    residuals: dict[tuple[str, str], list[np.ndarray]] = {}
    for start in track(range(0, len(structures), chunk), description="evaluate"):
        part = structures[start : start + chunk]
        out = potential(potential.batch(part))
        offset = 0
        for k, atoms in enumerate(part):
            group = str(atoms.info.get("group", "all"))
            n = len(atoms)
            e = (float(out.energy[k]) - atoms.get_potential_energy()) / n
            f = out.forces[offset : offset + n].numpy() - atoms.get_forces()
            offset += n
            residuals.setdefault((group, "energy"), []).append(np.array([e]))
            residuals.setdefault((group, "force"), []).append(f.reshape(-1))
            try:
                s = (out.stress[k].numpy() - atoms.get_stress(voigt=False)) / BAR
                residuals.setdefault((group, "stress"), []).append(s.reshape(-1))
            except (RuntimeError, NotImplementedError):
                pass
    records = []
    for group in ["*ALL", *sorted({g for g, _ in residuals})]:
        for kind in ("energy", "force", "stress"):
            parts = [
                v
                for (g, k), values in residuals.items()
                if k == kind and group in ("*ALL", g)
                for v in values
            ]
            if not parts:
                continue
            r = np.concatenate(parts)
            records.append(
                {
                    "group": group,
                    "kind": kind,
                    "count": len(r),
                    "mae": float(np.abs(r).mean()),
                    "rmse": float(np.sqrt((r**2).mean())),
                }
            )
    return pd.DataFrame.from_records(records)

"""Periodic neighbour lists for batches of structures, as flat pair arrays.

`neighbor_pairs` returns, for a list of ASE `Atoms`, every ordered pair (i, j) within the
cutoff with its cell shift, indices into the concatenated atoms of the batch. Pair finding
uses `vesin` (compiled, cell lists) where installed (extra `mlip`), else ASE's
`neighbor_list`; the displacement vectors are then recomputed in torch from positions and
cells (`pair_vectors`), so they carry gradients with respect to both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms


@dataclass(frozen=True)
class PairList:
    """Ordered neighbour pairs of a batch of structures (indices into the batch)."""

    center: torch.Tensor  # (P,) atom i
    neighbor: torch.Tensor  # (P,) atom j
    shift: torch.Tensor  # (P, 3) integer cell shift of j, float64
    structure: torch.Tensor  # (P,) which structure the pair belongs to


def _pairs_one(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    periodic = atoms.pbc
    try:
        from vesin import NeighborList
    except ImportError:  # pragma: no cover - the mlip extra brings vesin
        NeighborList = None  # noqa: N806
    if NeighborList is not None and (periodic.all() or not periodic.any()):
        box = atoms.cell.array if periodic.any() else np.zeros((3, 3))
        i, j, shift = NeighborList(cutoff=cutoff, full_list=True).compute(
            atoms.positions, box, bool(periodic.all()), quantities="ijS"
        )
        return i.astype(np.int64), j.astype(np.int64), shift.astype(np.float64)
    from ase.neighborlist import neighbor_list

    i, j, shift = neighbor_list("ijS", atoms, cutoff)
    return i.astype(np.int64), j.astype(np.int64), shift.astype(np.float64)


def neighbor_pairs(structures: Sequence[Atoms], cutoff: float) -> PairList:
    """All ordered pairs closer than `cutoff` (A) in each structure, batched."""
    centers, neighbors, shifts, owners = [], [], [], []
    offset = 0
    for index, atoms in enumerate(structures):
        i, j, shift = _pairs_one(atoms, cutoff)
        centers.append(i + offset)
        neighbors.append(j + offset)
        shifts.append(shift)
        owners.append(np.full(len(i), index, dtype=np.int64))
        offset += len(atoms)
    return PairList(
        torch.from_numpy(np.concatenate(centers)),
        torch.from_numpy(np.concatenate(neighbors)),
        torch.from_numpy(np.concatenate(shifts).reshape(-1, 3)),
        torch.from_numpy(np.concatenate(owners)),
    )


def pair_vectors(pairs: PairList, positions: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """r_j + S @ cell - r_i for each pair, (P, 3); `cells` is (n_structures, 3, 3)."""
    offsets = torch.einsum("pk,pkl->pl", pairs.shift.to(cells), cells[pairs.structure])
    return positions[pairs.neighbor] + offsets - positions[pairs.center]

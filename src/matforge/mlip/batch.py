"""A batch of structures as flat tensors: what descriptors and potentials consume."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from matforge.core.errors import ConfigError
from matforge.mlip.neighbors import PairList, neighbor_pairs, pair_vectors


@dataclass(frozen=True)
class AtomsBatch:
    """Atoms of several structures, concatenated, with their neighbour pairs."""

    positions: torch.Tensor  # (N, 3) A
    cells: torch.Tensor  # (S, 3, 3) rows are cell vectors
    species: torch.Tensor  # (N,) index into `elements`
    structure: torch.Tensor  # (N,) which structure each atom belongs to
    pairs: PairList
    elements: tuple[str, ...]

    @classmethod
    def from_atoms(
        cls, structures: Sequence[Atoms], elements: Sequence[str], cutoff: float
    ) -> AtomsBatch:
        elements = tuple(elements)
        lookup = {e: k for k, e in enumerate(elements)}
        species = []
        for index, atoms in enumerate(structures):
            unknown = sorted(set(atoms.get_chemical_symbols()) - set(lookup))
            if unknown:
                where = atoms.info.get("source", f"structure {index}")
                raise ConfigError(f"{where}: elements {unknown} are not among {list(elements)}")
            species.append([lookup[s] for s in atoms.get_chemical_symbols()])
            if atoms.pbc.any() and abs(atoms.get_volume()) < 1e-12:
                raise ConfigError(f"structure {index}: periodic but its cell has no volume")
        counts = [len(a) for a in structures]
        return cls(
            positions=torch.tensor(np.concatenate([a.positions for a in structures])),
            cells=torch.tensor(np.stack([a.cell.array for a in structures])),
            species=torch.tensor(np.concatenate(species), dtype=torch.long),
            structure=torch.repeat_interleave(torch.arange(len(structures)), torch.tensor(counts)),
            pairs=neighbor_pairs(structures, cutoff),
            elements=elements,
        )

    def to(self, device: str | torch.device) -> AtomsBatch:
        """The same batch with every tensor on `device` (e.g. "cuda")."""
        pairs = self.pairs
        return AtomsBatch(
            self.positions.to(device),
            self.cells.to(device),
            self.species.to(device),
            self.structure.to(device),
            PairList(
                pairs.center.to(device),
                pairs.neighbor.to(device),
                pairs.shift.to(device),
                pairs.structure.to(device),
            ),
            self.elements,
        )

    def zero_strain(self, *, requires_grad: bool = False) -> torch.Tensor:
        """(S, 3, 3) zeros on the batch's device: `strained` at no deformation."""
        return torch.zeros(
            self.n_structures,
            3,
            3,
            dtype=self.positions.dtype,
            device=self.positions.device,
            requires_grad=requires_grad,
        )

    @property
    def n_structures(self) -> int:
        return len(self.cells)

    @property
    def n_atoms(self) -> torch.Tensor:
        return torch.bincount(self.structure, minlength=self.n_structures)

    @property
    def volumes(self) -> torch.Tensor:
        return torch.linalg.det(self.cells).abs()

    def strained(
        self, positions: torch.Tensor, strain: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pair vectors (P, 3) of `positions` after the homogeneous deformation I + strain
        (S, 3, 3) of each structure; gradients w.r.t. strain at 0 give virials."""
        deformation = torch.eye(3, dtype=strain.dtype, device=strain.device) + strain
        moved = torch.einsum("nk,nkl->nl", positions, deformation[self.structure])
        cells = self.cells @ deformation
        return pair_vectors(self.pairs, moved, cells), cells

    def sum_per_structure(self, values: torch.Tensor) -> torch.Tensor:
        out = values.new_zeros((self.n_structures, *values.shape[1:]))
        return out.index_add(0, self.structure, values)

"""Start structures named in a config: crystals, surfaces, molecules, files; perturbations."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from ase import Atoms
from pydantic import Field

from matforge.core.config import StrictModel
from matforge.core.errors import ConfigError


class StructureSpec(StrictModel):
    kind: Literal["bulk", "surface", "molecule", "file"]
    symbol: str | None = Field(None, description="element (bulk, surface) or molecule name")
    crystal: str = "fcc"
    a: float | None = Field(None, gt=0, description="lattice constant, A")
    cubic: bool = True
    repeat: tuple[int, int, int] = (1, 1, 1)
    facet: Literal["100", "110", "111"] = "111"
    layers: int = Field(4, ge=1)
    vacuum: float = Field(6.0, ge=0)
    vacancies: int = Field(0, ge=0)
    substitute: dict[str, float] = Field(default_factory=dict, description="element: fraction")
    path: Path | None = None
    cell_padding: float | None = Field(None, gt=0, description="molecules: box margin, A")

    def build(self, rng: np.random.Generator) -> list[Atoms]:
        if self.kind == "file":
            if self.path is None:
                raise ConfigError("structure of kind 'file' needs a path")
            from ase.io import read

            if not self.path.exists():
                raise ConfigError(f"{self.path}: no such structure file")
            found = read(self.path, index=":")
            return [self._modify(a, rng) for a in found]
        if not self.symbol:
            raise ConfigError(f"structure of kind {self.kind!r} needs a symbol")
        if self.kind == "bulk":
            from ase.build import bulk

            atoms = bulk(self.symbol, self.crystal, a=self.a, cubic=self.cubic).repeat(self.repeat)
        elif self.kind == "surface":
            from ase.build import fcc100, fcc110, fcc111

            build = {"100": fcc100, "110": fcc110, "111": fcc111}[self.facet]
            size = (self.repeat[0], self.repeat[1], self.layers)
            atoms = build(self.symbol, size, a=self.a, vacuum=self.vacuum, periodic=True)
        else:
            from ase.build import molecule

            atoms = molecule(self.symbol)
            if self.cell_padding is not None:
                atoms.center(vacuum=self.cell_padding)
        return [self._modify(atoms, rng)]

    def _modify(self, atoms: Atoms, rng: np.random.Generator) -> Atoms:
        atoms = atoms.copy()
        if self.substitute:
            total = sum(self.substitute.values())
            if total > 1:
                raise ConfigError(f"substitute fractions sum to {total} > 1")
            order = rng.permutation(len(atoms))
            start = 0
            for element, fraction in self.substitute.items():
                count = round(fraction * len(atoms))
                atoms.symbols[order[start : start + count]] = element
                start += count
        if self.vacancies:
            if self.vacancies >= len(atoms):
                raise ConfigError(f"{self.vacancies} vacancies in a {len(atoms)}-atom cell")
            del atoms[list(rng.choice(len(atoms), self.vacancies, replace=False))]
        return atoms


class PerturbSpec(StrictModel):
    count: int = Field(4, ge=1, description="perturbed copies per start structure")
    rattle: float = Field(0.05, ge=0, description="std of Gaussian displacements, A")
    strain: float = Field(0.0, ge=0, description="std of random symmetric cell strain")


def perturbed(starts: list[Atoms], spec: PerturbSpec, rng: np.random.Generator) -> list[Atoms]:
    """`spec.count` copies of each start with random displacements and cell strains."""
    out = []
    for atoms in starts:
        for _ in range(spec.count):
            copy = atoms.copy()
            if spec.strain > 0 and copy.pbc.all():
                e = rng.normal(0.0, spec.strain, (3, 3))
                copy.set_cell(copy.cell.array @ (np.eye(3) + 0.5 * (e + e.T)), scale_atoms=True)
            copy.positions += rng.normal(0.0, spec.rattle, copy.positions.shape)
            out.append(copy)
    return out

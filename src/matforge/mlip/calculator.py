"""An ASE `Calculator` for any matforge `Potential` (molecular dynamics, relaxations, ...).

The neighbour list is rebuilt at every call with a skin-free cutoff: vesin's cell lists
make that cheaper than the bookkeeping of a Verlet list for the system sizes SNAP runs at
on a CPU.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from matforge.mlip.descriptors import to_voigt
from matforge.mlip.potential import Potential


class MatforgeCalculator(Calculator):
    """energy, free_energy, energies (per atom), forces, stress (eV/A^3, ASE convention)."""

    implemented_properties: ClassVar[list[str]] = [
        "energy",
        "free_energy",
        "energies",
        "forces",
        "stress",
    ]

    def __init__(self, potential: Potential, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.potential = potential

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        super().calculate(atoms, properties or ["energy"], system_changes)
        wants_stress = "stress" in (properties or []) and bool(self.atoms.pbc.all())
        batch = self.potential.batch([self.atoms])
        out = self.potential(batch, forces=True, stress=wants_stress)
        energy = float(out.energy[0])
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "energies": out.atomic_energies.numpy().copy(),
            "forces": out.forces.numpy().copy(),
        }
        if wants_stress:
            s = out.stress[0].numpy()
            self.results["stress"] = to_voigt(s).copy()

    @classmethod
    def from_file(cls, path: str, *, backend: str = "torch", **kwargs: Any) -> MatforgeCalculator:
        """Load a model file; backend 'numba' runs a linear SNAP with compiled loops."""
        from matforge.mlip.io import load_potential

        potential = load_potential(path)
        if backend not in ("torch", "numba"):
            raise ValueError(f"backend must be 'torch' or 'numba', got {backend!r}")
        potential.backend = backend
        return cls(potential, **kwargs)

"""One code path from positions to energy, forces and stress, for every matforge potential.

A `Potential` is a descriptor (per-atom features from neighbour pair vectors), an atomic
model (atomic energies from features, per species) and an optional reference pair
potential (e.g. `ZBL`) added on top. Forces are -dE/dr and the stress is (1/V) dE/d strain
(ASE's convention, eV/A^3; positive is tensile), both by autograd through the pair vectors,
which carry the homogeneous strain of each structure's cell and positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from matforge.mlip.batch import AtomsBatch
from matforge.mlip.descriptors import Descriptor


class AtomicModel(Protocol):
    def __call__(self, features: torch.Tensor, species: torch.Tensor) -> torch.Tensor: ...


class LinearModel(torch.nn.Module):
    """E_i = c[s_i, 0] + c[s_i, 1:] . D_i (SNAP's linear model), per species s_i."""

    def __init__(self, n_elements: int, n_features: int) -> None:
        super().__init__()
        self.coefficients = torch.nn.Parameter(
            torch.zeros(n_elements, 1 + n_features, dtype=torch.float64)
        )

    def forward(self, features: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        c = self.coefficients[species]
        return c[:, 0] + (c[:, 1:] * features).sum(dim=1)


class PairSum(torch.nn.Module):
    """Several reference terms added, e.g. a fixed ZBL and a GAP's fitted 2-body term;
    each takes the pair vectors and returns atomic energies."""

    def __init__(self, terms: list[torch.nn.Module]) -> None:
        super().__init__()
        if len(terms) < 2:
            raise ValueError("PairSum needs at least two terms")
        elements = {tuple(t.elements) for t in terms}
        if len(elements) != 1:
            raise ValueError(f"the terms of a PairSum name different elements: {elements}")
        self.terms = torch.nn.ModuleList(terms)
        self.elements = tuple(terms[0].elements)

    @property
    def cutoff(self) -> float:
        return max(t.cutoff for t in self.terms)

    def forward(
        self,
        vectors: torch.Tensor,
        center: torch.Tensor,
        neighbor_species: torch.Tensor,
        center_species: torch.Tensor,
    ) -> torch.Tensor:
        return sum(t(vectors, center, neighbor_species, center_species) for t in self.terms)


def reference_terms(reference: torch.nn.Module | None) -> list[torch.nn.Module]:
    """The terms of a reference: none, itself, or a PairSum's."""
    if reference is None:
        return []
    return list(reference.terms) if isinstance(reference, PairSum) else [reference]


def combine_references(terms: list[torch.nn.Module]) -> torch.nn.Module | None:
    return None if not terms else terms[0] if len(terms) == 1 else PairSum(terms)


@dataclass(frozen=True)
class PotentialOutput:
    energy: torch.Tensor  # (S,) eV
    forces: torch.Tensor | None  # (N, 3) eV/A
    stress: torch.Tensor | None  # (S, 3, 3) eV/A^3, ASE convention
    atomic_energies: torch.Tensor  # (N,) eV


class Potential(torch.nn.Module):
    """descriptor + atomic model (+ reference pair potential)."""

    def __init__(
        self,
        descriptor: Descriptor,
        model: torch.nn.Module,
        reference: torch.nn.Module | None = None,
        *,
        backend: str = "torch",
    ) -> None:
        super().__init__()
        self.descriptor = descriptor
        self.model = model
        self.reference = reference
        if backend not in ("torch", "numba"):
            raise ValueError(f"backend must be 'torch' or 'numba', got {backend!r}")
        self.backend = backend
        if reference is not None and tuple(reference.elements) != tuple(descriptor.elements):
            raise ValueError(
                f"reference elements {reference.elements} differ from the descriptor's "
                f"{descriptor.elements}"
            )

    @property
    def elements(self) -> tuple[str, ...]:
        return tuple(self.descriptor.elements)

    @property
    def cutoff(self) -> float:
        cuts = [self.descriptor.cutoff]
        if self.reference is not None:
            cuts.append(self.reference.cutoff)
        return max(cuts)

    def batch(self, structures: list) -> AtomsBatch:
        return AtomsBatch.from_atoms(structures, self.elements, self.cutoff)

    def atomic_energies(
        self, batch: AtomsBatch, vectors: torch.Tensor, *, with_model: bool = True
    ) -> torch.Tensor:
        pairs = batch.pairs
        args = (vectors, pairs.center, batch.species[pairs.neighbor], batch.species)
        energies = vectors.new_zeros(len(batch.species))
        if with_model:
            energies = energies + self.model(self.descriptor(*args), batch.species)
        if self.reference is not None:
            energies = energies + self.reference(*args)
        return energies

    def forward(
        self,
        batch: AtomsBatch,
        *,
        forces: bool = True,
        stress: bool = True,
        create_graph: bool = False,
    ) -> PotentialOutput:
        if self.backend == "numba" and not create_graph:
            return self._forward_compiled(batch, stress)
        closed_form = getattr(self.descriptor, "energy_forces", None)
        if closed_form is not None and forces and not create_graph:
            out = closed_form(self.model, batch, stress=stress)
            if self.reference is None:
                return out
            ref = self.reference_output(batch, stress=stress)
            sigma = out.stress + ref.stress if stress else None
            return PotentialOutput(
                out.energy + ref.energy,
                out.forces + ref.forces,
                sigma,
                out.atomic_energies + ref.atomic_energies,
            )
        return self._forward_autograd(batch, forces, stress, create_graph, with_model=True)

    def _forward_compiled(self, batch: AtomsBatch, stress: bool) -> PotentialOutput:
        """Linear SNAP or NEP by their compiled kernels, the reference by autograd."""
        from matforge.mlip.nep import NEPDescriptor
        from matforge.mlip.snap import Bispectrum

        if isinstance(self.descriptor, NEPDescriptor):
            from matforge.mlip.nep_numba import nep_energy_forces

            atomic, force, virial = nep_energy_forces(self.descriptor, self.model, batch)
        elif isinstance(self.descriptor, Bispectrum) and isinstance(self.model, LinearModel):
            from matforge.mlip.snap_numba import snap_energy_forces

            coefficients = self.model.coefficients.detach().numpy()
            atomic, force, virial = snap_energy_forces(self.descriptor, batch, coefficients)
        else:
            raise ValueError("backend 'numba' runs linear SNAP or NEP only")
        atomic = torch.from_numpy(atomic)
        force = torch.from_numpy(force)
        virial = torch.from_numpy(virial)
        sigma = None
        if stress:  # forces always come with the kernel; the stress needs a cell volume
            sigma = 0.5 * (virial + virial.transpose(1, 2)) / batch.volumes[:, None, None]
        if self.reference is not None:
            ref = self.reference_output(batch, stress=stress)
            atomic, force = atomic + ref.atomic_energies, force + ref.forces
            sigma = sigma + ref.stress if stress else None
        return PotentialOutput(batch.sum_per_structure(atomic), force, sigma, atomic)

    def reference_output(self, batch: AtomsBatch, *, stress: bool = True) -> PotentialOutput:
        """Energy, forces (and stress) of the reference pair potential alone."""
        if self.reference is None:
            raise ValueError("this potential has no reference pair potential")
        return self._forward_autograd(batch, True, stress, False, with_model=False)

    def _forward_autograd(
        self,
        batch: AtomsBatch,
        forces: bool,
        stress: bool,
        create_graph: bool,
        *,
        with_model: bool,
    ) -> PotentialOutput:
        positions = batch.positions.clone().requires_grad_(forces)
        strain = batch.zero_strain(requires_grad=stress)
        with torch.enable_grad():
            vectors, _ = batch.strained(positions, strain)
            atomic = self.atomic_energies(batch, vectors, with_model=with_model)
            energy = batch.sum_per_structure(atomic)
            wanted = [t for t, flag in ((positions, forces), (strain, stress)) if flag]
            grads = (
                list(torch.autograd.grad(energy.sum(), wanted, create_graph=create_graph))
                if wanted
                else []
            )
        force = -grads.pop(0) if forces else None
        sigma = None
        if stress:
            g = grads.pop(0)
            sigma = 0.5 * (g + g.transpose(1, 2)) / batch.volumes[:, None, None]
        if not create_graph:
            energy, atomic = energy.detach(), atomic.detach()
            force = force.detach() if force is not None else None
            sigma = sigma.detach() if sigma is not None else None
        return PotentialOutput(energy, force, sigma, atomic)

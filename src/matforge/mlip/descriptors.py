"""The descriptor seam: per-atom features of a neighbourhood, differentiable in positions.

A `Descriptor` is a torch module with `elements`, `cutoff` (A, the largest pair cutoff it
needs), `n_features`, and `forward(vectors, center, neighbor_species, center_species)`
returning (N, n_features) from the pair vectors r_j - r_i. Because features are computed
from pair vectors that autograd traces back to positions and cell, every model built on a
descriptor gets forces and stresses from the same code path (`potential.Potential`), and a
linear model gets its design matrix (`design_matrix`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from matforge.mlip.batch import AtomsBatch


@runtime_checkable
class Descriptor(Protocol):
    elements: tuple[str, ...]

    @property
    def cutoff(self) -> float: ...

    @property
    def n_features(self) -> int: ...

    def __call__(
        self,
        vectors: torch.Tensor,
        center: torch.Tensor,
        neighbor_species: torch.Tensor,
        center_species: torch.Tensor,
    ) -> torch.Tensor: ...


def atomic_features(
    descriptor: Descriptor, batch: AtomsBatch, vectors: torch.Tensor
) -> torch.Tensor:
    pairs = batch.pairs
    return descriptor(vectors, pairs.center, batch.species[pairs.neighbor], batch.species)


@dataclass(frozen=True)
class DesignMatrix:
    """Rows of a linear model E = sum_i c[s_i] . (1, D_i), by element block of columns.

    energy (S, K): sum over each structure's atoms; forces (S-major, 3 N, K): -dE-row/dr;
    stress (S, 6, K): (1/V) dE-row/d strain, Voigt order xx yy zz yz xz xy (ASE's stress
    convention, eV/A^3); atoms (N, K): each atom's own row (its energy is atoms @ c), the
    rows active learning measures extrapolation with. K = n_elements * (1 + n_features).
    """

    energy: torch.Tensor
    forces: torch.Tensor
    stress: torch.Tensor
    atoms: torch.Tensor


VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def to_voigt(tensor: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 6) in the order of VOIGT (ASE's xx yy zz yz xz xy)."""
    rows, columns = zip(*VOIGT, strict=True)
    return tensor[..., list(rows), list(columns)]


def design_matrix(
    descriptor: Descriptor,
    batch: AtomsBatch,
    *,
    forces: bool = True,
    stress: bool = True,
    method: str = "auto",
) -> DesignMatrix:
    """Energy, force and stress rows of a batch. `method` "columns": one batched backward
    pass over every (element, feature) column; "pairs": over the features only, through
    the pair Jacobian; "strain": stress rows by forward-mode derivatives along the six
    strain directions (no force rows; 5x faster than the pair Jacobian for 4-element SNAP
    2J = 6, where only stresses are wanted, as for a committee's stress spread); "auto":
    the product rule for a quadratic SNAP, strain for stress without forces, pairs with
    several elements, columns otherwise (the paths agree to rounding; tests check it).

    A quadratic SNAP takes the product rule instead: the backward passes run over its
    linear components only, and the quadratic columns B_a B_b follow from them per pair
    (1,596 columns at 2J = 8 would otherwise need 1,595 passes)."""
    if method not in ("auto", "columns", "pairs", "strain"):
        raise ValueError(f"method must be 'auto', 'columns', 'pairs' or 'strain', got {method!r}")
    linear = getattr(descriptor, "linear_part", None)
    if method == "auto" and linear is not None and (forces or stress):
        return _quadratic_design_matrix(descriptor, linear, batch, forces=forces, stress=stress)
    if method == "strain" or (method == "auto" and stress and not forces):
        if forces:
            raise ValueError("method 'strain' gives energy and stress rows, not force rows")
        return _strain_design_matrix(descriptor, batch)
    n_el = len(batch.elements)
    pairs = method == "pairs" or (method == "auto" and n_el > 1)
    if pairs and (forces or stress):
        # One backward pass per feature, not per (element, feature) column: the pair
        # Jacobian is scattered into the centre's element block (n_el times less work and
        # memory; 2J = 8 with four elements ran out of 24 GB the other way).
        features, jacobian, vectors = pair_jacobian(descriptor, batch)
        return rows_from_pair_jacobian(
            batch, features, jacobian, vectors, forces=forces, stress=stress
        )
    positions = batch.positions.clone().requires_grad_(forces)
    strain = torch.zeros(batch.n_structures, 3, 3, dtype=torch.float64, requires_grad=stress)
    vectors, _ = batch.strained(positions, strain)
    features = atomic_features(descriptor, batch, vectors)
    with_constant = torch.cat([torch.ones_like(features[:, :1]), features], dim=1)
    width = with_constant.shape[1]
    blocks = with_constant.new_zeros(len(features), n_el, width)
    blocks[torch.arange(len(features)), batch.species] = with_constant
    energy = batch.sum_per_structure(blocks.reshape(len(features), -1))
    k = energy.shape[1]
    force_rows = energy.new_zeros(0, k)
    stress_rows = energy.new_zeros(batch.n_structures, 0, k)
    inputs = [t for t, wanted in ((positions, forces), (strain, stress)) if wanted]
    if inputs:
        # Constant columns have no gradient; differentiate only the feature columns.
        live = [c for c in range(k) if c % width != 0]
        seeds = torch.zeros(len(live), *energy.shape, dtype=energy.dtype)
        seeds[torch.arange(len(live)), :, live] = 1.0
        grads = torch.autograd.grad(
            energy, inputs, grad_outputs=seeds, is_grads_batched=True, allow_unused=True
        )
        grads = list(grads)
        if forces:
            g = grads.pop(0)  # (L, N, 3)
            force_rows = energy.new_zeros(3 * len(features), k)
            force_rows[:, live] = -g.reshape(len(live), -1).T
        if stress:
            g = grads.pop(0)  # (L, S, 3, 3)
            voigt = torch.stack([g[:, :, a, b] for a, b in VOIGT], dim=-1)  # (L, S, 6)
            stress_rows = energy.new_zeros(batch.n_structures, 6, k)
            stress_rows[:, :, live] = (voigt / batch.volumes[None, :, None]).permute(1, 2, 0)
    return DesignMatrix(
        energy.detach(),
        force_rows.detach(),
        stress_rows.detach(),
        blocks.reshape(len(features), -1).detach(),
    )


def _atom_rows(batch: AtomsBatch, features: torch.Tensor) -> torch.Tensor:
    """Each atom's row (N, K): (1, features) in its element's block of columns, zeros
    elsewhere."""
    n_el, n_atoms, width = len(batch.elements), len(features), features.shape[1] + 1
    blocks = features.new_zeros(n_atoms, n_el, width)
    blocks[torch.arange(n_atoms), batch.species, 0] = 1.0
    blocks[torch.arange(n_atoms), batch.species, 1:] = features
    return blocks.reshape(n_atoms, -1)


def _strain_design_matrix(descriptor: Descriptor, batch: AtomsBatch) -> DesignMatrix:
    """Energy and stress rows: the features' derivatives along the six Voigt strain
    directions in forward mode (one vectorized pass; a backward pass per feature costs
    as many passes as there are features)."""
    zero = batch.zero_strain()

    def features_at(strain: torch.Tensor) -> torch.Tensor:
        vectors, _ = batch.strained(batch.positions, strain)
        return atomic_features(descriptor, batch, vectors)

    tangents = zero.new_zeros(len(VOIGT), *zero.shape)
    for column, (a, b) in enumerate(VOIGT):
        tangents[column, :, a, b] = 1.0
    features = features_at(zero).detach()
    derivatives = torch.func.vmap(lambda t: torch.func.jvp(features_at, (zero,), (t,))[1])(
        tangents
    )  # (6, N, F)
    n_el, n_atoms, width = len(batch.elements), len(features), features.shape[1] + 1
    atoms = _atom_rows(batch, features)
    energy = batch.sum_per_structure(atoms)
    per_atom = derivatives.new_zeros(len(VOIGT), n_atoms, n_el, width)
    per_atom[:, torch.arange(n_atoms), batch.species, 1:] = derivatives
    stress = batch.sum_per_structure(per_atom.reshape(len(VOIGT), n_atoms, -1).transpose(0, 1))
    stress = stress / batch.volumes[:, None, None]  # (S, 6, K)
    return DesignMatrix(energy, energy.new_zeros(0, energy.shape[1]), stress.detach(), atoms)


def pair_jacobian(
    descriptor: Descriptor, batch: AtomsBatch
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features (N, K), d features_{center(p)} / d r_p (P, 3, K) and the pair vectors, by
    one batched backward pass over the K columns (a pair vector moves only its centre)."""
    pairs = batch.pairs
    zero = batch.zero_strain()
    vectors = batch.strained(batch.positions, zero)[0].detach().requires_grad_(True)
    features = descriptor(vectors, pairs.center, batch.species[pairs.neighbor], batch.species)
    k = features.shape[1]
    seeds = features.new_zeros(k, *features.shape)
    seeds[torch.arange(k), :, torch.arange(k)] = 1.0
    (grads,) = torch.autograd.grad(features, vectors, grad_outputs=seeds, is_grads_batched=True)
    return features.detach(), grads.permute(1, 2, 0), vectors.detach()


def rows_from_pair_jacobian(
    batch: AtomsBatch,
    features: torch.Tensor,
    jacobian: torch.Tensor,
    vectors: torch.Tensor,
    *,
    forces: bool = True,
    stress: bool = True,
) -> DesignMatrix:
    """The `DesignMatrix` of a linear model on per-atom features with their pair Jacobian."""
    n_el, n_atoms, width = len(batch.elements), len(features), features.shape[1] + 1
    atoms = _atom_rows(batch, features)
    energy = batch.sum_per_structure(atoms)
    pairs = batch.pairs
    # dE-row/dr_p lives in the centre's species block
    species = batch.species[pairs.center]
    grad = jacobian.new_zeros(len(jacobian), 3, n_el, width)
    grad[torch.arange(len(jacobian)), :, species, 1:] = jacobian
    grad = grad.reshape(len(jacobian), 3, -1)
    force_rows = energy.new_zeros(0, energy.shape[1])
    stress_rows = energy.new_zeros(batch.n_structures, 0, energy.shape[1])
    if forces:
        per_atom = energy.new_zeros(n_atoms, 3, energy.shape[1])
        per_atom.index_add_(0, pairs.neighbor, -grad)
        per_atom.index_add_(0, pairs.center, grad)
        force_rows = per_atom.reshape(3 * n_atoms, -1)
    if stress:
        stress_rows = energy.new_zeros(batch.n_structures, 6, energy.shape[1])
        for column, (a, b) in enumerate(VOIGT):
            sym = 0.5 * (vectors[:, a, None] * grad[:, b] + vectors[:, b, None] * grad[:, a])
            stress_rows[:, column].index_add_(0, pairs.structure, sym)
        stress_rows = stress_rows / batch.volumes[:, None, None]
    return DesignMatrix(energy, force_rows, stress_rows, atoms)


def _quadratic_design_matrix(
    descriptor: Descriptor,
    linear: Descriptor,
    batch: AtomsBatch,
    *,
    forces: bool,
    stress: bool,
) -> DesignMatrix:
    b, db, vectors = pair_jacobian(linear, batch)
    rows, cols = torch.triu_indices(b.shape[1], b.shape[1])
    half = torch.where(rows == cols, 0.5, 1.0).to(b.dtype)
    quadratic = half * b[:, rows] * b[:, cols]
    center = batch.pairs.center
    dquadratic = half * (
        db[:, :, rows] * b[center][:, None, cols] + b[center][:, None, rows] * db[:, :, cols]
    )
    features = torch.cat([b, quadratic], dim=1)
    jacobian = torch.cat([db, dquadratic], dim=2)
    return rows_from_pair_jacobian(batch, features, jacobian, vectors, forces=forces, stress=stress)

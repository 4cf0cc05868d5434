"""Predictive variance of a fitted GAP for energies and force components (DTC, exact prior).

The prior variance of a structure's energy is sum_{i,j} k(q_i, q_j) over its same-species
atom pairs. That of a force component F_ka = -dE/dr_ka is the mixed second derivative of
the energy-energy kernel of the structure with itself,

    sum_{i,j} b_i^T [d^2 k / dq dq'](q_i, q_j) b_j,   b_i = dq_i / dr_ka,

with d^2 (q . q')^zeta / dq dq' = zeta s^(zeta-1) I + zeta (zeta-1) s^(zeta-2) q' q^T,
s = q . q'. Only atoms whose neighbourhood holds atom k have b_i != 0; they are gathered
per atom from the descriptor's closed-form Jacobian.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from matforge.core.errors import ConfigError
from matforge.mlip.batch import AtomsBatch
from matforge.mlip.gap import Environments, GapFit, GapModel, observation_rows, two_body_term
from matforge.mlip.potential import Potential
from matforge.mlip.soap import SOAP


@dataclass(frozen=True)
class GapPrediction:
    energy: np.ndarray  # (S,) eV
    forces: np.ndarray  # (N, 3) eV/A
    energy_variance: np.ndarray  # (S,) eV^2
    force_variance: np.ndarray  # (N, 3) (eV/A)^2
    structure: np.ndarray  # (N,) structure of each atom


def _derivative_entries(
    batch: AtomsBatch, dq: torch.Tensor, keep: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Non-zero blocks b = dq_i / dr_k (E, 3, D) with their (k, i), merged per (k, i)."""
    n = len(batch.species)
    center, neighbor = batch.pairs.center[keep], batch.pairs.neighbor[keep]
    keys = torch.cat([neighbor * n + center, center * n + center])
    values = torch.cat([dq, -dq])
    unique, inverse = torch.unique(keys, return_inverse=True)
    merged = values.new_zeros(len(unique), *values.shape[1:]).index_add_(0, inverse, values)
    return unique // n, unique % n, merged


def prior_force_variance(
    descriptor: SOAP,
    model: GapModel,
    batch: AtomsBatch,
    *,
    atom_chunk: int = 64,
    environments: Environments | None = None,
) -> torch.Tensor:
    """Prior variance of every force component (N, 3) of the batch's structures."""
    env = environments if environments is not None else Environments.of(descriptor, batch)
    q, dq, keep = env.features, env.jacobian, env.keep
    moved, owner, blocks = _derivative_entries(batch, dq, keep)
    n = len(q)
    counts = torch.bincount(moved, minlength=n)
    width = int(counts.max()) if len(counts) else 0
    slot = torch.arange(len(moved), device=moved.device) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    z, d2 = model.zeta, model.delta**2
    out = q.new_zeros(n, 3)
    for start in range(0, n, atom_chunk):
        stop = min(n, start + atom_chunk)
        in_chunk = (moved >= start) & (moved < stop)
        rows = moved[in_chunk] - start
        b = q.new_zeros(stop - start, width, 3, q.shape[1])
        b[rows, slot[in_chunk]] = blocks[in_chunk]
        atom = torch.full((stop - start, width), -1, dtype=torch.long)
        atom[rows, slot[in_chunk]] = owner[in_chunk]
        valid = atom >= 0
        qa = q[atom.clamp(min=0)] * valid[..., None]  # (K, W, D)
        sa = batch.species[atom.clamp(min=0)]
        same = (sa[:, :, None] == sa[:, None, :]) & valid[:, :, None] & valid[:, None, :]
        s = (qa @ qa.transpose(1, 2)).clamp(min=0.0)
        bb = torch.einsum("kiad,kjad->kaij", b, b)
        u = torch.einsum("kiad,kjd->kaij", b, qa)  # b_i . q_j
        first = s ** (z - 1)
        second = (z - 1) * s ** (z - 2) if z != 1 else torch.zeros_like(s)
        second = torch.where(s > 0, second, torch.zeros_like(s))
        term = first[:, None] * bb + second[:, None] * u * u.transpose(2, 3)
        out[start:stop] = d2 * z * (term * same[:, None]).sum(dim=(2, 3))
    return out


def prior_energy_variance(model: GapModel, q: torch.Tensor, batch: AtomsBatch) -> torch.Tensor:
    same_structure = batch.structure[:, None] == batch.structure[None, :]
    same_species = batch.species[:, None] == batch.species[None, :]
    k = model.delta**2 * (q @ q.T).clamp(min=0.0) ** model.zeta * same_species * same_structure
    return batch.sum_per_structure(k.sum(dim=1))


def prior_variances(
    potential: Potential, batch: AtomsBatch, env: Environments
) -> tuple[np.ndarray, np.ndarray]:
    """Prior variances of the batch's energies (S,) and force components (N, 3): the SOAP
    term's plus, independent of it, the 2-body term's."""
    descriptor, model = potential.descriptor, potential.model
    prior_e = prior_energy_variance(model, env.features, batch)
    prior_f = prior_force_variance(descriptor, model, batch, environments=env)
    term = two_body_term(potential)
    if term is not None:
        prior_e = prior_e + term.prior_energy_variance(batch, env.vectors)
        prior_f = prior_f + term.prior_force_variance(batch, env.vectors)
    return prior_e.numpy(), prior_f.numpy()


def predict_with_variance(
    gap: GapFit | Potential, structures: Sequence[Atoms], *, chunk: int = 10
) -> GapPrediction:
    """Energies, forces and their DTC predictive variances for `structures`: variances of
    the noise-free values; that of a (noisy) label adds its sigma^2."""
    potential = gap.potential if isinstance(gap, GapFit) else gap
    descriptor, model = potential.descriptor, potential.model
    if not isinstance(model, GapModel) or not isinstance(descriptor, SOAP):
        raise ConfigError("predictive variances need a SOAP GAP potential")
    energies, forces, e_var, f_var, owners = [], [], [], [], []
    for start in range(0, len(structures), chunk):
        part = list(structures[start : start + chunk])
        batch = potential.batch(part)
        out = potential(batch, stress=False)
        env = Environments.of(descriptor, batch)
        energy_rows, force_rows, _ = observation_rows(
            potential, batch, virials=False, environments=env
        )
        prior_e, prior_f = prior_variances(potential, batch, env)
        e_var.append(model.variance_of_rows(energy_rows, prior_e))
        k_f = force_rows.reshape(-1, force_rows.shape[-1])
        f_var.append(model.variance_of_rows(k_f, prior_f.reshape(-1)).reshape(-1, 3))
        energies.append(out.energy.numpy())
        forces.append(out.forces.numpy())
        owners.append(batch.structure.numpy() + start)
    return GapPrediction(
        np.concatenate(energies),
        np.concatenate(forces),
        np.concatenate(e_var),
        np.concatenate(f_var),
        np.concatenate(owners),
    )

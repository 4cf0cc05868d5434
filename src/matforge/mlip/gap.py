"""Gaussian approximation potentials (Bartok et al., PRL 104 (2010) 136403), as gap_fit fits.

The atomic energy is a Gaussian process over per-atom descriptors q (normalized SOAP), with
the dot-product kernel k(q, q') = delta^2 (q . q')^zeta between atoms of the same species
(0 across species), represented on M sparse environments q_m:

    e(q_i) = e0[s_i] + sum_m alpha_m k(q_i, q_m).

Observations are total energies (sums of e), force components (-dE/dr) and virials
(-dE/d strain), so each is linear in alpha with a row of kernel "columns" (`KernelRows`).
The projected-process (DTC) posterior mean minimizes

    || Lambda^{-1/2} (y - K_NM alpha) ||^2 + alpha^T K_MM alpha,

solved as gap_fit does: QR of the stacked matrix [Lambda^{-1/2} K_NM; U] with U^T U the
Cholesky factor of K_MM + sparse_jitter I, never the normal equations. The noise sigmas
are gap_fit's: `default_sigma` = (energy, force, virial), energy and virial per atom when
`sigma_per_atom` (variance times the number of atoms), overridable per group.

Predictive variance of any observation with kernel row k* (energies, force components):

    var = k** - k* K_MM^{-1} k*^T + k* (K_MM + K_MN Lambda^{-1} K_NM)^{-1} k*^T,

the DTC variance (the prior k** computed exactly; for a force component by differentiating
the energy-energy kernel of the structure with itself, `prior_force_variance`).

With `two_body` settings, a 2-body GP over pair distances (`two_body.TwoBodyGP`, gap_fit's
distance_2b) is fitted jointly: its kernel columns follow the SOAP ones, the sparse
covariance is block diagonal, and the fitted term sits in the potential's reference
(beside a fixed ZBL, if any), where pair terms live. The model's posterior factors cover
both blocks, in that order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.linalg
import torch
from ase import Atoms

from matforge.core.errors import ConfigError
from matforge.core.progress import track
from matforge.mlip.batch import AtomsBatch
from matforge.mlip.descriptors import VOIGT
from matforge.mlip.linear import read_labels
from matforge.mlip.potential import Potential, combine_references, reference_terms
from matforge.mlip.soap import SOAP, SoapParameters
from matforge.mlip.sparse import select_sparse
from matforge.mlip.two_body import (
    TwoBodyGP,
    TwoBodySettings,
    sparse_covariance,
    uniform_sparse_distances,
)

KIND_CODES = {"energy": 0, "force": 1, "virial": 2}


class GapModel(torch.nn.Module):
    """Atomic energies e0[s] + sum_m alpha_m delta^2 (q . q_m)^zeta over same-species q_m."""

    def __init__(
        self,
        sparse_features: torch.Tensor,
        sparse_species: torch.Tensor,
        alpha: torch.Tensor,
        e0: torch.Tensor,
        *,
        delta: float,
        zeta: float,
    ) -> None:
        super().__init__()
        self.register_buffer("sparse_features", sparse_features.to(torch.float64))
        self.register_buffer("sparse_species", sparse_species.to(torch.long))
        self.register_buffer("alpha", alpha.to(torch.float64))
        self.register_buffer("e0", e0.to(torch.float64))
        self.delta = float(delta)
        self.zeta = float(zeta)
        # factors of the posterior (set by the fit; empty for a model without variance)
        self.register_buffer("cholesky_mm", torch.zeros(0, 0, dtype=torch.float64))
        self.register_buffer("r_factor", torch.zeros(0, 0, dtype=torch.float64))

    @property
    def has_variance(self) -> bool:
        return self.r_factor.numel() > 0

    def variance_of_rows(self, k_star: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """DTC predictive variance of observations with kernel rows k_star (R, M) and prior
        variances `prior` (R,)."""
        if not self.has_variance:
            raise ConfigError("this GAP carries no posterior factors; refit it to get variances")
        return dtc_variance(self.cholesky_mm.numpy(), self.r_factor.numpy(), k_star, prior)

    @property
    def n_sparse(self) -> int:
        return len(self.alpha)

    def similarity(self, features: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """q_i . q_m (N, M), 0 where species differ."""
        same = species[:, None] == self.sparse_species[None, :]
        return (features @ self.sparse_features.T).clamp(min=0.0) * same

    def kernel(self, features: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        return self.delta**2 * self.similarity(features, species) ** self.zeta

    def forward(self, features: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        return self.kernel(features, species) @ self.alpha + self.e0[species]


def dtc_variance(
    cholesky_mm: np.ndarray, r_factor: np.ndarray, k_star: np.ndarray, prior: np.ndarray
) -> np.ndarray:
    """prior - |L^-1 k*|^2 + |R^-T k*|^2 per row of k_star (R, M)."""
    nystrom = scipy.linalg.solve_triangular(cholesky_mm, k_star.T, lower=True)
    posterior = scipy.linalg.solve_triangular(r_factor, k_star.T, trans="T", lower=False)
    return prior - (nystrom**2).sum(axis=0) + (posterior**2).sum(axis=0)


def gap_potential(
    parameters: SoapParameters, reference: torch.nn.Module | None = None
) -> Potential:
    """An unfitted SOAP GAP (no sparse points yet; `fit_gap` chooses them)."""
    descriptor = SOAP(parameters)
    n = len(parameters.elements)
    model = GapModel(
        torch.zeros(0, descriptor.n_features, dtype=torch.float64),
        torch.zeros(0, dtype=torch.long),
        torch.zeros(0, dtype=torch.float64),
        torch.zeros(n, dtype=torch.float64),
        delta=1.0,
        zeta=1.0,
    )
    return Potential(descriptor, model, reference)


@dataclass(frozen=True)
class GapSettings:
    """gap_fit's settings for one SOAP GAP (names as in its command line)."""

    zeta: float = 4.0
    delta: float = 1.0
    n_sparse: int = 1000
    sparse_method: Literal["cur", "cur_top", "fps", "random"] = "cur"
    sparse_jitter: float = 1e-10
    default_sigma: tuple[float, float, float] = (0.01, 0.05, 0.01)
    group_sigma: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)
    sigma_per_atom: bool = True
    e0: Mapping[str, float] | Literal["average"] = "average"
    fit_forces: bool = True
    fit_virials: bool = True
    seed: int = 0
    two_body: TwoBodySettings | None = None

    def __post_init__(self) -> None:
        if self.zeta <= 0 or self.delta <= 0:
            raise ConfigError("zeta and delta must be > 0")
        if self.sparse_jitter < 0:
            raise ConfigError("sparse_jitter must be >= 0")
        for name, sigmas in {"default_sigma": self.default_sigma, **self.group_sigma}.items():
            if len(sigmas) != 3 or any(s <= 0 for s in sigmas):
                raise ConfigError(f"{name}: expected three sigmas > 0 (energy, force, virial)")


@dataclass
class KernelRows:
    """Observation rows K (R, M) with targets y (R,), kind codes, group and structure."""

    k: np.ndarray
    y: np.ndarray
    kind: np.ndarray
    structure: np.ndarray
    n_atoms: np.ndarray  # atoms of the row's structure
    group: np.ndarray

    def sigmas(self, settings: GapSettings) -> np.ndarray:
        table = {**dict.fromkeys(set(self.group), settings.default_sigma), **settings.group_sigma}
        by_kind = np.array([table[g][k] for g, k in zip(self.group, self.kind, strict=True)])
        if settings.sigma_per_atom:
            per_atom = self.kind != KIND_CODES["force"]
            by_kind = np.where(per_atom, by_kind * np.sqrt(self.n_atoms), by_kind)
        return by_kind


def _labels(
    atoms: Atoms, index: int, want_virial: bool
) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Energy, forces and, when wanted and the cell is periodic, the virial -V stress."""
    energy, forces, stress = read_labels(atoms, index)
    virial = None
    if want_virial and stress is not None and atoms.pbc.all():
        virial = -np.asarray(stress) * atoms.get_volume()
    return float(energy), np.asarray(forces), virial


@dataclass(frozen=True)
class Environments:
    """SOAP features and their pair Jacobian for one batch, reusable across sparse sets."""

    batch: AtomsBatch
    vectors: torch.Tensor
    features: torch.Tensor
    jacobian: torch.Tensor
    keep: torch.Tensor

    @classmethod
    def of(cls, descriptor: SOAP, batch: AtomsBatch) -> Environments:
        pairs = batch.pairs
        vectors, _ = batch.strained(batch.positions, batch.zero_strain())
        q, dq, keep = descriptor.jacobian(
            vectors, pairs.center, batch.species[pairs.neighbor], batch.species
        )
        return cls(batch, vectors.detach(), q, dq, keep)


def kernel_rows(
    descriptor: SOAP,
    model: GapModel,
    batch: AtomsBatch,
    *,
    forces: bool = True,
    virials: bool = True,
    pair_chunk: int = 4000,
    environments: Environments | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Kernel rows against the sparse set: total energy (S, M), forces (N, 3, M) as -dE/dr,
    virials (S, 6, M) as -dE/d strain (Voigt order of VOIGT), and the per-atom rows (N, M)."""
    pairs = batch.pairs
    env = environments if environments is not None else Environments.of(descriptor, batch)
    vectors, q, dq, keep = env.vectors, env.features, env.jacobian, env.keep
    similarity = model.similarity(q, batch.species)
    atom_rows = model.delta**2 * similarity**model.zeta
    energy = batch.sum_per_structure(atom_rows)
    m = model.n_sparse
    force_rows = atom_rows.new_zeros(len(q), 3, m)
    virial_rows = atom_rows.new_zeros(batch.n_structures, 6, m)
    if forces or virials:
        # dk/dq_i = zeta delta^2 (q_i . q_m)^(zeta - 1) q_m for same-species m
        slope = model.zeta * model.delta**2 * similarity ** (model.zeta - 1)
        center, neighbor = pairs.center[keep], pairs.neighbor[keep]
        kept_vectors = vectors[keep]
        owner = pairs.structure[keep]
        for start in range(0, len(center), pair_chunk):
            part = slice(start, start + pair_chunk)
            # dE_m / d r_p = (dq_p . q_m) slope[i(p), m], (p, 3, M)
            grad = torch.einsum("pxd,md->pxm", dq[part], model.sparse_features)
            grad = grad * slope[center[part]][:, None, :]
            if forces:
                force_rows.index_add_(0, neighbor[part], -grad)
                force_rows.index_add_(0, center[part], grad)
            if virials:
                v = kept_vectors[part]
                for column, (a, b) in enumerate(VOIGT):
                    sym = 0.5 * (v[:, a, None] * grad[:, b] + v[:, b, None] * grad[:, a])
                    virial_rows[:, column].index_add_(0, owner[part], -sym)
    return energy, force_rows, virial_rows, atom_rows


def two_body_term(potential: Potential) -> TwoBodyGP | None:
    """The fitted 2-body term of a GAP potential, if it has one."""
    terms = [t for t in reference_terms(potential.reference) if isinstance(t, TwoBodyGP)]
    return terms[0] if terms else None


def observation_rows(
    potential: Potential,
    batch: AtomsBatch,
    *,
    forces: bool = True,
    virials: bool = True,
    environments: Environments | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kernel rows of energies (S, M), forces (N, 3, M) and virials (S, 6, M) against the
    whole sparse set: the SOAP points, then the 2-body distances (if any)."""
    env = environments if environments is not None else Environments.of(potential.descriptor, batch)
    energy, force, virial, _ = kernel_rows(
        potential.descriptor,
        potential.model,
        batch,
        forces=forces,
        virials=virials,
        environments=env,
    )
    term = two_body_term(potential)
    if term is None:
        return energy.numpy(), force.numpy(), virial.numpy()
    e2, f2, v2 = term.rows(batch, env.vectors)
    return (
        np.concatenate([energy.numpy(), e2.numpy()], axis=-1),
        np.concatenate([force.numpy(), f2.numpy()], axis=-1),
        np.concatenate([virial.numpy(), v2.numpy()], axis=-1),
    )


def sparse_covariance_matrix(potential: Potential) -> np.ndarray:
    """K_MM of the whole sparse set (block diagonal: SOAP, then 2-body)."""
    model = potential.model
    k_mm = model.kernel(model.sparse_features, model.sparse_species).numpy()
    term = two_body_term(potential)
    if term is None:
        return k_mm
    return scipy.linalg.block_diag(k_mm, sparse_covariance(term))


def _assemble(
    potential: Potential,
    structures: Sequence[Atoms],
    settings: GapSettings,
    e0: torch.Tensor,
    chunk: int,
) -> KernelRows:
    blocks = []
    for start in track(range(0, len(structures), chunk), description="GAP kernel rows"):
        part = list(structures[start : start + chunk])
        batch = potential.batch(part)
        energy, force, virial = observation_rows(
            potential, batch, forces=settings.fit_forces, virials=settings.fit_virials
        )
        reference = potential.reference_output(batch) if potential.reference is not None else None
        counts = batch.n_atoms.numpy()
        offsets = np.concatenate([[0], np.cumsum(counts)])
        for k, atoms in enumerate(part):
            index = start + k
            e, f, w = _labels(atoms, index, settings.fit_virials)
            lo, hi = offsets[k], offsets[k + 1]
            species = batch.species[lo:hi]
            e_target = e - float(e0[species].sum())
            f_target = f
            if reference is not None:
                e_target -= float(reference.energy[k])
                f_target = f - reference.forces[lo:hi].numpy()
                if w is not None:
                    w = w + reference.stress[k].numpy() * float(batch.volumes[k])
            ks, ys, kinds = [energy[k][None]], [np.array([e_target])], [0]
            if settings.fit_forces:
                ks.append(force[lo:hi].reshape(-1, force.shape[-1]))
                ys.append(f_target.reshape(-1))
                kinds.append(1)
            if w is not None:
                ks.append(virial[k])
                ys.append(np.array([w[a, b] for a, b in VOIGT]))
                kinds.append(2)
            sizes = [len(y) for y in ys]
            total = sum(sizes)
            blocks.append(
                (
                    np.concatenate(ks),
                    np.concatenate(ys),
                    np.repeat(kinds, sizes),
                    np.full(total, index),
                    np.full(total, counts[k]),
                    np.array([str(atoms.info.get("group", "all"))] * total, dtype=object),
                )
            )
    k, y, kind, owner, n_atoms, group = (np.concatenate(x) for x in zip(*blocks, strict=True))
    return KernelRows(k, y, kind.astype(np.int64), owner, n_atoms, group)


def average_e0(structures: Sequence[Atoms], elements: Sequence[str]) -> dict[str, float]:
    """gap_fit's e0_method=average: the mean energy per atom, the same for every species."""
    per_atom = [a.get_potential_energy() / len(a) for a in structures]
    return dict.fromkeys(elements, float(np.mean(per_atom)))


@dataclass
class GapFit:
    """A fitted GAP with the training rows and which training atoms became sparse points."""

    potential: Potential
    settings: GapSettings
    sparse_index: torch.Tensor
    rows: KernelRows


def fit_gap(
    potential: Potential,
    structures: Sequence[Atoms],
    settings: GapSettings,
    *,
    chunk: int = 10,
) -> GapFit:
    """Fit the GAP of `potential` (a SOAP descriptor with a GapModel whose sparse set is
    replaced) on labelled structures."""
    descriptor = potential.descriptor
    if not isinstance(descriptor, SOAP):
        raise ConfigError("fit_gap needs a potential with a SOAP descriptor")
    if not structures:
        raise ConfigError("fit_gap: no training structures")
    elements = potential.elements
    for index, atoms in enumerate(structures):
        _labels(atoms, index, False)
    e0_map = average_e0(structures, elements) if settings.e0 == "average" else dict(settings.e0)
    missing = sorted(set(elements) - set(e0_map))
    if missing:
        raise ConfigError(f"e0 gives no value for {missing}")
    e0 = torch.tensor([e0_map[e] for e in elements], dtype=torch.float64)
    # a refit replaces an earlier 2-body term; fixed terms (ZBL) stay
    fixed = [t for t in reference_terms(potential.reference) if not isinstance(t, TwoBodyGP)]
    term = TwoBodyGP(elements, settings.two_body) if settings.two_body is not None else None
    potential.reference = combine_references(fixed + ([term] if term is not None else []))
    features, species, pair_batches = [], [], []
    for start in range(0, len(structures), chunk):
        batch = potential.batch(list(structures[start : start + chunk]))
        with torch.no_grad():
            vectors, _ = batch.strained(batch.positions, batch.zero_strain())
            pairs = batch.pairs
            features.append(
                descriptor(vectors, pairs.center, batch.species[pairs.neighbor], batch.species)
            )
        species.append(batch.species)
        if term is not None:
            pair_batches.append((batch, vectors))
    if term is not None:
        distances, types = uniform_sparse_distances(term, pair_batches)
        term.sparse_distance, term.sparse_type = distances, types
        term.alpha = torch.zeros(len(distances), dtype=torch.float64)
        del pair_batches
    features_all = torch.cat(features)
    species_all = torch.cat(species)
    chosen = []
    for s, element in enumerate(elements):
        members = torch.nonzero(species_all == s).flatten()
        if len(members) == 0:
            raise ConfigError(f"no {element} atoms in the training data")
        try:
            picked = select_sparse(
                features_all[members],
                settings.n_sparse,
                settings.sparse_method,
                seed=settings.seed + s,
            )
        except ConfigError as error:
            raise ConfigError(f"{element} environments: {error}") from None
        chosen.append(members[picked])
    sparse_index = torch.cat(chosen)
    model = GapModel(
        features_all[sparse_index],
        species_all[sparse_index],
        torch.zeros(len(sparse_index), dtype=torch.float64),
        e0,
        delta=settings.delta,
        zeta=settings.zeta,
    )
    potential.model = model
    rows = _assemble(potential, structures, settings, e0, chunk)
    k_mm = sparse_covariance_matrix(potential)
    alpha, chol, r = solve_dtc(rows.k, rows.y, rows.sigmas(settings), k_mm, settings.sparse_jitter)
    with torch.no_grad():
        model.alpha.copy_(torch.from_numpy(alpha[: model.n_sparse]))
        if term is not None:
            term.alpha = torch.from_numpy(alpha[model.n_sparse :].copy())
    model.cholesky_mm = torch.from_numpy(chol)
    model.r_factor = torch.from_numpy(r)
    return GapFit(potential, settings, sparse_index, rows)


def solve_dtc(
    k_nm: np.ndarray, y: np.ndarray, sigma: np.ndarray, k_mm: np.ndarray, jitter: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """alpha minimizing ||(y - K alpha) / sigma||^2 + alpha^T K_MM alpha by QR; returns
    alpha, the Cholesky factor L of K_MM + jitter I and the R of the stacked QR."""
    m = len(k_mm)
    try:
        chol = scipy.linalg.cholesky(k_mm + jitter * np.eye(m), lower=True)
    except np.linalg.LinAlgError as error:
        raise ConfigError(
            f"the sparse covariance K_MM is not positive definite ({error}); raise "
            "sparse_jitter or remove duplicate sparse points"
        ) from None
    stacked = np.vstack([k_nm / sigma[:, None], chol.T])
    target = np.concatenate([y / sigma, np.zeros(m)])
    q, r = scipy.linalg.qr(stacked, mode="economic")
    alpha = scipy.linalg.solve_triangular(r, q.T @ target, lower=False)
    return alpha, chol, r

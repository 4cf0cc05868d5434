"""The optional 2-body term of a GAP: a sparse GP over pair distances (gap_fit's
`distance_2b` with `covariance_type=ard_se`, `sparse_method=uniform`).

Each unordered pair of atoms of species types t = {s_i, s_j} closer than the cutoff adds
eps_t(r), a GP with the squared-exponential kernel damped by the cutoff function,

    k(r, r') = delta^2 f_c(r) f_c(r') exp(-(r - r')^2 / 2 theta^2)   (same pair type; else 0),

represented on sparse distances r_m spread uniformly over the range the training pairs of
that type cover (up to the cutoff): eps_t(r) = sum_m alpha_m k(r, r_m). It is fitted
jointly with the SOAP term (`fit_gap`): both are linear in their alphas, so their kernel
columns are stacked and the sparse covariance is block diagonal. Pairs are listed both
ways, so an atom gets half of each of its pairs' energies.

Rows of energies, forces and virials and the prior variances of energies and forces are in
closed form (`rows`, `prior_energy_variance`, `prior_force_variance`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from matforge.core.errors import ConfigError
from matforge.mlip.batch import AtomsBatch
from matforge.mlip.descriptors import VOIGT
from matforge.mlip.soap import cosine_cutoff


@dataclass(frozen=True)
class TwoBodySettings:
    """gap_fit's distance_2b settings (cutoff and widths in A, delta in eV)."""

    cutoff: float
    cutoff_transition_width: float = 0.5
    delta: float = 1.0
    theta: float = 1.0
    n_sparse: int = 15

    def __post_init__(self) -> None:
        if self.cutoff <= 0 or self.delta <= 0 or self.theta <= 0:
            raise ConfigError("two_body: cutoff, delta and theta must be > 0")
        if not 0 <= self.cutoff_transition_width < self.cutoff:
            raise ConfigError("two_body: cutoff_transition_width must lie in [0, cutoff)")
        if self.n_sparse < 1:
            raise ConfigError(f"two_body: n_sparse must be >= 1, got {self.n_sparse}")


class TwoBodyGP(torch.nn.Module):
    """Pair energies eps_t(r) as a sparse GP; per-atom energies as a reference term."""

    def __init__(
        self,
        elements: Sequence[str],
        settings: TwoBodySettings,
        sparse_distance: torch.Tensor | None = None,
        sparse_type: torch.Tensor | None = None,
        alpha: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.elements = tuple(elements)
        self.settings = settings
        empty = torch.zeros(0, dtype=torch.float64)
        r = sparse_distance if sparse_distance is not None else empty
        t = sparse_type if sparse_type is not None else torch.zeros(0, dtype=torch.long)
        a = alpha if alpha is not None else torch.zeros(len(r), dtype=torch.float64)
        if not len(r) == len(t) == len(a):
            raise ValueError("two_body: sparse distances, types and alphas differ in length")
        self.register_buffer("sparse_distance", r.to(torch.float64))
        self.register_buffer("sparse_type", t.to(torch.long))
        self.register_buffer("alpha", a.to(torch.float64))

    @property
    def cutoff(self) -> float:
        return self.settings.cutoff

    @property
    def n_sparse(self) -> int:
        return len(self.alpha)

    @property
    def n_types(self) -> int:
        n = len(self.elements)
        return n * (n + 1) // 2

    def pair_type(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Index of the unordered species pair {a, b}."""
        n = len(self.elements)
        low, high = torch.minimum(a, b), torch.maximum(a, b)
        return low * n - low * (low - 1) // 2 + (high - low)

    def type_label(self, t: int) -> str:
        n, e = len(self.elements), self.elements
        for a in range(n):
            for b in range(a, n):
                if int(self.pair_type(torch.tensor(a), torch.tensor(b))) == t:
                    return f"{e[a]}-{e[b]}"
        raise ValueError(t)

    def _cutoff(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return cosine_cutoff(r, self.settings.cutoff, self.settings.cutoff_transition_width)

    def kernel(
        self, r: torch.Tensor, types: torch.Tensor, other_r: torch.Tensor, other_t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """k (P, Q) between distances r (P,) and other_r (Q,), its derivatives dk/dr,
        dk/dr' and d2k/dr dr'."""
        f, df = self._cutoff(r)
        g, dg = self._cutoff(other_r)
        theta2 = self.settings.theta**2
        d = r[:, None] - other_r[None, :]
        same = types[:, None] == other_t[None, :]
        e = self.settings.delta**2 * torch.exp(-0.5 * d * d / theta2) * same
        fg = f[:, None] * g[None, :]
        k = fg * e
        dk_dr = (df[:, None] * g[None, :] - fg * d / theta2) * e
        dk_dr2 = (f[:, None] * dg[None, :] + fg * d / theta2) * e
        mixed = (
            df[:, None] * dg[None, :]
            + df[:, None] * g[None, :] * d / theta2
            - f[:, None] * dg[None, :] * d / theta2
            + fg * (1.0 / theta2 - d * d / theta2**2)
        ) * e
        return k, dk_dr, dk_dr2, mixed

    def _pairs(
        self,
        vectors: torch.Tensor,
        center: torch.Tensor,
        neighbor_species: torch.Tensor,
        center_species: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        r = vectors.norm(dim=-1)
        keep = r < self.settings.cutoff
        types = self.pair_type(center_species[center[keep]], neighbor_species[keep])
        return keep, r[keep], types, vectors[keep]

    def forward(
        self,
        vectors: torch.Tensor,
        center: torch.Tensor,
        neighbor_species: torch.Tensor,
        center_species: torch.Tensor,
    ) -> torch.Tensor:
        """Atomic energies (N,): half of each of the atom's pair energies."""
        keep, r, types, _ = self._pairs(vectors, center, neighbor_species, center_species)
        out = vectors.new_zeros(len(center_species))
        if self.n_sparse == 0 or len(r) == 0:
            return out + 0.0 * vectors.sum()
        k = self.kernel(r, types, self.sparse_distance, self.sparse_type)[0]
        return out.index_add(0, center[keep], 0.5 * (k @ self.alpha))

    # -- closed-form rows for the fit and the variances ---------------------------------
    def rows(
        self, batch: AtomsBatch, vectors: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Kernel rows against the sparse distances: total energy (S, M), forces (N, 3, M)
        and virials (S, 6, M) (-dE/d strain, Voigt order of VOIGT)."""
        pairs = batch.pairs
        keep, r, types, v = self._pairs(
            vectors, pairs.center, batch.species[pairs.neighbor], batch.species
        )
        m = self.n_sparse
        energy = vectors.new_zeros(batch.n_structures, m)
        forces = vectors.new_zeros(len(batch.species), 3, m)
        virials = vectors.new_zeros(batch.n_structures, 6, m)
        if m == 0 or len(r) == 0:
            return energy, forces, virials
        k, dk, _, _ = self.kernel(r, types, self.sparse_distance, self.sparse_type)
        owner = pairs.structure[keep]
        energy.index_add_(0, owner, 0.5 * k)
        unit = v / r[:, None]
        grad = 0.5 * dk[:, None, :] * unit[:, :, None]  # dE_m / d(pair vector), (P, 3, M)
        forces.index_add_(0, pairs.neighbor[keep], -grad)
        forces.index_add_(0, pairs.center[keep], grad)
        for column, (a, b) in enumerate(VOIGT):
            sym = 0.5 * (v[:, a, None] * grad[:, b] + v[:, b, None] * grad[:, a])
            virials[:, column].index_add_(0, owner, -sym)
        return energy, forces, virials

    def prior_energy_variance(self, batch: AtomsBatch, vectors: torch.Tensor) -> torch.Tensor:
        """Prior variance (S,) of each structure's 2-body energy, 1/4 sum_{p,q} k(p, q)."""
        pairs = batch.pairs
        keep, r, types, _ = self._pairs(
            vectors, pairs.center, batch.species[pairs.neighbor], batch.species
        )
        owner = pairs.structure[keep]
        out = vectors.new_zeros(batch.n_structures)
        for s in range(batch.n_structures):
            mine = owner == s
            k = self.kernel(r[mine], types[mine], r[mine], types[mine])[0]
            out[s] = 0.25 * k.sum()
        return out

    def prior_force_variance(self, batch: AtomsBatch, vectors: torch.Tensor) -> torch.Tensor:
        """Prior variance (N, 3) of each force component: F_k = sum_{p: centre k}
        eps'(r_p) u_p, so var F_ka = sum_{p,q} u_pa u_qa d2k/dr dr'(r_p, r_q)."""
        pairs = batch.pairs
        keep, r, types, v = self._pairs(
            vectors, pairs.center, batch.species[pairs.neighbor], batch.species
        )
        center = pairs.center[keep]
        unit = v / r[:, None]
        n = len(batch.species)
        out = vectors.new_zeros(n, 3)
        if len(r) == 0:
            return out
        counts = torch.bincount(center, minlength=n)
        order = torch.argsort(center, stable=True)
        width = int(counts.max())
        slot = torch.arange(len(center)) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts
        )
        index = torch.full((n, width), -1, dtype=torch.long)
        index[center[order], slot] = order
        valid = index >= 0
        safe = index.clamp(min=0)
        rr, tt, uu = r[safe], torch.where(valid, types[safe], -1), unit[safe] * valid[..., None]
        for start in range(0, n, 64):
            part = slice(start, min(n, start + 64))
            d = rr[part][:, :, None] - rr[part][:, None, :]
            theta2 = self.settings.theta**2
            f, df = self._cutoff(rr[part])
            e = self.settings.delta**2 * torch.exp(-0.5 * d * d / theta2)
            e = e * (tt[part][:, :, None] == tt[part][:, None, :]) * (tt[part][:, :, None] >= 0)
            mixed = (
                df[:, :, None] * df[:, None, :]
                + df[:, :, None] * f[:, None, :] * d / theta2
                - f[:, :, None] * df[:, None, :] * d / theta2
                + f[:, :, None] * f[:, None, :] * (1.0 / theta2 - d * d / theta2**2)
            ) * e
            out[part] = torch.einsum("kpa,kpq,kqa->ka", uu[part], mixed, uu[part])
        return out


def uniform_sparse_distances(
    term: TwoBodyGP, batches: Sequence[tuple[AtomsBatch, torch.Tensor]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """gap_fit's `sparse_method=uniform` per pair type: n_sparse distances evenly spaced
    from the shortest training pair of that type to the cutoff."""
    shortest = torch.full((term.n_types,), math.inf, dtype=torch.float64)
    for batch, vectors in batches:
        pairs = batch.pairs
        _, r, types, _ = term._pairs(
            vectors, pairs.center, batch.species[pairs.neighbor], batch.species
        )
        if len(r):
            shortest = torch.minimum(
                shortest,
                torch.full_like(shortest, math.inf).scatter_reduce(0, types, r, "amin"),
            )
    present = torch.nonzero(torch.isfinite(shortest)).flatten()
    if len(present) == 0:
        raise ConfigError(
            f"two_body: no pair of atoms closer than its cutoff {term.cutoff} A in the "
            "training data"
        )
    grids = [
        torch.linspace(float(shortest[t]), term.cutoff, term.settings.n_sparse + 1)[:-1]
        for t in present.tolist()
    ]
    types = torch.repeat_interleave(present, term.settings.n_sparse)
    return torch.cat(grids).to(torch.float64), types


def sparse_covariance(term: TwoBodyGP) -> np.ndarray:
    r, t = term.sparse_distance, term.sparse_type
    return term.kernel(r, t, r, t)[0].numpy()

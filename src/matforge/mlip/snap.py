"""SNAP bispectrum components (Thompson et al., J. Comput. Phys. 285 (2015) 316), in torch.

The density of neighbours j around atom i, weighted by w_j and a cosine switching function,
is mapped onto the 3-sphere (polar angle theta0 = rfac0 pi (r - rmin0) / (rc - rmin0)) and
expanded in Wigner D-functions U^j (hyperspherical harmonics, 2j = 0 .. twojmax). The
rotationally invariant triple products

    B_{j1 j2 j} = sum_{m, m'} conj(U^j_{m m'}) Z^{j1 j2 j}_{m m'},
    Z^{j1 j2 j}_{m m'} = sum C^{j m}_{j1 m1 j2 m2} C^{j m'}_{j1 m1' j2 m2'}
                             U^{j1}_{m1 m1'} U^{j2}_{m2 m2'}

are the features, with LAMMPS's conventions (`compute sna/atom`, `pair_style snap`):
rcut_ij = rcutfac (R_i + R_j), Cayley-Klein parameters a = (z0 - i z)/r0, b = (y - i x)/r0
with z0 = r cot(theta0), the U^j built by LAMMPS's recursion in j, a self contribution
w_self = 1 on the diagonal of every U^j, the (j1, j2, j) triples enumerated as
j1 >= j2, j >= j1, and optional bzero subtraction and quadratic terms. The whole chain is
differentiable, so forces and virials come from autograd of the same code.

Not implemented: `chemflag` (explicit multi-element bispectrum), `bnormflag`,
`wselfallflag`, `switchinnerflag`; a `SnapParameters` with them set is rejected.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from matforge.core.errors import ConfigError


@dataclass(frozen=True)
class SnapParameters:
    """LAMMPS/FitSNAP bispectrum settings; `radius` and `weight` are per element."""

    twojmax: int
    rcutfac: float
    radius: Mapping[str, float]
    weight: Mapping[str, float]
    rfac0: float = 0.99363
    rmin0: float = 0.0
    switchflag: bool = True
    bzeroflag: bool = False
    quadraticflag: bool = False
    wself: float = 1.0
    unsupported: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.twojmax < 0:
            raise ConfigError(f"twojmax must be >= 0, got {self.twojmax}")
        if set(self.radius) != set(self.weight):
            raise ConfigError(
                f"radius and weight must name the same elements: {sorted(self.radius)} vs "
                f"{sorted(self.weight)}"
            )
        if not 0 < self.rfac0 <= 1:
            raise ConfigError(f"rfac0 must lie in (0, 1], got {self.rfac0}")
        set_flags = {k: v for k, v in self.unsupported.items() if v}
        if set_flags:
            raise ConfigError(f"SNAP options not supported by matforge: {set_flags}")

    @property
    def elements(self) -> tuple[str, ...]:
        return tuple(self.radius)

    def cutoff(self, a: str, b: str) -> float:
        return self.rcutfac * (self.radius[a] + self.radius[b])

    @property
    def max_cutoff(self) -> float:
        return max(self.cutoff(a, b) for a in self.radius for b in self.radius)


def bispectrum_triples(twojmax: int) -> list[tuple[int, int, int]]:
    """(2j1, 2j2, 2j) of the bispectrum components, in LAMMPS's order."""
    return [
        (j1, j2, j)
        for j1 in range(twojmax + 1)
        for j2 in range(j1 + 1)
        for j in range(j1 - j2, min(twojmax, j1 + j2) + 1, 2)
        if j >= j1
    ]


def clebsch_gordan(j1: int, j2: int, j: int) -> np.ndarray:
    """C[m1, m2, m] = <j1/2 (2 m1 - j1)/2; j2/2 (2 m2 - j2)/2 | j/2 (2 m - j)/2> (Racah's
    formula; arguments are doubled angular momenta)."""
    fact = math.factorial
    out = np.zeros((j1 + 1, j2 + 1, j + 1))
    delta = math.sqrt(
        fact((j1 + j2 - j) // 2)
        * fact((j1 - j2 + j) // 2)
        * fact((-j1 + j2 + j) // 2)
        / fact((j1 + j2 + j) // 2 + 1)
    )
    for m1 in range(j1 + 1):
        aa2 = 2 * m1 - j1
        for m2 in range(j2 + 1):
            bb2 = 2 * m2 - j2
            cc2 = aa2 + bb2
            if abs(cc2) > j:
                continue
            low = max(0, -(j - j2 + aa2) // 2, -(j - j1 - bb2) // 2)
            high = min((j1 + j2 - j) // 2, (j1 - aa2) // 2, (j2 + bb2) // 2)
            total = sum(
                (-1) ** z
                / (
                    fact(z)
                    * fact((j1 + j2 - j) // 2 - z)
                    * fact((j1 - aa2) // 2 - z)
                    * fact((j2 + bb2) // 2 - z)
                    * fact((j - j2 + aa2) // 2 + z)
                    * fact((j - j1 - bb2) // 2 + z)
                )
                for z in range(low, high + 1)
            )
            norm = math.sqrt(
                fact((j1 + aa2) // 2)
                * fact((j1 - aa2) // 2)
                * fact((j2 + bb2) // 2)
                * fact((j2 - bb2) // 2)
                * fact((j + cc2) // 2)
                * fact((j - cc2) // 2)
                * (j + 1)
            )
            out[m1, m2, (cc2 + j) // 2] = total * delta * norm
    return out


class Bispectrum(torch.nn.Module):
    """Per-atom SNAP features from neighbour pairs; differentiable in the pair vectors."""

    def __init__(self, parameters: SnapParameters) -> None:
        super().__init__()
        self.parameters = parameters
        self.elements = parameters.elements
        self.triples = bispectrum_triples(parameters.twojmax)
        n = len(parameters.elements)
        cut = [[parameters.cutoff(a, b) for b in parameters.elements] for a in parameters.elements]
        self.register_buffer("pair_cutoff", torch.tensor(cut, dtype=torch.float64).reshape(n, n))
        weights = [parameters.weight[e] for e in parameters.elements]
        self.register_buffer("element_weight", torch.tensor(weights, dtype=torch.float64))
        tables = [clebsch_gordan(*t) for t in self.triples]
        for (j1, j2, j), table in zip(self.triples, tables, strict=True):
            cg = torch.from_numpy(table).to(torch.complex128)
            self.register_buffer(f"cg_{j1}_{j2}_{j}", cg, persistent=False)
        # Flat tables for the compiled backend (`snap_numba`).
        self.triple_table = np.array(self.triples, dtype=np.int64).reshape(-1, 3)
        tables = [t.reshape(-1) for t in tables]
        self.cg_offsets = np.concatenate([[0], np.cumsum([len(t) for t in tables])[:-1]]).astype(
            np.int64
        )
        self.cg_flat = np.concatenate(tables) if tables else np.zeros(0)
        self.u_offsets = np.concatenate(
            [[0], np.cumsum([(j + 1) ** 2 for j in range(parameters.twojmax + 1)])]
        ).astype(np.int64)
        for j in range(1, parameters.twojmax + 1):
            half = j // 2
            mb = torch.arange(half + 1, dtype=torch.float64)[:, None]
            ma = torch.arange(j + 1, dtype=torch.float64)[None, :]
            self.register_buffer(
                f"down_{j}", torch.sqrt((j - ma).clamp(min=0) / (j - mb)), persistent=False
            )
            self.register_buffer(f"across_{j}", torch.sqrt(ma / (j - mb)), persistent=False)
            rows = torch.arange(half + 1, j + 1, dtype=torch.float64)[:, None]
            sign = torch.where((ma - rows) % 2 == 0, 1.0, -1.0).to(torch.complex128)
            self.register_buffer(f"parity_{j}", sign, persistent=False)
            if j % 2 == 0:
                previous = torch.arange(j, dtype=torch.float64)
                extra = torch.where((previous - half) % 2 == 0, 1.0, -1.0).to(torch.complex128)
                self.register_buffer(f"extra_parity_{j}", extra, persistent=False)

    @property
    def cutoff(self) -> float:
        return self.parameters.max_cutoff

    @cached_property
    def linear_part(self) -> Bispectrum | None:
        """The same bispectrum without quadratic terms (None for a linear one): design
        matrices of quadratic SNAP use it with the product rule."""
        if not self.parameters.quadraticflag:
            return None
        return Bispectrum(dataclasses.replace(self.parameters, quadraticflag=False))

    @property
    def n_features(self) -> int:
        n = len(self.triples)
        return n + n * (n + 1) // 2 if self.parameters.quadraticflag else n

    @cached_property
    def feature_labels(self) -> list[str]:
        linear = [f"B[{j1},{j2},{j}]" for j1, j2, j in self.triples]
        if not self.parameters.quadraticflag:
            return linear
        quad = [f"{a}*{b}" for k, a in enumerate(linear) for b in linear[k:]]
        return linear + quad

    def wigner_u_top(self, vectors: torch.Tensor, cutoff: torch.Tensor) -> list[torch.Tensor]:
        """Rows m' = 0 .. j // 2 of U^j(r) for each pair, list over 2j of (P, j//2 + 1, 2j+1).

        The other rows follow from the symmetry U^j_{j-m', j-m} = (-1)^(m-m') conj(U^j_{m' m}),
        which survives summation over neighbours, so pairs only carry the top rows (half the
        work) and `mirror` completes the per-atom sums.
        """
        p = self.parameters
        r = vectors.norm(dim=-1)
        theta0 = (r - p.rmin0) * p.rfac0 * math.pi / (cutoff - p.rmin0)
        z0 = r * torch.cos(theta0) / torch.sin(theta0)
        r0inv = 1.0 / torch.sqrt(r * r + z0 * z0)
        x, y, z = vectors.unbind(-1)
        a_conj = torch.complex(r0inv * z0, r0inv * z)[:, None, None]
        b_conj = torch.complex(r0inv * y, r0inv * x)[:, None, None]
        tops = [torch.ones(len(r), 1, 1, dtype=torch.complex128, device=vectors.device)]
        for j in range(1, p.twojmax + 1):
            down, across = self._recursion_terms(tops[j - 1], j)
            tops.append(a_conj * down - b_conj * across)
        return tops

    def _previous_rows(self, top: torch.Tensor, j: int) -> torch.Tensor:
        """Rows 0 .. j // 2 of U^{j-1} from its top rows (one mirrored row when j is even)."""
        half = j // 2
        if half == (j - 1) // 2:
            return top
        extra = getattr(self, f"extra_parity_{j}") * top[:, half - 1, :].flip(-1).conj()
        return torch.cat([top, extra[:, None, :]], dim=1)

    def _recursion_terms(self, top: torch.Tensor, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self._previous_rows(top, j)
        down = F.pad(rows, (0, 1)) * getattr(self, f"down_{j}")
        across = F.pad(rows, (1, 0)) * getattr(self, f"across_{j}")
        return down, across

    def mirror(self, top: torch.Tensor, j: int) -> torch.Tensor:
        """The full (.., 2j+1, 2j+1) matrix from its rows 0 .. j // 2."""
        if j == 0:
            return top
        mirrored = top[:, : j - j // 2, :].conj().flip(1, 2)
        return torch.cat([top, getattr(self, f"parity_{j}") * mirrored], dim=1)

    def wigner_u(self, vectors: torch.Tensor, cutoff: torch.Tensor) -> list[torch.Tensor]:
        """U^j(r) for each pair, list over 2j of (P, 2j+1, 2j+1) complex, rows m', cols m."""
        return [self.mirror(t, j) for j, t in enumerate(self.wigner_u_top(vectors, cutoff))]

    @staticmethod
    def _coupled(u1: torch.Tensor, u2: torch.Tensor, cg: torch.Tensor) -> torch.Tensor:
        """Z_{m' m} = sum C[a', b', m'] C[a, b, m] U1_{a' a} U2_{b' b} for all atoms, (N, J+1,
        J+1): the two contractions with the shared CG table are single matrix products over
        all atoms; only the one coupling U1 and U2 is batched per atom."""
        n, r1, _ = u1.shape
        r2 = u2.shape[1]
        i, k, m = cg.shape
        # A[x, b, a', m] = sum_a U1[x, a', a] C[a, b, m]
        coupled = (u1.reshape(n * r1, i) @ cg.reshape(i, k * m)).reshape(n, r1, k, m)
        coupled = coupled.transpose(1, 2).reshape(n, k, r1 * m)
        # T[x, b', a', m] = sum_b U2[x, b', b] A[x, b, a', m]: one (r2 x k)(k x r1 m) per atom
        coupled = torch.bmm(u2, coupled).reshape(n, r2, r1, m)
        # Z[x, m', m] = sum_{a', b'} C[a', b', m'] T[x, b', a', m]
        flat = coupled.permute(2, 1, 0, 3).reshape(r1 * r2, n * m)
        z = cg.reshape(r1 * r2, -1).transpose(0, 1) @ flat  # (m', n * m)
        return z.reshape(-1, n, m).transpose(0, 1)

    def switching(self, r: torch.Tensor, cutoff: torch.Tensor) -> torch.Tensor:
        p = self.parameters
        if not p.switchflag:
            return torch.ones_like(r)
        inside = 0.5 * (torch.cos((r - p.rmin0) * math.pi / (cutoff - p.rmin0)) + 1.0)
        return torch.where(r <= p.rmin0, torch.ones_like(r), inside)

    def forward(
        self,
        vectors: torch.Tensor,
        center: torch.Tensor,
        neighbor_species: torch.Tensor,
        center_species: torch.Tensor,
    ) -> torch.Tensor:
        """Features (N, n_features) of N atoms from pair vectors (P, 3) r_j - r_i.

        `center` (P,) indexes the atom each pair belongs to; species are indices into
        `parameters.elements`; pairs beyond their cutoff contribute nothing.
        """
        n_atoms = len(center_species)
        cutoff = self.pair_cutoff[center_species[center], neighbor_species]
        r = vectors.norm(dim=-1)
        keep = r < cutoff
        vectors, center, cutoff, r = vectors[keep], center[keep], cutoff[keep], r[keep]
        weight = self.switching(r, cutoff) * self.element_weight[neighbor_species[keep]]
        totals = []
        for j, top in enumerate(self.wigner_u_top(vectors, cutoff)):
            rows = top.shape[1]
            total = torch.zeros(n_atoms, rows, j + 1, dtype=torch.complex128, device=r.device)
            total = total.index_add(0, center, weight.to(top.dtype)[:, None, None] * top)
            diagonal = torch.eye(j + 1, dtype=torch.complex128, device=r.device)[:rows]
            totals.append(self.mirror(total + self.parameters.wself * diagonal, j))
        features = []
        for j1, j2, j in self.triples:
            z = self._coupled(totals[j1], totals[j2], getattr(self, f"cg_{j1}_{j2}_{j}"))
            b = (totals[j].conj() * z).real.sum(dim=(1, 2))
            if self.parameters.bzeroflag:
                b = b - self.parameters.wself**3 * (j + 1)
            features.append(b)
        linear = torch.stack(features, dim=1)
        if not self.parameters.quadraticflag:
            return linear
        rows, cols = torch.triu_indices(linear.shape[1], linear.shape[1], device=r.device)
        quadratic = linear[:, rows] * linear[:, cols]
        quadratic = torch.where(rows == cols, 0.5 * quadratic, quadratic)
        return torch.cat([linear, quadratic], dim=1)

"""Ziegler-Biersack-Littmark screened nuclear repulsion, as LAMMPS's `pair_style zbl`.

E(r) = (Z_i Z_j e^2 / 4 pi eps0) / r * phi(r / a) + S(r), a = 0.46850 / (Z_i^0.23 + Z_j^0.23)
(A), phi(x) = 0.18175 e^{-3.19980 x} + 0.50986 e^{-0.94229 x} + 0.28022 e^{-0.40290 x}
+ 0.02817 e^{-0.20162 x} (Ziegler, Biersack, Littmark, The Stopping and Range of Ions in
Solids, 1985). S(r) is the switching function of GROMACS (as in LAMMPS's lj/gromacs): a
constant C everywhere inside the outer cutoff plus A/3 t^3 + B/4 t^4 (t = r - r_inner)
between the inner and the outer cutoff, with A, B, C chosen so that E, dE/dr and
d2E/dr2 vanish at the outer cutoff. It is the reference potential that SNAP fits subtract
(FitSNAP's Ta example: inner 4.0 A, outer 4.8 A, Z = 73).

`style="gpumd"` is GPUMD's universal ZBL for NEP instead: the bare ZBL times a cutoff
function that is 1 below the inner cutoff and (1 + cos(pi (r - inner) / (outer - inner))) / 2
up to the outer one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import torch
from ase.data import atomic_numbers

#: e^2 / (4 pi eps0) in eV A (LAMMPS metal units: qqr2e = 14.399645).
COULOMB = 14.399645
SCREENING = ((0.18175, 3.19980), (0.50986, 0.94229), (0.28022, 0.40290), (0.02817, 0.20162))
BOHR_SCREENING = 0.46850
#: GPUMD's NEP ZBL writes the screening length as a / (Z_i^0.23 + Z_j^0.23) with
#: 1 / a = 2.134563 A^-1 (checked against calorine's evaluation of a nep4_zbl file)
GPUMD_INVERSE_SCREENING = 2.134563
EXPONENT = 0.23


def atomic_number(symbol: str) -> int:
    if symbol not in atomic_numbers:
        raise ValueError(f"unknown element {symbol!r}")
    return atomic_numbers[symbol]


class ZBL(torch.nn.Module):
    """Pairwise ZBL repulsion between atoms closer than `outer` (A)."""

    def __init__(
        self,
        charges: Mapping[str, float],
        inner: float,
        outer: float,
        *,
        style: Literal["lammps", "gpumd"] = "lammps",
    ) -> None:
        super().__init__()
        if not 0 < inner < outer:
            raise ValueError(f"ZBL needs 0 < inner < outer, got inner {inner}, outer {outer}")
        if style not in ("lammps", "gpumd"):
            raise ValueError(f"ZBL style must be 'lammps' or 'gpumd', got {style!r}")
        self.style = style
        self.elements = tuple(charges)
        self.inner, self.outer = float(inner), float(outer)
        z = torch.tensor([float(charges[e]) for e in self.elements], dtype=torch.float64)
        self.register_buffer("charge", z)

    @property
    def cutoff(self) -> float:
        return self.outer

    def _bare(self, r: torch.Tensor, zi: torch.Tensor, zj: torch.Tensor) -> torch.Tensor:
        if self.style == "gpumd":
            a = 1.0 / (GPUMD_INVERSE_SCREENING * (zi**EXPONENT + zj**EXPONENT))
        else:
            a = BOHR_SCREENING / (zi**EXPONENT + zj**EXPONENT)
        phi = sum(c * torch.exp(-d * r / a) for c, d in SCREENING)
        return COULOMB * zi * zj * phi / r

    def _switch_coefficients(
        self, zi: torch.Tensor, zj: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # E, E', E'' of the bare ZBL at the outer cutoff, by autograd in double precision.
        rc = torch.full_like(zi, self.outer).requires_grad_(True)
        with torch.enable_grad():
            e = self._bare(rc, zi, zj)
            (d1,) = torch.autograd.grad(e.sum(), rc, create_graph=True)
            (d2,) = torch.autograd.grad(d1.sum(), rc)
        e, d1 = e.detach(), d1.detach()
        width = self.outer - self.inner
        a = (-3.0 * d1 + width * d2) / width**2
        b = (2.0 * d1 - width * d2) / width**3
        c = -e + 0.5 * width * d1 - width**2 / 12.0 * d2
        return a, b, c

    def pair_energy(
        self, r: torch.Tensor, species_i: torch.Tensor, species_j: torch.Tensor
    ) -> torch.Tensor:
        zi, zj = self.charge[species_i], self.charge[species_j]
        if self.style == "gpumd":
            t = ((r - self.inner) / (self.outer - self.inner)).clamp(0.0, 1.0)
            fc = 0.5 * torch.cos(math.pi * t) + 0.5
            energy = self._bare(r, zi, zj) * fc
            return torch.where(r < self.outer, energy, torch.zeros_like(r))
        a, b, c = self._switch_coefficients(zi, zj)
        t = (r - self.inner).clamp(min=0)
        energy = self._bare(r, zi, zj) + c + t**3 * (a / 3.0 + b / 4.0 * t)
        return torch.where(r < self.outer, energy, torch.zeros_like(r))

    def forward(
        self,
        vectors: torch.Tensor,
        center: torch.Tensor,
        neighbor_species: torch.Tensor,
        center_species: torch.Tensor,
    ) -> torch.Tensor:
        """Atomic energies (N,): half of each pair's energy (pairs are listed both ways)."""
        r = vectors.norm(dim=-1)
        keep = r < self.outer
        energy = 0.5 * self.pair_energy(
            r[keep], center_species[center[keep]], neighbor_species[keep]
        )
        out = torch.zeros(len(center_species), dtype=vectors.dtype, device=vectors.device)
        return out.index_add(0, center[keep], energy)

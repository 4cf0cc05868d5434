"""SOAP power spectrum (Bartok, Kondor, Csanyi, PRB 87 (2013) 184115), in torch.

The neighbour density of atom i, per neighbour species a,

    rho_i^a(r) = sum_{j in a} f_c(r_ij) g(r - r_ij),  g(r) = (pi s^2)^(-3/4) e^(-r^2 / 2 s^2)

(s = `atom_sigma`; plus `center_atom_weight` times g(r) in the centre's own species
channel) is expanded in orthonormal radial functions R_n(r) times real spherical harmonics Y_lm:

    c^a_{nlm} = sum_{j in a} f_c(r_ij) I_nl(r_ij) Y_lm(r_ij / |r_ij|),
    I_nl(r) = 4 pi (pi sigma^2)^(-3/4) int_0^inf r'^2 R_n(r') e^{-(r^2 + r'^2) / 2 sigma^2}
              i_l(r r' / sigma^2) dr'

(i_l the modified spherical Bessel function). The radial integral is tabulated once per
setting by Gauss-Legendre quadrature and read through a cubic Hermite spline, so a pair
costs a table lookup and the derivative of the spline is the exact derivative of what is
evaluated (forces are consistent with energies to round-off). The power spectrum is

    p^{ab}_{n1 n2 l} = w (2l + 1)^(-1/2) sum_m c^a_{n1 lm} c^b_{n2 lm},

stored once per unordered pair (a <= b; for a == b once per n1 <= n2), with w = sqrt(2) for
the pairs that stand for two (a != b, or n1 != n2), so that the dot product of two feature
vectors equals that of the full (a, b, n1, n2, l) arrays. With `normalize`, features are
divided by their norm (the dot-product kernel of GAP then is a cosine similarity).

Radial bases: "gto" (R_n ~ r^n e^{-r^2 / 2 s_n^2}, s_0 = r_c / N, s_n = sqrt(n) r_c / N,
normalized, then Loewdin-orthonormalized: featomic's `Gto`) and "polynomial" (phi_a ~
(r_c - r)^(a + 2), a = 1..N, Loewdin-orthonormalized on [0, r_c]: the basis of QUIP's SOAP
papers; QUIP's code evaluates it differently, through Gaussians on a radial grid).

How featomic's `SoapPowerSpectrum` maps (checked in tests/mlip/test_soap.py): same cutoff
radius and `ShiftedCosine` width, `Gaussian` density width = `atom_sigma`, `Gto` radial
basis with max_radial = n_max - 1, max_angular = l_max; featomic's values equal matforge's
times (-1)^l, its cross-species blocks carry the same sqrt(2), and its a == b blocks hold
both (n1, n2) and (n2, n1) without the sqrt(2) (so matforge's n1 < n2 entry is sqrt(2)
times featomic's).

The derivative of every feature with respect to every pair vector (`jacobian`) is also
available in closed form: GAP's fit needs it for thousands of kernel columns at once, where
one backward pass per column would not do.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import scipy.special
import torch

from matforge.core.errors import ConfigError


@dataclass(frozen=True)
class SoapParameters:
    """SOAP settings, named as in QUIP (`cutoff`, `cutoff_transition_width`, `atom_sigma`)."""

    elements: tuple[str, ...]
    cutoff: float
    n_max: int
    l_max: int
    atom_sigma: float
    cutoff_transition_width: float = 0.5
    radial_basis: Literal["gto", "polynomial"] = "gto"
    center_atom_weight: float = 1.0
    normalize: bool = True
    spline_points: int = 600

    def __post_init__(self) -> None:
        object.__setattr__(self, "elements", tuple(self.elements))
        if not self.elements or len(set(self.elements)) != len(self.elements):
            raise ConfigError(f"SOAP elements must be distinct and not empty: {self.elements}")
        if self.cutoff <= 0 or self.atom_sigma <= 0:
            raise ConfigError("SOAP cutoff and atom_sigma must be > 0")
        if not 0 <= self.cutoff_transition_width < self.cutoff:
            raise ConfigError(
                f"cutoff_transition_width must lie in [0, cutoff), got "
                f"{self.cutoff_transition_width}"
            )
        if self.n_max < 1 or self.l_max < 0:
            raise ConfigError(f"SOAP needs n_max >= 1, l_max >= 0 (got {self.n_max}, {self.l_max})")
        if self.radial_basis not in ("gto", "polynomial"):
            raise ConfigError(
                f"radial_basis must be 'gto' or 'polynomial', not {self.radial_basis!r}"
            )
        if self.spline_points < 10:
            raise ConfigError("spline_points must be >= 10")


def real_spherical_harmonics(unit: torch.Tensor, l_max: int) -> torch.Tensor:
    """Orthonormal real Y_lm of unit vectors (P, 3) -> (P, (l_max + 1)^2), order (l, m = -l..l).

    Built from the Cartesian recursions of the associated Legendre polynomials and of
    (x + i y)^m, so they are polynomials in the components (smooth everywhere, no angles).
    """
    return _harmonics(unit, l_max, gradient=False)[0]


def real_spherical_harmonics_and_gradient(
    unit: torch.Tensor, l_max: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Y_lm (P, L) and their gradients (P, 3, L) with respect to the three components of
    `unit`, the polynomials differentiated as functions of independent x, y, z (project
    with 1 - u u^T for the derivative on the sphere)."""
    values, gradient = _harmonics(unit, l_max, gradient=True)
    assert gradient is not None
    return values, gradient


def _harmonics(
    unit: torch.Tensor, l_max: int, *, gradient: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The recursions with, when asked, their derivatives carried alongside (exact, and
    far cheaper than forward-mode AD through the same graph)."""
    x, y, z = unit.unbind(-1)
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    # (x + i y)^m = cos_m + i sin_m; d/dx = m (x + i y)^(m-1), d/dy = i m (x + i y)^(m-1)
    cos_m, sin_m = [one], [zero]
    for _ in range(l_max):
        c, s = cos_m[-1], sin_m[-1]
        cos_m.append(x * c - y * s)
        sin_m.append(x * s + y * c)
    # q[l][m] = P_l^m(z) / sin^m(theta): the part of the Legendre function without
    # (x + i y)^m, a polynomial in z alone; dq holds dq/dz
    q: list[list[torch.Tensor]] = [[one]]
    dq: list[list[torch.Tensor]] = [[zero]]
    for ell in range(1, l_max + 1):
        row, drow = [], []
        for m in range(ell + 1):
            if m == ell:
                row.append(-(2 * ell - 1) * q[ell - 1][ell - 1])
                drow.append(zero)
            elif m == ell - 1:
                row.append((2 * ell - 1) * z * q[ell - 1][m])
                drow.append((2 * ell - 1) * (q[ell - 1][m] + z * dq[ell - 1][m]))
            else:
                a, b = (2 * ell - 1) / (ell - m), (ell + m - 1) / (ell - m)
                row.append(a * z * q[ell - 1][m] - b * q[ell - 2][m])
                drow.append(a * (q[ell - 1][m] + z * dq[ell - 1][m]) - b * dq[ell - 2][m])
        q.append(row)
        dq.append(drow)
    values, grads = [], []
    for ell in range(l_max + 1):
        for m in range(-ell, ell + 1):
            a = abs(m)
            norm = math.sqrt(
                (2 * ell + 1) / (4 * math.pi) * math.factorial(ell - a) / math.factorial(ell + a)
            )
            if m == 0:
                values.append(norm * q[ell][0])
                if gradient:
                    grads.append(torch.stack([zero, zero, norm * dq[ell][0]], dim=-1))
                continue
            norm *= math.sqrt(2)
            # Y = norm q(z) t(x, y), t = cos_a (m > 0) or sin_a (m < 0)
            t = cos_m[a] if m > 0 else sin_m[a]
            values.append(norm * q[ell][a] * t)
            if gradient:
                if m > 0:
                    dtx, dty = a * cos_m[a - 1], -a * sin_m[a - 1]
                else:
                    dtx, dty = a * sin_m[a - 1], a * cos_m[a - 1]
                qa = norm * q[ell][a]
                grads.append(torch.stack([qa * dtx, qa * dty, norm * dq[ell][a] * t], dim=-1))
    out = torch.stack(values, dim=-1)
    return out, (torch.stack(grads, dim=-1) if gradient else None)


def cosine_cutoff(
    r: torch.Tensor, cutoff: float, width: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """QUIP's cutoff function and its derivative: 1 below cutoff - width, then
    (1 + cos(pi t)) / 2 across the transition, 0 from the cutoff on (a step if width = 0)."""
    inside = r < cutoff
    if width == 0:
        return inside.to(r.dtype), torch.zeros_like(r)
    t = ((r - (cutoff - width)) / width).clamp(0.0, 1.0)
    value = torch.where(inside, 0.5 * (1 + torch.cos(math.pi * t)), torch.zeros_like(r))
    moving = inside & (r > cutoff - width)
    slope = torch.where(
        moving, -0.5 * math.pi / width * torch.sin(math.pi * t), torch.zeros_like(r)
    )
    return value, slope


def _loewdin(gram: np.ndarray) -> np.ndarray:
    """W with W G W^T = 1: normalize the functions, then symmetric orthonormalization."""
    scale = 1.0 / np.sqrt(np.diag(gram))
    normalized = gram * scale[:, None] * scale[None, :]
    values, vectors = np.linalg.eigh(normalized)
    if values.min() < 1e-12:
        raise ConfigError("the radial basis is linearly dependent; lower n_max")
    return (vectors @ np.diag(values**-0.5) @ vectors.T) * scale[None, :]


def _primitive_basis(p: SoapParameters, r: np.ndarray) -> np.ndarray:
    """(n_max, len(r)) primitive radial functions."""
    if p.radial_basis == "gto":
        n = np.arange(p.n_max)
        sigma = p.cutoff * np.sqrt(np.maximum(n, 1)) / p.n_max
        return r[None, :] ** n[:, None] * np.exp(-0.5 * (r[None, :] / sigma[:, None]) ** 2)
    alpha = np.arange(1, p.n_max + 1)
    return np.clip(p.cutoff - r[None, :], 0.0, None) ** (alpha[:, None] + 2)


def _gram(p: SoapParameters) -> np.ndarray:
    if p.radial_basis == "gto":
        n = np.arange(p.n_max)
        sigma = p.cutoff * np.sqrt(np.maximum(n, 1)) / p.n_max
        a = 0.5 / sigma[:, None] ** 2 + 0.5 / sigma[None, :] ** 2
        power = (n[:, None] + n[None, :] + 3) / 2
        return scipy.special.gamma(power) / (2 * a**power)
    alpha = np.arange(1, p.n_max + 1)
    s = (
        alpha[:, None] + alpha[None, :] + 4
    )  # int_0^rc r^2 (rc - r)^s dr = 2 rc^(s+3) / ((s+1)(s+2)(s+3))
    return 2 * p.cutoff ** (s + 3) / ((s + 1) * (s + 2) * (s + 3))


def _scaled_bessel_i(ell: int, x: np.ndarray) -> np.ndarray:
    """e^{-x} i_l(x) for x >= 0, with the x -> 0 limit."""
    x = np.maximum(x, 1e-300)
    return scipy.special.ive(ell + 0.5, x) * np.sqrt(np.pi / (2 * x))


@functools.lru_cache(maxsize=32)
def radial_integral_table(p: SoapParameters) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid r_k (G,), I_nl(r_k) and dI_nl/dr (G, n_max, l_max + 1) of the orthonormal basis."""
    grid = np.linspace(0.0, p.cutoff, p.spline_points)
    sigma2 = p.atom_sigma**2
    # beyond r_c + 8 sigma the density of every neighbour inside the cutoff is < e^-32
    upper = p.cutoff if p.radial_basis == "polynomial" else p.cutoff + 8 * p.atom_sigma
    nodes, weights = np.polynomial.legendre.leggauss(200)
    rp = 0.5 * upper * (nodes + 1)
    wp = 0.5 * upper * weights
    basis = _loewdin(_gram(p)) @ _primitive_basis(p, rp)  # (N, Q)
    prefactor = 4 * np.pi * (np.pi * sigma2) ** -0.75
    # e^{-(r^2 + r'^2)/2s^2} i_l(r r'/s^2) = e^{-(r - r')^2 / 2s^2} [e^{-x} i_l(x)]
    x = grid[:, None] * rp[None, :] / sigma2  # (G, Q)
    gauss = np.exp(-((grid[:, None] - rp[None, :]) ** 2) / (2 * sigma2))
    values = np.empty((len(grid), p.n_max, p.l_max + 1))
    derivatives = np.empty_like(values)
    bessel = [_scaled_bessel_i(ell, x) for ell in range(p.l_max + 2)]
    for ell in range(p.l_max + 1):
        # d/dr [e^{-(r-r')^2/2s^2} e^{-x} i_l(x)] with i_l' = i_{l+1} + l i_l / x
        di = bessel[ell + 1] + ell * bessel[ell] / np.maximum(x, 1e-300)
        if ell == 0:
            di = bessel[1]
        kernel = gauss * bessel[ell]
        dkernel = gauss * (-(grid[:, None] / sigma2) * bessel[ell] + rp[None, :] / sigma2 * di)
        weight = wp * rp**2
        values[:, :, ell] = prefactor * (kernel * weight) @ basis.T
        derivatives[:, :, ell] = prefactor * (dkernel * weight) @ basis.T
    return grid, values, derivatives


class SOAP(torch.nn.Module):
    """Per-atom SOAP power spectrum from neighbour pairs; differentiable in the pair vectors."""

    def __init__(self, parameters: SoapParameters) -> None:
        super().__init__()
        self.parameters = parameters
        self.elements = parameters.elements
        grid, values, derivatives = radial_integral_table(parameters)
        self.spacing = float(grid[1] - grid[0])
        self.register_buffer("table", torch.from_numpy(values), persistent=False)
        self.register_buffer("table_slope", torch.from_numpy(derivatives), persistent=False)
        self.register_buffer(
            "center_radial", torch.from_numpy(values[0, :, 0].copy()), persistent=False
        )
        l_of_lm = np.concatenate([[ell] * (2 * ell + 1) for ell in range(parameters.l_max + 1)])
        self.register_buffer("l_of_lm", torch.from_numpy(l_of_lm), persistent=False)
        index = self._feature_index()
        for name, values_ in index.items():
            self.register_buffer(name, values_, persistent=False)

    @property
    def cutoff(self) -> float:
        return self.parameters.cutoff

    @property
    def n_features(self) -> int:
        return len(self.feature_l)

    @cached_property
    def feature_labels(self) -> list[str]:
        e = self.elements
        return [
            f"p[{e[a]},{e[b]},{n1},{n2},{ell}]"
            for a, b, n1, n2, ell in zip(
                self.feature_a.tolist(),
                self.feature_b.tolist(),
                self.feature_n1.tolist(),
                self.feature_n2.tolist(),
                self.feature_l.tolist(),
                strict=True,
            )
        ]

    def _feature_index(self) -> dict[str, torch.Tensor]:
        p = self.parameters
        s, n = len(p.elements), p.n_max
        rows = []
        for a in range(s):
            for b in range(a, s):
                for n1 in range(n):
                    for n2 in range(n1 if a == b else 0, n):
                        for ell in range(p.l_max + 1):
                            doubled = a != b or n1 != n2
                            rows.append((a, b, n1, n2, ell, math.sqrt(2) if doubled else 1.0))
        a, b, n1, n2, ell, w = (np.array(c) for c in zip(*rows, strict=True))
        weight = w / np.sqrt(2 * ell + 1)
        return {
            "feature_a": torch.from_numpy(a),
            "feature_b": torch.from_numpy(b),
            "feature_n1": torch.from_numpy(n1),
            "feature_n2": torch.from_numpy(n2),
            "feature_l": torch.from_numpy(ell),
            "feature_weight": torch.from_numpy(weight),
        }

    # -- pieces -----------------------------------------------------------------------
    def cutoff_function(self, r: torch.Tensor) -> torch.Tensor:
        return self._cutoff_and_slope(r)[0]

    def radial(self, r: torch.Tensor) -> torch.Tensor:
        """I_nl(r) (P, n_max, l_max + 1) by cubic Hermite interpolation of the table."""
        return self._radial(r, slope=False)[0]

    def _radial(self, r: torch.Tensor, *, slope: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The spline and, when asked, its exact derivative in r."""
        h = self.spacing
        k = (r / h).floor().clamp(0, self.table.shape[0] - 2).long()
        t = (r / h - k)[:, None, None]
        y0, y1 = self.table[k], self.table[k + 1]
        d0, d1 = self.table_slope[k] * h, self.table_slope[k + 1] * h
        t2, t3 = t * t, t * t * t
        values = (
            (2 * t3 - 3 * t2 + 1) * y0
            + (t3 - 2 * t2 + t) * d0
            + (-2 * t3 + 3 * t2) * y1
            + (t3 - t2) * d1
        )
        if not slope:
            return values, None
        dt = (6 * t2 - 6 * t) * (y0 - y1) + (3 * t2 - 4 * t + 1) * d0 + (3 * t2 - 2 * t) * d1
        return values, dt / h

    def _cutoff_and_slope(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.parameters
        return cosine_cutoff(r, p.cutoff, p.cutoff_transition_width)

    def pair_terms(self, vectors: torch.Tensor) -> torch.Tensor:
        """f_c(r) I_nl(r) Y_lm(r^) per pair, (P, n_max, (l_max + 1)^2)."""
        r = vectors.norm(dim=-1)
        y = real_spherical_harmonics(vectors / r[:, None], self.parameters.l_max)
        radial = self.radial(r) * self.cutoff_function(r)[:, None, None]
        return radial[:, :, self.l_of_lm] * y[:, None, :]

    def expansion(
        self,
        vectors: torch.Tensor,
        center: torch.Tensor,
        neighbor_species: torch.Tensor,
        center_species: torch.Tensor,
    ) -> torch.Tensor:
        """Density coefficients c (N, n_species, n_max, (l_max + 1)^2) of N atoms."""
        return self._accumulate(self.pair_terms(vectors), center, neighbor_species, center_species)

    def _accumulate(
        self,
        terms: torch.Tensor,
        center: torch.Tensor,
        neighbor_species: torch.Tensor,
        center_species: torch.Tensor,
    ) -> torch.Tensor:
        """Sum pair terms into c per atom and neighbour species, plus the centre's own."""
        p = self.parameters
        n_atoms, n_species = len(center_species), len(p.elements)
        slot = center * n_species + neighbor_species
        c = terms.new_zeros(n_atoms * n_species, *terms.shape[1:])
        c = c.index_add(0, slot, terms)
        c = c.reshape(n_atoms, n_species, *terms.shape[1:])
        if p.center_atom_weight:
            own = torch.zeros_like(c)
            # the centre's Gaussian sits at r = 0, where only l = 0 survives: Y_00 = 1/sqrt(4 pi)
            value = p.center_atom_weight * self.center_radial / math.sqrt(4 * math.pi)
            own[torch.arange(n_atoms), center_species, :, 0] = value.to(c.dtype)
            c = c + own
        return c

    def _gram_per_l(self, c: torch.Tensor) -> torch.Tensor:
        """G[i, l, a, n1, b, n2] = sum_m c[i, a, n1, lm] c[i, b, n2, lm]."""
        n_atoms, s, n, _ = c.shape
        blocks = []
        for ell in range(self.parameters.l_max + 1):
            part = c[..., ell * ell : (ell + 1) * (ell + 1)].reshape(n_atoms, s * n, 2 * ell + 1)
            blocks.append(part @ part.transpose(1, 2))
        return torch.stack(blocks, dim=1).reshape(n_atoms, -1, s, n, s, n)

    def power_spectrum(self, c: torch.Tensor) -> torch.Tensor:
        g = self._gram_per_l(c)
        raw = g[:, self.feature_l, self.feature_a, self.feature_n1, self.feature_b, self.feature_n2]
        return raw * self.feature_weight

    def forward(
        self,
        vectors: torch.Tensor,
        center: torch.Tensor,
        neighbor_species: torch.Tensor,
        center_species: torch.Tensor,
    ) -> torch.Tensor:
        """Features (N, n_features) from pair vectors (P, 3) r_j - r_i (see `Descriptor`)."""
        keep = vectors.norm(dim=-1) < self.parameters.cutoff
        c = self.expansion(vectors[keep], center[keep], neighbor_species[keep], center_species)
        features = self.power_spectrum(c)
        if self.parameters.normalize:
            features = features / features.norm(dim=1, keepdim=True).clamp(min=1e-300)
        return features

    # -- closed-form derivatives ------------------------------------------------------
    def jacobian(
        self,
        vectors: torch.Tensor,
        center: torch.Tensor,
        neighbor_species: torch.Tensor,
        center_species: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features q (N, D), and dq_{center(p)} / d r_p (P', 3, D) for the pairs inside the
        cutoff, with the mask `keep` (P,) that selects those pairs (every other entry of the
        Jacobian is zero: a pair vector moves only its centre's features)."""
        p = self.parameters
        with torch.no_grad():
            keep = vectors.norm(dim=-1) < p.cutoff
            vectors, center, neighbor_species = vectors[keep], center[keep], neighbor_species[keep]
            terms, dterms = self._pair_terms_and_derivatives(vectors)  # dterms (P, 3, n, lm)
            c = self._accumulate(terms, center, neighbor_species, center_species)
            raw = self.power_spectrum(c)
            s, n = len(p.elements), p.n_max
            ci = c[center].reshape(len(center), s * n, -1)  # (P, S n, lm)
            # A[p, x, l, n1, (b, n2)] = sum_m dterms[p, x, n1, lm] c_i[b, n2, lm]
            blocks = []
            for ell in range(p.l_max + 1):
                lm = slice(ell * ell, (ell + 1) * (ell + 1))
                blocks.append(torch.einsum("pxnm,pkm->pxnk", dterms[..., lm], ci[..., lm]))
            a_blocks = torch.stack(blocks, dim=2).reshape(len(center), 3, -1)
            stride_l, stride_n = n * s * n, s * n
            first = self.feature_l * stride_l + self.feature_n1 * stride_n + self.feature_b * n
            first = first + self.feature_n2
            second = self.feature_l * stride_l + self.feature_n2 * stride_n + self.feature_a * n
            second = second + self.feature_n1
            own_a = (self.feature_a[None, :] == neighbor_species[:, None]).to(raw.dtype)
            own_b = (self.feature_b[None, :] == neighbor_species[:, None]).to(raw.dtype)
            draw = (
                own_a[:, None, :] * a_blocks[:, :, first]
                + own_b[:, None, :] * a_blocks[:, :, second]
            )
            draw = draw * self.feature_weight
            if not p.normalize:
                return raw, draw, keep
            norm = raw.norm(dim=1, keepdim=True).clamp(min=1e-300)
            q = raw / norm
            qi = q[center][:, None, :]
            along = (draw * qi).sum(dim=-1, keepdim=True)
            dq = (draw - qi * along) / norm[center][:, None, :]
            return q, dq, keep

    def _pair_terms_and_derivatives(
        self, vectors: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The pair terms (as `pair_terms`) and d(pair term)/d r_p, (P, 3, n_max,
        (l_max + 1)^2): the radial part by the chain rule, d Y(r / |r|) / dr =
        (1 - u u^T) grad_u Y / |r|, every derivative in closed form."""
        r = vectors.norm(dim=-1)
        unit = vectors / r[:, None]
        spline, spline_slope = self._radial(r, slope=True)
        fc, fc_slope = self._cutoff_and_slope(r)
        values = spline * fc[:, None, None]
        slope = spline_slope * fc[:, None, None] + spline * fc_slope[:, None, None]
        harmonics, grad_u = real_spherical_harmonics_and_gradient(unit, self.parameters.l_max)
        along = (unit[:, :, None] * grad_u).sum(dim=1, keepdim=True)
        d_harmonics = (grad_u - unit[:, :, None] * along) / r[:, None, None]
        values, slope = values[:, :, self.l_of_lm], slope[:, :, self.l_of_lm]
        radial_part = slope[:, None] * (unit[:, :, None] * harmonics[:, None, :])[:, :, None, :]
        terms = values * harmonics[:, None, :]
        return terms, radial_part + values[:, None] * d_harmonics[:, :, None, :]

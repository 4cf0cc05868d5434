"""A documented materials data generator with a hidden confounder, and its exact answers.

Alloys made in different labs: a lab factor L ~ N(0, 1) (not recorded) moves both the Ni
fraction a lab chooses and the anneal temperature it uses. Structural equations:

- Ni = clip(ni_mean + ni_lab L + ni_noise e1, 0.02, 0.50)           composition (at. frac.)
- T = t_mean + t_lab L + t_noise e2                                  anneal temperature (K)
- beta = beta_max exp(-((Ni - ni_peak) / ni_width)^2) exp(beta_noise e3)
  fraction of the strengthening phase: a smooth stand-in for a lever rule across the
  two-phase window that peaks at ni_peak (a shape, not a phase diagram);
- d = sqrt(d0^2 + k0 exp(-Q / (R T)) t) exp(d_noise e4)             grain size (um),
  parabolic isothermal grain growth (Burke & Turnbull) for anneal time t;
- strength = (1 - beta)(s_matrix + k_matrix d^-1/2) + beta (s_beta + k_beta d^-1/2)
  + s_noise e5                                                       yield strength (MPa),
  Hall-Petch per phase and the rule of mixtures (`matforge.psp.HallPetchLink`'s form);

with e1..e5 independent N(0, 1). Labs that choose more Ni also anneal hotter, so their
grains are coarser and their alloys weaker: the observational E[strength | Ni] mixes the
effect of Ni with that of the lab. The interventional E[strength | do(Ni = c)] is computed
here exactly: under do(Ni) the factors (1 - beta), beta and d are independent, so the mean
is a sum of products of one-dimensional expectations, taken by Gauss-Hermite quadrature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["GRAPH_PARENTS", "ConfoundedAlloyGenerator"]

GAS_CONSTANT = 8.314462618

#: The observed graph (the lab factor is hidden: Ni and anneal_K share it).
GRAPH_PARENTS: dict[str, list[str]] = {
    "Ni": [],
    "anneal_K": [],
    "fraction_beta": ["Ni"],
    "grain_um": ["anneal_K"],
    "strength_MPa": ["fraction_beta", "grain_um"],
}
CONFOUNDED = [("Ni", "anneal_K")]


@dataclass(frozen=True)
class ConfoundedAlloyGenerator:
    ni_mean: float = 0.25
    ni_lab: float = 0.05
    ni_noise: float = 0.04
    t_mean: float = 1100.0  # K
    t_lab: float = 50.0
    t_noise: float = 20.0
    beta_max: float = 0.45
    ni_peak: float = 0.30
    ni_width: float = 0.18
    beta_noise: float = 0.05
    d0: float = 2.0  # um
    k0: float = 6.6e9  # um^2 / s
    activation: float = 250e3  # J / mol
    anneal_s: float = 3600.0
    d_noise: float = 0.05
    s_matrix: float = 150.0  # MPa
    k_matrix: float = 0.40  # MPa m^1/2
    s_beta: float = 600.0
    k_beta: float = 0.60
    s_noise: float = 10.0

    def sample(self, n: int, seed: int = 0, ni: float | None = None) -> pd.DataFrame:
        """n alloys; with `ni`, the interventional distribution do(Ni = ni)."""
        rng = np.random.default_rng(seed)
        lab = rng.standard_normal(n)
        e = rng.standard_normal((5, n))
        if ni is None:
            nickel = np.clip(self.ni_mean + self.ni_lab * lab + self.ni_noise * e[0], 0.02, 0.5)
        else:
            nickel = np.full(n, float(ni))
        anneal = self.t_mean + self.t_lab * lab + self.t_noise * e[1]
        beta = self.beta_fraction(nickel) * np.exp(self.beta_noise * e[2])
        grain = self.grain_size(anneal) * np.exp(self.d_noise * e[3])
        strength = self.strength(beta, grain) + self.s_noise * e[4]
        return pd.DataFrame(
            {
                "Ni": nickel,
                "anneal_K": anneal,
                "fraction_beta": beta,
                "grain_um": grain,
                "strength_MPa": strength,
            }
        )

    def beta_fraction(self, nickel: np.ndarray) -> np.ndarray:
        return self.beta_max * np.exp(-(((nickel - self.ni_peak) / self.ni_width) ** 2))

    def grain_size(self, anneal_k: np.ndarray) -> np.ndarray:
        growth = self.k0 * np.exp(-self.activation / (GAS_CONSTANT * anneal_k)) * self.anneal_s
        return np.sqrt(self.d0**2 + growth)

    def strength(self, beta: np.ndarray, grain_um: np.ndarray) -> np.ndarray:
        inverse_root = (grain_um * 1e-6) ** -0.5
        matrix = self.s_matrix + self.k_matrix * inverse_root
        return (1 - beta) * matrix + beta * (self.s_beta + self.k_beta * inverse_root)

    def interventional_strength(self, ni: float | np.ndarray, nodes: int = 40) -> np.ndarray:
        """E[strength | do(Ni = ni)], exact to quadrature accuracy (~1e-12 relative)."""
        x, w = np.polynomial.hermite_e.hermegauss(nodes)
        w = w / math.sqrt(2 * math.pi)
        # anneal temperature under do(Ni): N(t_mean, t_lab^2 + t_noise^2)
        anneal = self.t_mean + math.hypot(self.t_lab, self.t_noise) * x
        grain = self.grain_size(anneal)[:, None] * np.exp(self.d_noise * x)[None, :]
        inverse_root = (grain * 1e-6) ** -0.5
        mean_inverse_root = float(np.einsum("i,j,ij->", w, w, inverse_root))
        mean_beta = self.beta_fraction(np.asarray(ni, dtype=float)) * math.exp(
            self.beta_noise**2 / 2
        )
        matrix = self.s_matrix + self.k_matrix * mean_inverse_root
        return (1 - mean_beta) * matrix + mean_beta * (
            self.s_beta + self.k_beta * mean_inverse_root
        )

    def true_effect(self, low: float, high: float) -> float:
        """E[strength | do(Ni = high)] - E[strength | do(Ni = low)], MPa."""
        return float(self.interventional_strength(high) - self.interventional_strength(low))

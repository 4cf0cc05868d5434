"""PBE exchange and correlation (Perdew, Burke & Ernzerhof, PRL 77 (1996) 3865) in torch.

Exchange of the unpolarized gas: e_x = n e_x^unif(n) F_x(s), F_x = 1 + kappa -
kappa / (1 + mu s^2 / kappa), s = |grad n| / (2 (3 pi^2)^(1/3) n^(4/3)); spin-polarized by
exact spin scaling, E_x[n_up, n_dn] = (E_x[2 n_up] + E_x[2 n_dn]) / 2. Correlation:
e_c = n (eps_c^PW92mod(rs, zeta) + H(rs, zeta, t)). Constants as in libxc (GGA_X_PBE,
GGA_C_PBE).
"""

from __future__ import annotations

import math

import torch

from matforge.xc.uniform_gas import pw92_correlation, rs_of, slater_exchange_unpolarized

__all__ = ["pbe_correlation", "pbe_exchange_unpolarized"]

KAPPA = 0.804
MU = 0.2195149727645171
BETA = 0.06672455060314922
GAMMA = (1.0 - math.log(2.0)) / math.pi**2


def pbe_exchange_unpolarized(n: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Exchange energy per volume of an unpolarized density n with |grad n|^2 = sigma."""
    s2 = sigma / (4 * (3 * math.pi**2) ** (2 / 3) * n ** (8 / 3))
    enhancement = 1 + KAPPA - KAPPA / (1 + MU * s2 / KAPPA)
    return n * slater_exchange_unpolarized(n) * enhancement


def pbe_correlation(n: torch.Tensor, zeta: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Correlation energy per volume; sigma = |grad n|^2 of the total density."""
    rs = rs_of(n)
    eps_unif = pw92_correlation(rs, zeta, modified=True)
    phi = 0.5 * ((1 + zeta).clamp(min=0) ** (2 / 3) + (1 - zeta).clamp(min=0) ** (2 / 3))
    k_f = (3 * math.pi**2 * n) ** (1 / 3)
    k_s = torch.sqrt(4 * k_f / math.pi)
    t2 = sigma / (2 * phi * k_s * n) ** 2
    phi3 = phi**3
    a = BETA / GAMMA / torch.expm1(-eps_unif / (GAMMA * phi3))
    at2 = a * t2
    h = GAMMA * phi3 * torch.log1p(BETA / GAMMA * t2 * (1 + at2) / (1 + at2 + at2 * at2))
    return n * (eps_unif + h)

"""SCAN, the strongly constrained and appropriately normed meta-GGA (Sun, Ruzsinszky &
Perdew, PRL 115 (2015) 036402), in torch; equal to libxc's MGGA_X_SCAN + MGGA_C_SCAN.

Exchange of the unpolarized gas, with p = s^2 and alpha = (tau - tau_W) / tau_unif:
F_x = (h1x(s, alpha) + f_x(alpha) (h0x - h1x)) g_x(s); spin-polarized by exact spin
scaling. Correlation: e_c = e_c1 + f_c(alpha) (e_c0 - e_c1), e_c1 = PW92 + H1 (a PBE-like
gradient term with an rs-dependent beta), e_c0 the alpha = 0 (one-orbital) limit. The
switching functions f(alpha) = exp(-c1 alpha / (1 - alpha)) for alpha < 1 and
-d exp(c2 / (1 - alpha)) for alpha > 1 are evaluated with safe denominators so that
autograd never meets 0/0.
"""

from __future__ import annotations

import math

import torch

from matforge.xc.density import TINY, SpinDensity
from matforge.xc.functionals import XCFunctional, spin_scaled_exchange, spin_variables
from matforge.xc.uniform_gas import pw92_correlation, rs_of, slater_exchange_unpolarized

__all__ = ["SCAN", "scan_exchange_unpolarized", "switch"]

MU_AK = 10.0 / 81.0
K1 = 0.065
H0X = 1.174
A1 = 4.9479
B2 = math.sqrt(5913.0 / 405000.0)
B1 = (511.0 / 13500.0) / (2.0 * B2)
B3 = 0.5
B4 = MU_AK**2 / K1 - 1606.0 / 18225.0 - B1**2
C1X, C2X, DX = 0.667, 0.8, 1.24
C1C, C2C, DC = 0.64, 1.5, 0.7
B1C, B2C, B3C = 0.0285764, 0.0889, 0.125541
CHI_INF = 0.12802585262625815  # libxc; the paper rounds to 0.128026
GAMMA = (1.0 - math.log(2.0)) / math.pi**2
G_C = 2.363  # libxc; the paper prints 2.3631
BETA_PBE = 0.06672455060314922  # libxc; the paper rounds to 0.066725
TAU_UNIFORM = 0.3 * (3.0 * math.pi**2) ** (2.0 / 3.0)  # tau_unif = this * n^(5/3)
S_FACTOR = 2.0 * (3.0 * math.pi**2) ** (1.0 / 3.0)  # s = |grad n| / (this * n^(4/3))


def switch(alpha: torch.Tensor, c1: float, c2: float, d: float) -> torch.Tensor:
    """exp(-c1 a / (1 - a)) for a < 1, -d exp(c2 / (1 - a)) for a > 1, 0 at a = 1."""
    below = alpha < 1
    above = alpha > 1
    gap_below = torch.where(below, 1 - alpha, torch.ones_like(alpha))
    gap_above = torch.where(above, 1 - alpha, -torch.ones_like(alpha))
    lower = torch.exp(-c1 * alpha / gap_below)
    upper = -d * torch.exp(c2 / gap_above)
    zero = torch.zeros_like(alpha)
    return torch.where(below, lower, torch.where(above, upper, zero))


def scan_exchange_unpolarized(
    n: torch.Tensor, sigma: torch.Tensor, tau: torch.Tensor
) -> torch.Tensor:
    """SCAN exchange energy per volume of an unpolarized density."""
    p = sigma / (S_FACTOR**2 * n ** (8.0 / 3.0))
    alpha = (tau - sigma / (8 * n)) / (TAU_UNIFORM * n ** (5.0 / 3.0))
    one_minus = 1 - alpha
    x = (
        MU_AK * p
        + B4 * p**2 * torch.exp(-abs(B4) * p / MU_AK)
        + (B1 * p + B2 * one_minus * torch.exp(-B3 * one_minus**2)) ** 2
    )
    h1x = 1 + K1 - K1 / (1 + x / K1)
    s_root = torch.sqrt(torch.sqrt(p.clamp(min=TINY)))  # s^(1/2)
    gx = torch.where(p > TINY, -torch.expm1(-A1 / s_root), torch.ones_like(p))
    enhancement = (h1x + switch(alpha, C1X, C2X, DX) * (H0X - h1x)) * gx
    return n * slater_exchange_unpolarized(n) * enhancement


def _scan_exchange(n: torch.Tensor, sigma: torch.Tensor | None, tau: torch.Tensor | None):
    assert sigma is not None
    assert tau is not None
    return scan_exchange_unpolarized(n, sigma, tau)


def scan_correlation(
    n: torch.Tensor, zeta: torch.Tensor, sigma: torch.Tensor, tau: torch.Tensor
) -> torch.Tensor:
    """SCAN correlation energy per volume (total n, zeta, |grad n|^2, tau)."""
    rs = rs_of(n)
    opz, omz = (1 + zeta).clamp(min=0), (1 - zeta).clamp(min=0)
    phi = 0.5 * (opz ** (2.0 / 3.0) + omz ** (2.0 / 3.0))
    ds = 0.5 * (opz ** (5.0 / 3.0) + omz ** (5.0 / 3.0))
    alpha = (tau - sigma / (8 * n)) / (TAU_UNIFORM * n ** (5.0 / 3.0) * ds)
    s2 = sigma / (S_FACTOR**2 * n ** (8.0 / 3.0))
    # e_c1: PW92 + H1
    eps_lsda = pw92_correlation(rs, zeta, modified=True)
    phi3 = phi**3
    w1 = torch.expm1(-eps_lsda / (GAMMA * phi3))
    beta = BETA_PBE * (1 + 0.1 * rs) / (1 + 0.1778 * rs)
    t2 = (3 * math.pi**2 / 16) ** (2.0 / 3.0) * s2 / (phi**2 * rs)
    a = beta / (GAMMA * w1)
    g = (1 + 4 * a * t2) ** -0.25
    eps1 = eps_lsda + GAMMA * phi3 * torch.log1p(w1 * (1 - g))
    # e_c0: the alpha = 0 limit
    eps_lda0 = -B1C / (1 + B2C * torch.sqrt(rs) + B3C * rs)
    w0 = torch.expm1(-eps_lda0 / B1C)
    g_inf = (1 + 4 * CHI_INF * s2) ** -0.25
    dx = 0.5 * (opz ** (4.0 / 3.0) + omz ** (4.0 / 3.0))
    gc = (1 - G_C * (dx - 1)) * (1 - zeta**12)
    eps0 = (eps_lda0 + B1C * torch.log1p(w0 * (1 - g_inf))) * gc
    return n * (eps1 + switch(alpha, C1C, C2C, DC) * (eps0 - eps1))


class SCAN(XCFunctional):
    xctype = "MGGA"
    name = "scan"
    correlation_floor = 0.0

    def energy_density(self, density: SpinDensity) -> torch.Tensor:
        exchange = spin_scaled_exchange(density, _scan_exchange)
        keep, n, zeta = spin_variables(density, self.correlation_floor)
        assert density.tau is not None
        zero = torch.zeros_like(n)
        sigma = torch.where(keep, density.total_sigma, zero)
        tau = torch.where(keep, density.tau[0] + density.tau[1], n)
        correlation = scan_correlation(n, zeta, sigma, tau)
        return exchange + torch.where(keep, correlation, zero)

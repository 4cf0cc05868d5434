"""The uniform electron gas: Slater exchange and the PW92 and VWN5 correlation energies.

Energies per particle (Hartree) as functions of rs = (3 / (4 pi n))^(1/3) and the spin
polarization zeta, in torch (autograd gives the potentials). Parameters are those of
libxc, so that these equal LDA_X, LDA_C_PW, LDA_C_PW_MOD and LDA_C_VWN:
- PW92: Perdew & Wang, PRB 45 (1992) 13244; "modified" is libxc's PW_MOD (more digits of
  A and the exact f''(0)), which PBE's correlation uses.
- VWN5: Vosko, Wilk & Nusair, Can. J. Phys. 58 (1980) 1200, their fit 5 (libxc LDA_C_VWN).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "f_zeta",
    "pw92_correlation",
    "rs_of",
    "slater_exchange_unpolarized",
    "vwn5_correlation",
]

# exchange energy per particle of the unpolarized gas: -(3/4) (3/pi)^(1/3) n^(1/3)
SLATER = 0.75 * (3.0 / math.pi) ** (1.0 / 3.0)
FZ_DENOMINATOR = 2.0 ** (4.0 / 3.0) - 2.0
FZ20_EXACT = 8.0 / (9.0 * FZ_DENOMINATOR)


def rs_of(n: torch.Tensor) -> torch.Tensor:
    return (3.0 / (4.0 * math.pi * n)) ** (1.0 / 3.0)


def f_zeta(zeta: torch.Tensor) -> torch.Tensor:
    """Spin interpolation ((1+z)^(4/3) + (1-z)^(4/3) - 2) / (2^(4/3) - 2)."""
    return ((1 + zeta).clamp(min=0) ** (4 / 3) + (1 - zeta).clamp(min=0) ** (4 / 3) - 2) / (
        FZ_DENOMINATOR
    )


def slater_exchange_unpolarized(n: torch.Tensor) -> torch.Tensor:
    """Exchange energy per particle of the unpolarized gas of density n."""
    return -SLATER * n ** (1.0 / 3.0)


def _pw_g(rs: torch.Tensor, a: float, alpha1: float, betas: tuple[float, ...]) -> torch.Tensor:
    b1, b2, b3, b4 = betas
    root = torch.sqrt(rs)
    denominator = 2 * a * (b1 * root + b2 * rs + b3 * rs * root + b4 * rs * rs)
    return -2 * a * (1 + alpha1 * rs) * torch.log1p(1 / denominator)


_PW_ALPHA1 = (0.21370, 0.20548, 0.11125)
_PW_BETAS = (
    (7.5957, 3.5876, 1.6382, 0.49294),
    (14.1189, 6.1977, 3.3662, 0.62517),
    (10.357, 3.6231, 0.88026, 0.49671),
)
_PW_A = {False: (0.031091, 0.015545, 0.016887), True: (0.0310907, 0.01554535, 0.0168869)}
_PW_FZ20 = {False: 1.709921, True: FZ20_EXACT}


def pw92_correlation(
    rs: torch.Tensor, zeta: torch.Tensor, *, modified: bool = False
) -> torch.Tensor:
    """PW92 correlation energy per particle; `modified` = libxc's LDA_C_PW_MOD."""
    a = _PW_A[modified]
    paramagnetic = _pw_g(rs, a[0], _PW_ALPHA1[0], _PW_BETAS[0])
    ferromagnetic = _pw_g(rs, a[1], _PW_ALPHA1[1], _PW_BETAS[1])
    minus_stiffness = _pw_g(rs, a[2], _PW_ALPHA1[2], _PW_BETAS[2])  # -alpha_c
    fz = f_zeta(zeta)
    z4 = zeta**4
    return (
        paramagnetic
        - minus_stiffness * fz * (1 - z4) / _PW_FZ20[modified]
        + (ferromagnetic - paramagnetic) * fz * z4
    )


def _vwn_term(rs: torch.Tensor, a: float, b: float, c: float, x0: float) -> torch.Tensor:
    x = torch.sqrt(rs)
    big_x = x * x + b * x + c
    x0_value = x0 * x0 + b * x0 + c
    q = math.sqrt(4 * c - b * b)
    arctangent = torch.atan(q / (2 * x + b))
    return a * (
        torch.log(x * x / big_x)
        + 2 * b / q * arctangent
        - b * x0 / x0_value * (torch.log((x - x0) ** 2 / big_x) + 2 * (b + 2 * x0) / q * arctangent)
    )


_VWN_PARAMAGNETIC = (0.0310907, 3.72744, 12.9352, -0.10498)
_VWN_FERROMAGNETIC = (0.01554535, 7.06042, 18.0578, -0.32500)
_VWN_STIFFNESS = (-1.0 / (6.0 * math.pi**2), 1.13107, 13.0045, -0.0047584)


def vwn5_correlation(rs: torch.Tensor, zeta: torch.Tensor) -> torch.Tensor:
    """VWN5 correlation energy per particle (libxc LDA_C_VWN)."""
    paramagnetic = _vwn_term(rs, *_VWN_PARAMAGNETIC)
    ferromagnetic = _vwn_term(rs, *_VWN_FERROMAGNETIC)
    stiffness = _vwn_term(rs, *_VWN_STIFFNESS)
    fz = f_zeta(zeta)
    z4 = zeta**4
    return (
        paramagnetic
        + stiffness * fz * (1 - z4) / FZ20_EXACT
        + (ferromagnetic - paramagnetic) * fz * z4
    )

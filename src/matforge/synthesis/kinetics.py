"""Closed-form kinetic laws of thermomechanical processing, vectorized in torch.

Each function is one law with its source; `ProcessModel` (process.py) composes them into
processing operations with the constants of one alloy. Units: temperature K, time s,
lengths m (grain size, radii), dislocation density m^-2, fractions 0..1, stress Pa.
"""

from __future__ import annotations

import math

import torch

R = 8.314462618  # J/(mol K)

__all__ = [
    "R",
    "arrhenius",
    "grain_growth",
    "hall_petch",
    "jmak_fraction",
    "kocks_mecking",
    "lsw_coarsening",
    "orowan_shearing_stress",
    "recovery",
    "solid_solution_stress",
    "taylor_stress",
]


def arrhenius(prefactor: float, activation: float, kelvin: torch.Tensor) -> torch.Tensor:
    """k = k0 exp(-Q / RT), Q in J/mol."""
    return prefactor * torch.exp(-activation / (R * kelvin))


def grain_growth(
    d0: torch.Tensor, kelvin: torch.Tensor, seconds: torch.Tensor, *, n: float, k0: float, q: float
) -> torch.Tensor:
    """Isothermal grain growth d^n - d0^n = k0 t exp(-Q/RT) (Burke and Turnbull, Prog. Met.
    Phys. 3 (1952) 220; n = 2 for ideal, pinning-free growth)."""
    return (d0**n + arrhenius(k0, q, kelvin) * seconds) ** (1.0 / n)


def jmak_fraction(rate: torch.Tensor, seconds: torch.Tensor, exponent: float) -> torch.Tensor:
    """Johnson-Mehl-Avrami-Kolmogorov: X = 1 - exp(-(k t)^n) (Avrami, J. Chem. Phys. 7
    (1939) 1103)."""
    return 1.0 - torch.exp(-((rate * seconds) ** exponent))


def recovery(
    rho0: torch.Tensor, kelvin: torch.Tensor, seconds: torch.Tensor, *, k0: float, q: float
) -> torch.Tensor:
    """Second-order static recovery d rho/dt = -k rho^2, i.e. 1/rho = 1/rho0 + k t
    (dislocation annihilation in pairs; Friedel, Dislocations, 1964; Nes, Acta Metall.
    Mater. 43 (1995) 2189). k = k0 exp(-Q/RT) in m^2/s."""
    return 1.0 / (1.0 / rho0 + arrhenius(k0, q, kelvin) * seconds)


def kocks_mecking(
    rho0: torch.Tensor, strain: torch.Tensor, *, k1: float, k2: float, taylor: float
) -> torch.Tensor:
    """Dislocation storage and dynamic recovery in plastic strain (Kocks and Mecking, Prog.
    Mater. Sci. 48 (2003) 171): d rho / d eps = M (k1 sqrt(rho) - k2 rho), integrated in
    closed form for sqrt(rho): s(eps) = s_inf + (s0 - s_inf) exp(-M k2 eps / 2),
    s_inf = k1 / k2."""
    saturation = k1 / k2
    root = saturation + (rho0.sqrt() - saturation) * torch.exp(-taylor * k2 * strain / 2)
    return root**2


def lsw_coarsening(
    r0: torch.Tensor, kelvin: torch.Tensor, seconds: torch.Tensor, *, k0: float, q: float
) -> torch.Tensor:
    """Lifshitz-Slyozov-Wagner coarsening r^3 - r0^3 = K t with K = k0 exp(-Q/RT) / T
    (Lifshitz and Slyozov, J. Phys. Chem. Solids 19 (1961) 35; Wagner, Z. Elektrochem. 65
    (1961) 581: K = 8 gamma D c V_m / 9RT, with D and the solubility Arrhenius terms)."""
    return (r0**3 + arrhenius(k0, q, kelvin) / kelvin * seconds) ** (1.0 / 3.0)


def taylor_stress(
    rho: torch.Tensor, *, alpha: float, shear_modulus: float, burgers: float, taylor: float
) -> torch.Tensor:
    """Forest hardening sigma = M alpha G b sqrt(rho) (Taylor, Proc. R. Soc. A 145 (1934)
    362)."""
    return taylor * alpha * shear_modulus * burgers * rho.sqrt()


def hall_petch(grain: torch.Tensor, k: float) -> torch.Tensor:
    """sigma = k d^-1/2 (Hall, Proc. Phys. Soc. B 64 (1951) 747; Petch, JISI 174 (1953) 25)."""
    return k * grain.rsqrt()


def orowan_shearing_stress(
    fraction: torch.Tensor,
    radius: torch.Tensor,
    *,
    shear_modulus: float,
    burgers: float,
    taylor: float,
    shearing_k: float,
) -> torch.Tensor:
    """Precipitation strengthening, the weaker of the two mechanisms (Ardell, Metall. Trans.
    A 16 (1985) 2131; Deschamps and Brechet, Acta Mater. 47 (1999) 293):
    shearing sigma_s = M k_s G sqrt(f r / b) (rising with r), Orowan bypass
    sigma_o = M 0.4 G b / (pi sqrt(1 - nu)) ln(2r / b) / lambda with the spacing
    lambda = r sqrt(2 pi / 3 f) (falling with r); the peak is at their crossing, beyond it
    the alloy is over-aged."""
    f = fraction.clamp(min=1e-12)
    shearing = taylor * shearing_k * shear_modulus * torch.sqrt(f * radius / burgers)
    spacing = radius * math.sqrt(2 * math.pi / 3) / f.sqrt()
    nu = 0.33
    orowan = (
        taylor
        * 0.4
        * shear_modulus
        * burgers
        / (math.pi * math.sqrt(1 - nu))
        * torch.log((2 * radius / burgers).clamp(min=1.0 + 1e-9))
        / spacing
    )
    return torch.minimum(shearing, orowan) * (fraction > 0)


def solid_solution_stress(solute: torch.Tensor, k: float) -> torch.Tensor:
    """sigma = k c^(2/3) (Labusch, Phys. Status Solidi 41 (1970) 659), c in at. fraction."""
    return k * solute.clamp(min=0.0) ** (2.0 / 3.0)

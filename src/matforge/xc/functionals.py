"""XC functionals as torch modules: an energy density per volume from a `SpinDensity`.

`XCFunctional` is the seam: `xctype` ("LDA", "GGA", "MGGA"), `hybrid` (the fraction of
exact exchange PySCF adds) and `energy_density(density)` -> e_xc (N,). Potentials come
from autograd (`matforge.xc.pyscf_bridge`). Points where a spin channel's density is below
`TINY` contribute nothing to that channel's exchange, and points where the total is below
it contribute nothing at all (libxc's density threshold plays the same role).

Reference functionals, equal to libxc (tests): ``lda`` (Slater exchange + VWN5, PySCF's
"LDA,VWN"), ``lda_pw`` (Slater + PW92, "LDA,PW"), ``pbe`` ("PBE,PBE"), ``scan``
("SCAN,SCAN", `matforge.xc.scan`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from matforge.core.errors import ConfigError
from matforge.xc.density import TINY, XC_TYPES, SpinDensity
from matforge.xc.pbe import pbe_correlation, pbe_exchange_unpolarized
from matforge.xc.uniform_gas import (
    pw92_correlation,
    rs_of,
    slater_exchange_unpolarized,
    vwn5_correlation,
)

__all__ = [
    "FUNCTIONALS",
    "LIBXC_NAMES",
    "XCFunctional",
    "get_functional",
    "safe",
    "spin_scaled_exchange",
    "spin_variables",
]

ZETA_THRESHOLD = 2.220446049250313e-16  # libxc's: |zeta| is kept 1 - this away from 1


def safe(n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask n > TINY, n with 1 where masked out): formulas never see 0 or negatives."""
    keep = n > TINY
    return keep, torch.where(keep, n, torch.ones_like(n))


def spin_scaled_exchange(
    density: SpinDensity,
    unpolarized: Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor | None], torch.Tensor],
) -> torch.Tensor:
    """E_x[n_up, n_dn] = (E_x[2 n_up] + E_x[2 n_dn]) / 2 for an unpolarized exchange
    energy density `unpolarized(n, sigma, tau)` (per volume)."""
    total = torch.zeros_like(density.rho[0])
    for spin in (0, 1):
        keep, n = safe(density.rho[spin])
        sigma = None
        if density.grad is not None:
            sigma = torch.where(keep, 4 * density.sigma(spin, spin), torch.zeros_like(n))
        tau = None if density.tau is None else torch.where(keep, 2 * density.tau[spin], n)
        value = 0.5 * unpolarized(2 * n, sigma, tau)
        total = total + torch.where(keep, value, torch.zeros_like(value))
    return total


def spin_variables(
    density: SpinDensity, floor: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mask, total density made safe, zeta clamped as libxc does). `floor` raises each
    spin density to at least that value first, as libxc does with a functional's density
    threshold (1e-12 for PBE correlation): it moves zeta off 1 in a fully polarized
    region (the H atom) by ~1e-12 / n, which changes E_c there by ~1e-9 Ha."""
    keep, n = safe(density.total)
    up, down = density.rho[0].clamp(min=floor), density.rho[1].clamp(min=floor)
    zeta = ((up - down) / (up + down).clamp(min=TINY)).clamp(
        -1 + ZETA_THRESHOLD, 1 - ZETA_THRESHOLD
    )
    if floor > 0:
        n = torch.where(keep, up + down, n)
    return keep, n, torch.where(keep, zeta, torch.zeros_like(zeta))


class XCFunctional(nn.Module):
    xctype: str = "LDA"
    hybrid: float = 0.0
    name: str = "functional"

    def energy_density(self, density: SpinDensity) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, density: SpinDensity) -> torch.Tensor:
        return self.energy_density(density)


def _lda_exchange(n: torch.Tensor, sigma: object, tau: object) -> torch.Tensor:
    return n * slater_exchange_unpolarized(n)


class LDA(XCFunctional):
    """Slater exchange with VWN5 (`correlation="vwn5"`) or PW92 (`"pw92"`) correlation."""

    xctype = "LDA"

    def __init__(self, correlation: str = "vwn5") -> None:
        super().__init__()
        if correlation not in ("vwn5", "pw92"):
            raise ConfigError(f"LDA correlation must be vwn5 or pw92, got {correlation!r}")
        self.correlation = correlation
        self.name = "lda" if correlation == "vwn5" else "lda_pw"

    def energy_density(self, density: SpinDensity) -> torch.Tensor:
        exchange = spin_scaled_exchange(density, _lda_exchange)
        keep, n, zeta = spin_variables(density)
        rs = rs_of(n)
        eps = (
            vwn5_correlation(rs, zeta) if self.correlation == "vwn5" else pw92_correlation(rs, zeta)
        )
        return exchange + torch.where(keep, n * eps, torch.zeros_like(n))


def _pbe_exchange(n: torch.Tensor, sigma: torch.Tensor | None, tau: object) -> torch.Tensor:
    assert sigma is not None
    return pbe_exchange_unpolarized(n, sigma)


class PBE(XCFunctional):
    xctype = "GGA"
    name = "pbe"
    correlation_floor = 1e-12  # libxc's density threshold of GGA_C_PBE

    def energy_density(self, density: SpinDensity) -> torch.Tensor:
        exchange = spin_scaled_exchange(density, _pbe_exchange)
        keep, n, zeta = spin_variables(density, self.correlation_floor)
        sigma = torch.where(keep, density.total_sigma, torch.zeros_like(n))
        correlation = pbe_correlation(n, zeta, sigma)
        return exchange + torch.where(keep, correlation, torch.zeros_like(n))


def _scan() -> XCFunctional:
    from matforge.xc.scan import SCAN

    return SCAN()


FUNCTIONALS: dict[str, Callable[[], XCFunctional]] = {
    "lda": LDA,
    "lda_pw": lambda: LDA("pw92"),
    "pbe": PBE,
    "scan": _scan,
}
LIBXC_NAMES = {"lda": "LDA,VWN", "lda_pw": "LDA,PW", "pbe": "PBE,PBE", "scan": "SCAN,SCAN"}


def get_functional(name: str) -> XCFunctional:
    key = name.lower()
    if key not in FUNCTIONALS:
        raise ConfigError(f"unknown functional {name!r}; known: {', '.join(sorted(FUNCTIONALS))}")
    functional = FUNCTIONALS[key]()
    if functional.xctype not in XC_TYPES:
        raise ConfigError(f"{name}: xctype must be one of {XC_TYPES}")
    return functional

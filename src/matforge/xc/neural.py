"""A constrained neural meta-GGA: SCAN as the prior, learned corrections, exact
constraints built into the architecture rather than hoped for from data.

Exchange (per spin, by exact spin scaling E_x[n_up, n_dn] = (E_x[2 n_up] + E_x[2 n_dn]) / 2):
e_x = n eps_x^LDA(n) F_x(s, alpha) with

    F_x = u(alpha) sigmoid(logit(F_SCAN / u) + g(s, alpha) - g(0, 1)),
    u(alpha) = 1.174 + (1.804 - 1.174) tanh(alpha)^2   (tight at alpha = 0),

so that for every parameter value
- 0 < F_x < u(alpha) <= 1.804 (the local Lieb-Oxford bound) and F_x < 1.174 at alpha = 0
  (the bound for one- and two-electron densities that SCAN uses);
- F_x(0, 1) = 1: the uniform gas is exact;
- F_x depends on n only through s and alpha, which are invariant under uniform coordinate
  scaling, so E_x[n_lambda] = lambda E_x[n] exactly.

Correlation: e_c = e_c^SCAN(rs, zeta, s, alpha) * 2^tanh(h(rs, zeta^2, s, alpha) -
h(rs, zeta^2, 0, 1)): the factor lies in (1/2, 2), is 1 for the uniform gas at every rs
and zeta (so the uniform-gas limit is SCAN's, i.e. PW92), keeps e_c <= 0, is even in zeta,
and multiplies SCAN's correlation, which vanishes for one-electron densities (alpha = 0,
|zeta| = 1): one-electron self-interaction freedom is kept for every parameter value.

g and h are small MLPs with zero-initialized last layers, so the untrained functional is
SCAN (up to the clip of F_SCAN / u to [1e-6, 1 - 1e-6]).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from matforge.xc.density import SpinDensity
from matforge.xc.functionals import XCFunctional, spin_scaled_exchange, spin_variables
from matforge.xc.scan import (
    S_FACTOR,
    TAU_UNIFORM,
    scan_correlation,
    scan_exchange_unpolarized,
)
from matforge.xc.uniform_gas import rs_of, slater_exchange_unpolarized

__all__ = ["LIEB_OXFORD", "TWO_ELECTRON_BOUND", "NeuralMetaGGA", "exchange_upper_bound"]

LIEB_OXFORD = 1.804
TWO_ELECTRON_BOUND = 1.174
CLIP = 1e-6


def exchange_upper_bound(alpha: torch.Tensor) -> torch.Tensor:
    return TWO_ELECTRON_BOUND + (LIEB_OXFORD - TWO_ELECTRON_BOUND) * torch.tanh(alpha) ** 2


def _mlp(inputs: int, hidden: int, layers: int) -> nn.Sequential:
    modules: list[nn.Module] = []
    size = inputs
    for _ in range(layers):
        modules += [nn.Linear(size, hidden), nn.SiLU()]
        size = hidden
    last = nn.Linear(size, 1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    modules.append(last)
    return nn.Sequential(*modules).double()


def _reduced(n: torch.Tensor, sigma: torch.Tensor, tau: torch.Tensor):
    s = torch.sqrt(sigma / (S_FACTOR**2 * n ** (8.0 / 3.0)) + 1e-30)
    alpha = ((tau - sigma / (8 * n)) / (TAU_UNIFORM * n ** (5.0 / 3.0))).clamp(min=0)
    return s, alpha


def _features(s: torch.Tensor, alpha: torch.Tensor) -> list[torch.Tensor]:
    # bounded transforms keep the networks' inputs O(1) over the whole density range
    return [torch.tanh(s), (1 - alpha) / (1 + alpha)]


class NeuralMetaGGA(XCFunctional):
    xctype = "MGGA"

    def __init__(self, hidden: int = 16, layers: int = 2, name: str = "neural_mgga") -> None:
        super().__init__()
        self.name = name
        self.exchange_net = _mlp(2, hidden, layers)
        self.correlation_net = _mlp(4, hidden, layers)

    def enhancement(self, s: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """F_x(s, alpha) (unpolarized), bounded by construction."""
        n = torch.ones_like(s)  # F_x is density-free; evaluate SCAN's at n = 1
        sigma = s**2 * S_FACTOR**2
        tau = alpha * TAU_UNIFORM + sigma / 8
        scan = scan_exchange_unpolarized(n, sigma, tau) / slater_exchange_unpolarized(n)
        upper = exchange_upper_bound(alpha)
        ratio = (scan / upper).clamp(CLIP, 1 - CLIP)
        net = self.exchange_net(torch.stack(_features(s, alpha), -1)).squeeze(-1)
        reference = self.exchange_net(
            torch.tensor([[0.0, 0.0]], dtype=net.dtype, device=net.device)
        ).squeeze()
        return upper * torch.sigmoid(torch.logit(ratio) + net - reference)

    def _exchange(self, n: torch.Tensor, sigma: torch.Tensor | None, tau: torch.Tensor | None):
        assert sigma is not None
        assert tau is not None
        s, alpha = _reduced(n, sigma, tau)
        return n * slater_exchange_unpolarized(n) * self.enhancement(s, alpha)

    def correlation_factor(
        self, rs: torch.Tensor, zeta: torch.Tensor, s: torch.Tensor, alpha: torch.Tensor
    ) -> torch.Tensor:
        radius = torch.log(rs).clamp(-10, 10) / 5
        inputs = torch.stack([radius, zeta**2, *_features(s, alpha)], -1)
        uniform = torch.stack([radius, zeta**2, torch.zeros_like(s), torch.zeros_like(alpha)], -1)
        change = self.correlation_net(inputs) - self.correlation_net(uniform)
        return torch.exp(math.log(2.0) * torch.tanh(change.squeeze(-1)))

    def energy_density(self, density: SpinDensity) -> torch.Tensor:
        return spin_scaled_exchange(density, self._exchange) + self.correlation_energy_density(
            density
        )

    def correlation_energy_density(self, density: SpinDensity) -> torch.Tensor:
        assert density.tau is not None
        keep, n, zeta = spin_variables(density)
        zero = torch.zeros_like(n)
        sigma = torch.where(keep, density.total_sigma, zero)
        tau = torch.where(keep, density.tau[0] + density.tau[1], n)
        s, alpha = _reduced(n, sigma, tau)
        correlation = scan_correlation(n, zeta, sigma, tau) * self.correlation_factor(
            rs_of(n), zeta, s, alpha
        )
        return torch.where(keep, correlation, zero)

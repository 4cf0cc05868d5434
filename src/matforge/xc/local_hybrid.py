"""A constrained neural local hybrid: exact exchange mixed in point by point, as DM21.

Exchange per spin s (exact spin scaling: each channel is half the unpolarized functional
of the doubled density 2 n_s, the exact-exchange energy density included):

    e_x,s = a_s e_x^HF,s + (1 - a_s) e_x^SL,s,
    a_s = b + (1 - b) exp(-alpha_s / w),   b = sigmoid(logit(b0) + m(s, alpha, r)),

with e_x^SL the bounded exchange of `NeuralMetaGGA` (its F_x obeys both bounds), e_x^HF
the exact-exchange energy density (`matforge.xc.exact_exchange`), r = e_x^HF / e_x^LDA, m
a small MLP (zero-initialized last layer), b0 = 0.25 the prior far from one-electron
regions, and w > 0.2 a learned width (the floor keeps SCF convergence; see MIN_WIDTH).
Correlation is the `NeuralMetaGGA` correlation (SCAN's times a bounded learned factor,
zero for one-electron densities).

What the form guarantees for every parameter value:
- one-electron densities (alpha = 0 everywhere): a = 1, so E_x = E_x^HF = -J and E_c = 0,
  no self-interaction; for a fractionally occupied one-electron system (H, He+ with
  0 < N < 1 electrons) E_x^HF = -N^2 J: E(N) is exactly linear at fixed orbitals;
- uniform coordinate scaling of exchange: s, alpha and r are scale-invariant and both
  energy densities scale as lambda^4;
- the uniform gas: there e_x^HF = e_x^LDA and F_x(0, 1) = 1, so any mixing gives LDA
  exchange, and the correlation is PW92's;
- 0 <= a <= 1: the exchange lies between the bounded semilocal one and exact exchange.
The local Lieb-Oxford bound is not imposed pointwise on e_x^HF (the conventional exact-
exchange energy density exceeds it in density tails); the integrated exact exchange obeys
the global bound.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from matforge.core.errors import ConfigError
from matforge.xc.density import SpinDensity
from matforge.xc.functionals import XCFunctional, safe
from matforge.xc.neural import NeuralMetaGGA, _features, _mlp, _reduced
from matforge.xc.uniform_gas import slater_exchange_unpolarized

__all__ = ["LocalHybrid"]

# A steep a(alpha) puts large terms d a / d alpha (e_x^HF - e_x^SL) into the potential of
# virtual orbitals (alpha grows when a second orbital is added), enough to reorder the
# orbitals: the H atom's SCF did not converge with w = 0.1 and converged to the exact
# Hartree-Fock energy (1e-12 Ha) with w = 0.3 and 1. The width is kept above this floor.
MIN_WIDTH = 0.2


class LocalHybrid(XCFunctional):
    xctype = "MGGA"
    uses_exact_exchange = True

    def __init__(
        self,
        hidden: int = 16,
        layers: int = 2,
        prior_mixing: float = 0.25,
        width: float = 0.3,
        name: str = "neural_local_hybrid",
    ) -> None:
        super().__init__()
        if not 0 < prior_mixing < 1 or width <= MIN_WIDTH:
            raise ConfigError(f"prior_mixing must lie in (0, 1) and width be > {MIN_WIDTH}")
        self.name = name
        self.semilocal = NeuralMetaGGA(hidden, layers)
        self.mixing_net = _mlp(3, hidden, layers)
        self.register_buffer(
            "prior_logit", torch.tensor(math.log(prior_mixing / (1 - prior_mixing)))
        )
        extra = math.log(width - MIN_WIDTH)
        self.log_width = nn.Parameter(torch.tensor(extra, dtype=torch.float64))

    def mixing(self, s: torch.Tensor, alpha: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
        """a(s, alpha, r) in [0, 1], 1 at alpha = 0."""
        inputs = torch.stack([*_features(s, alpha), (ratio - 1) / (ratio + 1)], -1)
        far = torch.sigmoid(self.prior_logit + self.mixing_net(inputs).squeeze(-1))
        width = MIN_WIDTH + torch.exp(self.log_width)
        return far + (1 - far) * torch.exp(-alpha / width)

    def energy_density(self, density: SpinDensity) -> torch.Tensor:
        if density.exact_exchange is None or density.tau is None or density.grad is None:
            raise ConfigError(
                f"{self.name} needs exact-exchange energy densities (a GridDensity, or "
                "training data prepared for a local hybrid)"
            )
        exchange = torch.zeros_like(density.rho[0])
        for spin in (0, 1):
            keep, n = safe(density.rho[spin])
            doubled = 2 * n
            sigma = torch.where(keep, 4 * density.sigma(spin, spin), torch.zeros_like(n))
            tau = torch.where(keep, 2 * density.tau[spin], n)
            semilocal = 0.5 * self.semilocal._exchange(doubled, sigma, tau)
            local = 0.5 * doubled * slater_exchange_unpolarized(doubled)
            exact = density.exact_exchange[spin]
            ratio = torch.where(keep, exact / local, torch.ones_like(n)).clamp(min=0)
            s, alpha = _reduced(doubled, sigma, tau)
            a = self.mixing(s, alpha, ratio)
            value = a * exact + (1 - a) * semilocal
            exchange = exchange + torch.where(keep, value, torch.zeros_like(value))
        return exchange + self.correlation_energy_density(density)

    def correlation_energy_density(self, density: SpinDensity) -> torch.Tensor:
        return self.semilocal.correlation_energy_density(density)

"""The density variables an XC functional sees, per spin channel, as torch tensors.

`SpinDensity` holds n_s, grad n_s and tau_s for s = up, down (tau = 1/2 sum_i |grad phi_i|^2,
PySCF's and libxc's convention), and for local hybrids the exact-exchange energy density
per spin, e_x^HF,s (`matforge.xc.exact_exchange`). `from_pyscf` reads PySCF's `rho`
array (restricted: (N,), (4, N) or (5|6, N) for the total density; unrestricted: a leading
axis of 2) and splits a restricted density evenly between the spins, so one spin-resolved
formula serves RKS and UKS. Derived quantities (`total`, `zeta`, `sigma`) are what the formulas use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["XC_TYPES", "SpinDensity"]

XC_TYPES = ("LDA", "GGA", "MGGA")
TINY = 1e-30  # below this a density (or tau) is treated as zero


@dataclass
class SpinDensity:
    rho: torch.Tensor  # (2, N) spin densities
    grad: torch.Tensor | None = None  # (2, 3, N)
    tau: torch.Tensor | None = None  # (2, N)
    exact_exchange: torch.Tensor | None = None  # (2, N), energy per volume, <= 0

    @property
    def total(self) -> torch.Tensor:
        return self.rho[0] + self.rho[1]

    def sigma(self, a: int, b: int) -> torch.Tensor:
        """grad n_a . grad n_b."""
        assert self.grad is not None
        return (self.grad[a] * self.grad[b]).sum(0)

    @property
    def total_sigma(self) -> torch.Tensor:
        assert self.grad is not None
        g = self.grad[0] + self.grad[1]
        return (g * g).sum(0)

    @classmethod
    def from_pyscf(
        cls, rho: np.ndarray, xctype: str, spin: int, *, device: str = "cpu"
    ) -> tuple[SpinDensity, torch.Tensor]:
        """(density, leaf tensor of PySCF's variables, requires_grad) from PySCF's `rho`."""
        array = np.asarray(rho, dtype=np.float64)
        if xctype == "MGGA" and array.shape[-2] == 6:  # drop the Laplacian row
            array = array[..., [0, 1, 2, 3, 5], :]
        leaf = torch.tensor(array, device=device, requires_grad=True)
        channels = torch.stack([leaf, leaf]) * 0.5 if spin == 0 else leaf
        if xctype == "LDA":
            density = channels if channels.dim() == 2 else channels[:, 0]
            return cls(density), leaf
        grad = channels[:, 1:4]
        tau = channels[:, 4] if xctype == "MGGA" else None
        return cls(channels[:, 0], grad, tau), leaf

"""Exact-exchange energy densities on a grid, and SCF with functionals that use them.

For spin s with density matrix D^s and atomic orbitals phi_mu, the exact-exchange energy
density (conventional gauge) is

    e_x^HF,s(r) = -1/2 sum_{nu,kappa} F_nu(r) F_kappa(r) V_{nu kappa}(r),
    F_nu(r) = sum_mu D^s_{mu nu} phi_mu(r),
    V_{nu kappa}(r) = int phi_nu(r') phi_kappa(r') / |r - r'| dr'

(PySCF's ``int1e_grids`` integrals); its integral is the Hartree-Fock exchange energy
-1/2 tr(D^s K[D^s]). `GridDensity` holds the AO values, gradients and these integrals on
a PySCF grid, and maps density matrices (torch tensors) to a `SpinDensity` with the exact-
exchange energy density, so a functional's E_xc is a torch function of D and its Fock
matrix dE_xc/dD comes from autograd. `attach_local_hybrid` installs that on a PySCF RKS/UKS
object through `get_veff`, the seam PySCF's own hybrids use to add exchange: the SCF runs
unchanged (DIIS, convergence checks) with the learned functional's potential.

The integrals take grid points x nao^2 x 8 bytes; above `memory_mb` they are recomputed
in blocks at every evaluation instead of being kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from matforge.xc.density import SpinDensity
from matforge.xc.functionals import XCFunctional

__all__ = [
    "GridDensity",
    "attach_local_hybrid",
    "exact_exchange_densities",
    "exact_exchange_energy",
]


class GridDensity:
    def __init__(self, mol: Any, coords: np.ndarray, weights: np.ndarray, memory_mb: float = 1500):
        from pyscf.dft import numint

        self.mol = mol
        self.coords = np.asarray(coords)
        ao = numint.eval_ao(mol, self.coords, deriv=1)  # (4, N, nao)
        self.ao = torch.as_tensor(ao[0], dtype=torch.float64)
        self.ao_grad = torch.as_tensor(ao[1:4], dtype=torch.float64)
        self.weights = torch.as_tensor(weights, dtype=torch.float64)
        nao = self.ao.shape[1]
        bytes_per_point = nao * nao * 8
        self.block = max(1, int(min(memory_mb, 200) * 2**20 // bytes_per_point))
        self._integrals: list[torch.Tensor] | None = None
        if len(self.coords) * bytes_per_point <= memory_mb * 2**20:
            self._integrals = [self._coulomb(start) for start in self._starts()]

    @classmethod
    def from_scf(cls, mf: Any, memory_mb: float = 1500) -> GridDensity:
        if mf.grids.coords is None:
            mf.grids.build(with_non0tab=True)
        return cls(mf.mol, mf.grids.coords, mf.grids.weights, memory_mb)

    def _starts(self) -> range:
        return range(0, len(self.coords), self.block)

    def _coulomb(self, start: int) -> torch.Tensor:
        points = self.coords[start : start + self.block]
        # PySCF returns the grid axis fastest; batched products want it slowest (8x faster)
        integrals = np.ascontiguousarray(self.mol.intor("int1e_grids", grids=points))
        return torch.as_tensor(integrals, dtype=torch.float64)

    def exact_exchange(self, dm: torch.Tensor) -> torch.Tensor:
        """e_x^HF of one spin's density matrix on the grid (N,)."""
        orbital_sums = self.ao @ dm  # F(r)_nu = sum_mu phi_mu(r) D_mu nu
        parts = []
        for index, start in enumerate(self._starts()):
            block = self._integrals[index] if self._integrals is not None else self._coulomb(start)
            f = orbital_sums[start : start + self.block]
            parts.append(-0.5 * _SymmetricForm.apply(f, block))
        return torch.cat(parts)

    def density(
        self, dm: torch.Tensor, *, exact_exchange: bool = True, restricted: bool = False
    ) -> SpinDensity:
        """`SpinDensity` of spin density matrices `dm` (2, nao, nao); `restricted`: `dm` is
        one spin's (nao, nao), the same for both spins (computed once)."""
        rho, grad, tau, exx = [], [], [], []
        for spin in (0,) if restricted else (0, 1):
            d = dm if restricted else dm[spin]
            d = 0.5 * (d + d.T)
            half = self.ao @ d  # (N, nao)
            rho.append((half * self.ao).sum(-1))
            grad.append(2 * (self.ao_grad * half.unsqueeze(0)).sum(-1))
            tau.append(0.5 * ((self.ao_grad @ d) * self.ao_grad).sum(-1).sum(0))
            if exact_exchange:
                exx.append(self.exact_exchange(d))
        if restricted:
            rho, grad, tau, exx = (2 * parts for parts in (rho, grad, tau, exx))
        return SpinDensity(
            torch.stack(rho),
            torch.stack(grad),
            torch.stack(tau),
            torch.stack(exx) if exact_exchange else None,
        )


class _SymmetricForm(torch.autograd.Function):
    """f_g . V_g f_g per grid point for symmetric V_g (g, n, n): one pass over V forward,
    none backward (d/df = 2 V f, kept from the forward)."""

    @staticmethod
    def forward(ctx: Any, f: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        product = torch.bmm(v, f.unsqueeze(-1)).squeeze(-1)
        ctx.save_for_backward(product)
        return (f * product).sum(-1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (product,) = ctx.saved_tensors
        return 2 * grad.unsqueeze(-1) * product, None


def _spin_matrices(dm: np.ndarray) -> np.ndarray:
    dm = np.asarray(dm)
    return dm if dm.ndim == 3 else np.stack([dm / 2, dm / 2])


def exact_exchange_densities(grid: GridDensity, dm: np.ndarray) -> torch.Tensor:
    """e_x^HF per spin (2, N) of a restricted (nao, nao) or unrestricted (2, nao, nao)
    density matrix on the grid."""
    spins = torch.as_tensor(_spin_matrices(dm), dtype=torch.float64)
    with torch.no_grad():
        return torch.stack([grid.exact_exchange(d) for d in spins])


def exact_exchange_energy(grid: GridDensity, dm: np.ndarray) -> float:
    """Sum_s int e_x^HF,s on the grid (equals -1/2 sum_s tr(D^s K[D^s]) up to the grid)."""
    return float((exact_exchange_densities(grid, dm) * grid.weights).sum())


def attach_local_hybrid(mf: Any, functional: XCFunctional, memory_mb: float = 1500) -> Any:
    """Make PySCF RKS/UKS object `mf` run `functional` (which reads exact-exchange energy
    densities) through `get_veff`; returns mf."""
    from pyscf import lib

    from matforge.xc.pyscf_bridge import attach, one_torch_thread

    attach(mf, functional)  # PySCF's questions about the functional, answered for it
    state: dict[str, GridDensity] = {}

    def get_veff(mol=None, dm=None, dm_last=0, vhf_last=0, hermi=1):  # PySCF's signature
        mol = mol or mf.mol
        dm = mf.make_rdm1() if dm is None else np.asarray(dm)
        if "grid" not in state:
            state["grid"] = GridDensity.from_scf(mf, memory_mb)
        grid = state["grid"]
        total = dm if dm.ndim == 2 else dm[0] + dm[1]
        vj = mf.get_j(mol, total, hermi)
        restricted = dm.ndim == 2
        with torch.enable_grad(), one_torch_thread():
            # restricted: one leaf, D_s = D / 2 for both spins, so dE/dD = dE/dD_s / 2
            leaf = dm / 2 if restricted else dm
            spins = torch.tensor(leaf, dtype=torch.float64, requires_grad=True)
            density = grid.density(spins, restricted=restricted)
            energy = (functional.energy_density(density) * grid.weights).sum()
            (gradient,) = torch.autograd.grad(energy, spins)
        gradient = gradient.numpy()
        gradient = 0.5 * (gradient + np.swapaxes(gradient, -1, -2))
        veff = vj + 0.5 * gradient if restricted else vj[None] + gradient
        ecoul = 0.5 * float(np.einsum("ij,ji->", vj, total))
        return lib.tag_array(veff, ecoul=ecoul, exc=float(energy.detach()), vj=vj, vk=None)

    mf.get_veff = get_veff
    return mf

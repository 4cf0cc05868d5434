"""Torch XC functionals inside PySCF's RKS and UKS.

`TorchNumInt` is a `pyscf.dft.numint.NumInt` whose `eval_xc_eff` (what PySCF 2.14's
`nr_rks`/`nr_uks` call; an `eval_xc` override on a subclass is bypassed there, see
tests/xc) evaluates a `XCFunctional` and takes the potential by autograd with respect to
PySCF's own variables (n, grad n, tau; per spin for UKS): no sigma bookkeeping, and the
derivative tensor has exactly the layout PySCF contracts. Its `libxc` attribute answers
PySCF's questions about the functional (hybrid fraction, type, non-local part) for this
functional instead of parsing `mf.xc`.

`attach(mf, functional)` installs it on a PySCF RKS/UKS object; `xc_energy` gives E_xc of a
density matrix on a grid (used to train without re-running the SCF).
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from matforge.core.errors import ConfigError
from matforge.xc.density import SpinDensity
from matforge.xc.functionals import XCFunctional, get_functional

__all__ = [
    "TorchNumInt",
    "attach",
    "density_on_grid",
    "evaluate",
    "kohn_sham",
    "require_pyscf",
    "second_derivative",
]


def require_pyscf() -> None:
    try:
        import pyscf  # noqa: F401
    except ImportError:
        raise ConfigError(
            "matforge xc runs functionals in PySCF: pip install 'matforge[dft]'"
        ) from None


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Elementwise work on a block of grid points gains little from torch's thread pool,
    and that pool beside PySCF's OpenMP threads oversubscribes the cores (measured: a
    50,000-point SCAN evaluation 0.17 s on one thread, 8 s on two threads of a busy
    2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def evaluate(
    functional: XCFunctional, rho: np.ndarray, spin: int, deriv: int = 1
) -> tuple[np.ndarray, np.ndarray | None]:
    """(exc per particle, derivative tensor in PySCF's eval_xc_eff layout) on grid points."""
    density, leaf = SpinDensity.from_pyscf(rho, functional.xctype, spin)
    with torch.enable_grad(), one_torch_thread():
        energy = functional.energy_density(density)
        vxc = None
        if deriv >= 1:
            (vxc_tensor,) = torch.autograd.grad(energy.sum(), leaf)
            vxc = vxc_tensor.detach().cpu().numpy()
    total = density.total.detach()
    exc = torch.where(total > 0, energy.detach() / torch.where(total > 0, total, 1.0), 0.0)
    if vxc is not None and functional.xctype == "LDA":
        vxc = vxc.reshape((2, 1, -1) if spin else (1, -1))
    return exc.cpu().numpy(), vxc


def second_derivative(functional: XCFunctional, rho: np.ndarray, spin: int) -> np.ndarray:
    """The kernel f_xc = d^2 e_xc / dx_i dx_j per grid point, in PySCF's eval_xc_eff
    layout ((nvar, nvar, N) restricted, (2, nvar, 2, nvar, N) unrestricted): one backward
    pass per variable through the potential's graph; the grid points are independent, so
    the gradient of a potential summed over points is that point's row of the Hessian."""
    density, leaf = SpinDensity.from_pyscf(rho, functional.xctype, spin)
    with torch.enable_grad(), one_torch_thread():
        energy = functional.energy_density(density)
        (first,) = torch.autograd.grad(energy.sum(), leaf, create_graph=True)
        rows = first.reshape(-1, first.shape[-1])
        hessian = []
        for row in rows:
            (second,) = torch.autograd.grad(
                row.sum(), leaf, retain_graph=True, allow_unused=True, materialize_grads=True
            )
            hessian.append(second.detach())
    kernel = torch.stack(hessian).reshape(*first.shape[:-1], *leaf.shape).cpu().numpy()
    if functional.xctype == "LDA":
        kernel = kernel.reshape((2, 1, 2, 1, -1) if spin else (1, 1, -1))
    return kernel


def density_on_grid(
    mf: Any, dm: np.ndarray | None = None, xctype: str = "MGGA"
) -> tuple[SpinDensity, torch.Tensor]:
    """The spin density of `dm` (default: mf's) on mf's grid, and the grid weights: what
    E_xc[n] = sum_g w_g e_xc(g) needs, so that functionals can be trained on fixed
    densities without PySCF in the loop."""
    from pyscf.dft import numint

    mol = mf.mol
    dm = mf.make_rdm1() if dm is None else np.asarray(dm)
    spins = dm if dm.ndim == 3 else np.stack([dm / 2, dm / 2])
    if mf.grids.coords is None:
        mf.grids.build(with_non0tab=True)
    ni = numint.NumInt()
    ao_deriv = 0 if xctype == "LDA" else 1
    rows: list[list[np.ndarray]] = [[], []]
    weights = []
    for ao, _, weight, _ in ni.block_loop(mol, mf.grids, mol.nao, ao_deriv):
        for spin in (0, 1):
            rows[spin].append(ni.eval_rho(mol, ao, spins[spin], xctype=xctype))
        weights.append(weight)
    stacked = np.stack([np.concatenate(r, axis=-1) for r in rows])
    rho = torch.as_tensor(stacked, dtype=torch.float64)
    if xctype == "LDA":
        density = SpinDensity(rho)
    else:
        tau = rho[:, -1] if xctype == "MGGA" else None
        density = SpinDensity(rho[:, 0], rho[:, 1:4], tau)
    return density, torch.as_tensor(np.concatenate(weights), dtype=torch.float64)


class _LibxcView:
    """PySCF's `ni.libxc` questions answered for one torch functional; anything else
    goes to pyscf.dft.libxc."""

    def __init__(self, functional: XCFunctional) -> None:
        from pyscf.dft import libxc

        self._libxc = libxc
        self._functional = functional

    def __getattr__(self, name: str) -> Any:
        return getattr(self._libxc, name)

    def is_hybrid_xc(self, xc_code: Any) -> bool:
        return self._functional.hybrid != 0

    def is_nlc(self, xc_code: Any) -> bool:
        return False

    def xc_type(self, xc_code: Any) -> str:
        return self._functional.xctype

    def hybrid_coeff(self, xc_code: Any, spin: int = 0) -> float:
        return self._functional.hybrid

    def rsh_coeff(self, xc_code: Any) -> tuple[float, float, float]:
        return (0.0, 0.0, 0.0)

    def is_gga(self, xc_code: Any) -> bool:
        return self._functional.xctype == "GGA"

    def is_meta_gga(self, xc_code: Any) -> bool:
        return self._functional.xctype == "MGGA"

    def is_lda(self, xc_code: Any) -> bool:
        return self._functional.xctype == "LDA"

    def needs_laplacian(self, xc_code: Any) -> bool:
        return False

    def xc_reference(self, xc_code: Any) -> list[str]:
        return [f"matforge torch functional {self._functional.name}"]


def _make_numint() -> type:
    from pyscf.dft import numint

    class TorchNumInt(numint.NumInt):
        """A NumInt evaluating a torch `XCFunctional` (see the module docstring)."""

        def __init__(self, functional: XCFunctional) -> None:
            super().__init__()
            self.functional = functional
            self.libxc = _LibxcView(functional)

        def _xc_type(self, xc_code: Any) -> str:
            return self.functional.xctype

        def hybrid_coeff(self, xc_code: Any, spin: int = 0) -> float:
            return self.functional.hybrid

        def rsh_coeff(self, xc_code: Any) -> tuple[float, float, float]:
            return (0.0, 0.0, 0.0)

        def eval_xc_eff(
            self,
            xc_code: Any,
            rho: np.ndarray,
            deriv: int = 1,
            omega: float | None = None,
            xctype: str | None = None,
            verbose: Any = None,
            spin: int | None = None,
        ) -> list:
            if deriv > 2:
                raise NotImplementedError(
                    f"{self.functional.name}: third derivatives are not implemented for "
                    "torch functionals (kernels, deriv=2, are)"
                )
            array = np.asarray(rho)
            if spin is None:
                spin = int(array.ndim >= 2 and array.shape[0] == 2)
            exc, vxc = evaluate(self.functional, array, spin, deriv)
            fxc = second_derivative(self.functional, array, spin) if deriv == 2 else None
            return [exc, vxc, fxc, None]

        def eval_xc(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("TorchNumInt evaluates through eval_xc_eff only")

    return TorchNumInt


TorchNumInt: Any = types.SimpleNamespace()  # replaced on first use (PySCF is optional)


def attach(mf: Any, functional: XCFunctional | str) -> Any:
    """Make PySCF KS object `mf` use `functional` (a name or an `XCFunctional`); returns mf."""
    global TorchNumInt
    if isinstance(functional, str):
        functional = get_functional(functional)
    if not hasattr(mf, "_numint"):
        raise ConfigError("attach needs a PySCF Kohn-Sham object (dft.RKS or dft.UKS)")
    if isinstance(TorchNumInt, types.SimpleNamespace):
        TorchNumInt = _make_numint()
    mf._numint = TorchNumInt(functional)
    mf.xc = functional.name
    return mf


def kohn_sham(mol: Any, functional: XCFunctional | str, *, grid_level: int = 3) -> Any:
    """An RKS (closed shell) or UKS object for `mol` running `functional`."""
    from pyscf import dft

    mf = dft.RKS(mol) if mol.spin == 0 and mol.nelectron % 2 == 0 else dft.UKS(mol)
    mf.grids.level = grid_level
    if isinstance(functional, str):
        mf.xc = functional
    elif getattr(functional, "uses_exact_exchange", False):
        from matforge.xc.exact_exchange import attach_local_hybrid

        attach_local_hybrid(mf, functional)
    else:
        attach(mf, functional)
    mf.conv_tol = 1e-10
    return mf

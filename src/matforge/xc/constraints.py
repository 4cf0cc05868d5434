"""Exact constraints, measured: what a functional does where the exact one is known.

Pointwise (no SCF): `coordinate_scaling_error` (E_x[n_lambda] = lambda E_x[n]),
`spin_scaling_error` (E_x[n_up, n_dn] = (E_x[2 n_up] + E_x[2 n_dn]) / 2) and
`exchange_enhancement_range` (F_x over a grid of (s, alpha)). Self-consistent, in PySCF:
`size_consistency_error` (two fragments far apart against the sum of their energies),
`one_electron_report` (the H atom: total-energy error, E_c and the self-interaction error
E_xc + J, all zero for the exact functional) and `fractional_charge_curve` (E(N) between
0 and 1 electron for H or He+, against the straight line the exact functional gives).

A functional is an `XCFunctional` (run through `attach`) or a libxc name for PySCF
("PBE", "SCAN", "B3LYP"), so the learned functional is reported beside the standard ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from matforge.core.errors import ConfigError
from matforge.xc.density import SpinDensity
from matforge.xc.functionals import XCFunctional, spin_scaled_exchange
from matforge.xc.pyscf_bridge import kohn_sham

__all__ = [
    "coordinate_scaling_error",
    "exchange_enhancement_range",
    "fractional_charge_curve",
    "one_electron_report",
    "size_consistency_error",
    "spin_scaling_error",
]


def _exchange(functional: XCFunctional, density: SpinDensity) -> torch.Tensor:
    unpolarized = getattr(functional, "_exchange", None)
    if unpolarized is None:
        raise ConfigError(f"{functional.name}: no separate exchange part to test")
    return spin_scaled_exchange(density, unpolarized)


def coordinate_scaling_error(
    functional: XCFunctional, density: SpinDensity, scale: float = 2.5
) -> float:
    """max |e_x[n_lambda] - lambda^4 e_x[n]| / |lambda^4 e_x[n]| over the points: n -> l^3 n,
    grad n -> l^4 grad n, tau -> l^5 tau; the energy density per volume goes as l^4, so
    with the volume element l^-3, E_x[n_l] = l E_x[n]."""
    scaled = SpinDensity(
        density.rho * scale**3,
        None if density.grad is None else density.grad * scale**4,
        None if density.tau is None else density.tau * scale**5,
    )
    with torch.no_grad():
        reference = scale**4 * _exchange(functional, density)
        value = _exchange(functional, scaled)
    return float(((value - reference).abs() / reference.abs().clamp(min=1e-300)).max())


def spin_scaling_error(functional: XCFunctional, density: SpinDensity) -> float:
    """max relative |e_x[n_up, n_dn] - (e_x[2 n_up, 0] + e_x[0, 2 n_dn]) / 2| where the
    right side uses unpolarized evaluations of the doubled spin densities."""

    def doubled(spin: int) -> SpinDensity:
        rho = torch.stack([density.rho[spin], density.rho[spin]])
        grad = None if density.grad is None else torch.stack([density.grad[spin]] * 2)
        tau = None if density.tau is None else torch.stack([density.tau[spin]] * 2)
        return SpinDensity(rho, grad, tau)  # n_up = n_dn = n_s: total 2 n_s, unpolarized

    with torch.no_grad():
        value = _exchange(functional, density)
        reference = 0.5 * (_exchange(functional, doubled(0)) + _exchange(functional, doubled(1)))
    return float(((value - reference).abs() / reference.abs().clamp(min=1e-300)).max())


def exchange_enhancement_range(
    functional: XCFunctional, s: np.ndarray, alpha: np.ndarray
) -> dict[str, float]:
    """F_x on the grid s x alpha: its maximum, its maximum at alpha = 0, its minimum and
    F_x(0, 1) (1 for the uniform gas)."""
    enhancement = getattr(functional, "enhancement", None)
    if enhancement is None:
        raise ConfigError(f"{functional.name}: no enhancement factor F_x(s, alpha) to test")
    grid_s, grid_alpha = np.meshgrid(s, alpha, indexing="ij")
    with torch.no_grad():
        values = enhancement(
            torch.as_tensor(grid_s.ravel(), dtype=torch.float64),
            torch.as_tensor(grid_alpha.ravel(), dtype=torch.float64),
        ).reshape(grid_s.shape)
        at_zero = enhancement(
            torch.as_tensor(s, dtype=torch.float64), torch.zeros(len(s), dtype=torch.float64)
        )
        uniform = enhancement(
            torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
        )
    return {
        "max": float(values.max()),
        "max_alpha0": float(at_zero.max()),
        "min": float(values.min()),
        "uniform_gas": float(uniform[0]),
    }


def _converged_energy(mf: Any, what: str) -> float:
    energy = float(mf.kernel())
    if not mf.converged:
        raise RuntimeError(f"{what}: SCF did not converge")
    return energy


def size_consistency_error(
    functional: XCFunctional | str,
    fragment_a: str,
    fragment_b: str,
    *,
    distance: float = 60.0,
    basis: str = "6-31g",
    spins: tuple[int, int] = (0, 0),
) -> float:
    """E(A + B, `distance` Angstrom apart along z) - E(A) - E(B), in Hartree."""
    from pyscf import gto

    def shifted(atoms: str, dz: float) -> str:
        out = []
        for entry in atoms.split(";"):
            symbol, x, y, z = entry.split()
            out.append(f"{symbol} {x} {y} {float(z) + dz}")
        return "; ".join(out)

    parts = []
    for atoms, spin in zip((fragment_a, fragment_b), spins, strict=True):
        mol = gto.M(atom=atoms, basis=basis, spin=spin, verbose=0)
        parts.append(_converged_energy(kohn_sham(mol, functional), f"fragment {atoms}"))
    combined = gto.M(
        atom=f"{fragment_a}; {shifted(fragment_b, distance)}",
        basis=basis,
        spin=sum(spins),
        verbose=0,
    )
    total = _converged_energy(kohn_sham(combined, functional), "combined fragments")
    return total - sum(parts)


def one_electron_report(
    functional: XCFunctional | str, *, basis: str = "aug-cc-pvqz"
) -> dict[str, float]:
    """H atom: E - (-0.5) (Hartree; the basis-set limit of the exact energy), E_xc + J
    (the one-electron self-interaction error; 0 for the exact functional) and, for torch
    functionals, E_c alone (0 for the exact functional)."""
    from pyscf import gto

    mol = gto.M(atom="H 0 0 0", basis=basis, spin=1, verbose=0)
    mf = kohn_sham(mol, functional)
    energy = _converged_energy(mf, "H atom")
    dm = mf.make_rdm1()
    coulomb = 0.5 * float(np.einsum("ij,ji->", mf.get_j(mol, dm[0] + dm[1]), dm[0] + dm[1]))
    # PySCF's exc includes a hybrid's exact-exchange energy
    exchange_correlation = float(mf.get_veff(mol, dm).exc)
    report = {
        "energy_error": energy + 0.5,
        "self_interaction": exchange_correlation + coulomb,
    }
    if isinstance(functional, XCFunctional):
        from matforge.xc.pyscf_bridge import density_on_grid

        density, weights = density_on_grid(mf, dm)
        if getattr(functional, "uses_exact_exchange", False):
            from matforge.xc.exact_exchange import GridDensity, exact_exchange_densities

            density.exact_exchange = exact_exchange_densities(GridDensity.from_scf(mf), dm)
        with torch.no_grad():
            if hasattr(functional, "correlation_energy_density"):
                correlation = functional.correlation_energy_density(density)
            else:
                total = functional.energy_density(density)
                exchange = _exchange(functional, density) if hasattr(functional, "_exchange") else 0
                correlation = total - exchange
        report["correlation"] = float((correlation * weights).sum())
    return report


def fractional_charge_curve(
    functional: XCFunctional | str,
    nucleus: str = "H",
    *,
    points: int = 5,
    basis: str = "aug-cc-pvtz",
    grid_level: int = 3,
) -> dict[str, Any]:
    """E(N) for N = 0 .. 1 electron around a bare nucleus (H: the H atom; He: He+), by
    self-consistent fractional occupation of the spin-up orbital closest to the one-electron
    solution's (maximum overlap); the exact E(N) is
    the straight line N E(1) (E(0) = 0). Each fraction starts from the integer solution's
    density times N. Returns N, E(N) (None where the SCF did not converge), a converged
    flag per point, and the largest deviation from the line over the converged points
    (negative: convex, the delocalization error)."""
    from pyscf import gto

    charge = {"H": 0, "He": 1}.get(nucleus)
    if charge is None:
        raise ConfigError(f"fractional_charge_curve: nucleus must be H or He, got {nucleus!r}")
    mol = gto.M(atom=f"{nucleus} 0 0 0", basis=basis, charge=charge, spin=1, verbose=0)
    numbers = np.linspace(0.0, 1.0, points)
    energies: list[float | None] = [0.0]
    converged = [True]
    whole = kohn_sham(mol, functional, grid_level=grid_level)
    whole.kernel()
    start = whole.make_rdm1()
    overlap = mol.intor("int1e_ovlp")
    occupied = whole.mo_coeff[0][:, int(np.argmax(whole.mo_occ[0]))]
    for number in numbers[1:]:
        mf = kohn_sham(mol, functional, grid_level=grid_level)

        def occupations(mo_energy: Any = None, mo_coeff: Any = None, n: float = number) -> Any:
            # the orbital of most overlap with the one-electron solution's (maximum
            # overlap): aufbau can flip to another orbital at small n when a functional's
            # virtual orbitals lie low, and land in an excited state
            occ = np.zeros((2, len(mo_energy[0])))
            similarity = np.abs(occupied @ overlap @ mo_coeff[0])
            occ[0, int(np.argmax(similarity))] = n
            return occ

        mf.get_occ = occupations
        mf.max_cycle = 100
        energy = float(mf.kernel(dm0=start * number))
        converged.append(bool(mf.converged))
        energies.append(energy if mf.converged else None)
    done = [i for i, ok in enumerate(converged) if ok]
    deviation = None
    if converged[-1]:
        gaps = [energies[i] - numbers[i] * energies[-1] for i in done]  # type: ignore[operator]
        deviation = float(gaps[int(np.argmax(np.abs(gaps)))])
    return {
        "electrons": numbers.tolist(),
        "energies": energies,
        "converged": converged,
        "max_deviation": deviation,
    }

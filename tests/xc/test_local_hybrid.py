"""The local hybrid: exact-exchange energy densities integrate to Hartree-Fock exchange,
the autograd Fock matrix is right (pure exact exchange on the grid reproduces RHF/UHF),
and the constraints built into the form hold at random weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("pyscf")

from matforge.core.errors import ConfigError
from matforge.xc.constraints import fractional_charge_curve, one_electron_report
from matforge.xc.data import g2_1_atoms, g2_1_molecules
from matforge.xc.density import SpinDensity
from matforge.xc.exact_exchange import GridDensity, exact_exchange_energy
from matforge.xc.functionals import XCFunctional
from matforge.xc.local_hybrid import LocalHybrid
from matforge.xc.pyscf_bridge import kohn_sham
from matforge.xc.training import prepare

WATER = "O 0 0 0; H 0 0.76 -0.59; H 0 -0.76 -0.59"
HYDROXYL = "O 0 0 0; H 0 0 0.97"


class ExactExchangeOnly(XCFunctional):
    """e_xc = sum_s e_x^HF,s: self-consistently, Hartree-Fock on a grid."""

    xctype = "MGGA"
    uses_exact_exchange = True
    name = "exact_exchange_only"

    def energy_density(self, density: SpinDensity) -> torch.Tensor:
        return density.exact_exchange.sum(0)


def _randomized(seed: int = 1) -> LocalHybrid:
    torch.manual_seed(seed)
    functional = LocalHybrid(hidden=8)
    with torch.no_grad():
        for parameter in functional.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return functional


@pytest.mark.parametrize(("atoms", "spin"), [(WATER, 0), (HYDROXYL, 1)])
def test_pure_exact_exchange_on_the_grid_is_hartree_fock(atoms: str, spin: int) -> None:
    """Integrated e_x^HF equals -1/2 sum_s tr(D_s K[D_s]) at the HF density, and the SCF
    whose Fock matrix is autograd's dE/dD of it converges to the HF energy (measured:
    4e-8 Ha RKS, 1e-8 Ha UKS at grid level 3)."""
    from pyscf import gto, scf

    mol = gto.M(atom=atoms, basis="6-31g", spin=spin, verbose=0)
    hf = (scf.RHF if spin == 0 else scf.UHF)(mol)
    hf.conv_tol = 1e-11
    reference = hf.kernel()
    mf = kohn_sham(mol, ExactExchangeOnly(), grid_level=3)
    energy = mf.kernel()
    assert mf.converged
    assert energy == pytest.approx(reference, abs=5e-7)
    dm = hf.make_rdm1()
    k = hf.get_k(mol, dm)
    spins = (dm / 2, dm / 2) if spin == 0 else dm
    ks = (k / 2, k / 2) if spin == 0 else k  # K is linear in D
    expected = -0.5 * sum(np.einsum("ij,ji->", d, kk) for d, kk in zip(spins, ks, strict=True))
    assert exact_exchange_energy(GridDensity.from_scf(mf), dm) == pytest.approx(expected, abs=1e-6)


def test_one_electron_systems_are_exact_at_random_weights() -> None:
    """a = 1 where alpha = 0 and no correlation there: the H atom is Hartree-Fock (no
    self-interaction), and E(N) of H and He+ is a straight line self-consistently
    (measured 1e-10 Ha)."""
    from pyscf import gto, scf

    functional = _randomized()
    mol = gto.M(atom="H 0 0 0", basis="6-31g", spin=1, verbose=0)
    mf = kohn_sham(mol, functional, grid_level=2)
    assert mf.kernel() == pytest.approx(scf.UHF(mol).kernel(), abs=1e-7)
    report = one_electron_report(functional, basis="6-31g")
    assert abs(report["self_interaction"]) < 1e-10  # E_xc + J, measured 3e-15
    assert abs(report["correlation"]) < 1e-12
    for nucleus in ("H", "He"):
        curve = fractional_charge_curve(functional, nucleus, points=3, basis="6-31g", grid_level=2)
        assert all(curve["converged"]), nucleus
        assert abs(curve["max_deviation"]) < 1e-7, nucleus


def _synthetic(points: int = 400, seed: int = 0) -> SpinDensity:
    generator = torch.Generator().manual_seed(seed)
    rho = torch.rand(2, points, generator=generator, dtype=torch.float64) + 0.05
    grad = torch.randn(2, 3, points, generator=generator, dtype=torch.float64) * rho[:, None]
    tau_w = (grad**2).sum(1) / (8 * rho)
    tau = tau_w + torch.rand(2, points, generator=generator, dtype=torch.float64) * rho ** (5 / 3)
    exact = -(torch.rand(2, points, generator=generator, dtype=torch.float64) + 0.5) * rho ** (
        4 / 3
    )
    return SpinDensity(rho, grad, tau, exact)


def test_exchange_scaling_and_mixing_bounds_at_random_weights() -> None:
    """Coordinate scaling (n -> l^3 n, grad -> l^4, tau -> l^5, e_x^HF -> l^4: the exchange
    energy density goes as l^4), exact spin scaling, and 0 <= a <= 1."""
    functional = _randomized()
    functional.semilocal.correlation_energy_density = lambda density: torch.zeros_like(
        density.rho[0]
    )  # exchange alone
    density = _synthetic()
    scale = 2.5
    scaled = SpinDensity(
        density.rho * scale**3,
        density.grad * scale**4,
        density.tau * scale**5,
        density.exact_exchange * scale**4,
    )
    with torch.no_grad():
        reference = functional.energy_density(density)
        value = functional.energy_density(scaled)
        assert float(((value - scale**4 * reference).abs() / reference.abs()).max()) < 1e-12

        def both(spin: int) -> SpinDensity:
            pick = [spin, spin]
            return SpinDensity(
                density.rho[pick],
                density.grad[pick],
                density.tau[pick],
                density.exact_exchange[pick],
            )

        halves = 0.5 * (functional.energy_density(both(0)) + functional.energy_density(both(1)))
        assert float((reference - halves).abs().max()) < 1e-12 * float(reference.abs().max())
        s = torch.linspace(0, 5, 50, dtype=torch.float64)
        alpha = torch.linspace(0, 5, 50, dtype=torch.float64)
        ratio = torch.linspace(0.1, 10, 50, dtype=torch.float64)
        a = functional.mixing(s, alpha, ratio)
        assert float(a.min()) >= 0
        assert float(a.max()) <= 1
        assert float(functional.mixing(s[:1], alpha[:1] * 0, ratio[:1])) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="exact-exchange"):
        LocalHybrid().energy_density(SpinDensity(density.rho, density.grad, density.tau))


def test_fixed_density_energy_matches_the_scf_machinery(tmp_path) -> None:
    """The training's fixed densities (PySCF's grid loop + exact exchange) and the SCF's
    torch density (GridDensity) give the same E_xc for the local hybrid at the PBE
    density: the two grids line up point by point."""
    systems = {s.name: s for s in [*g2_1_molecules(), *g2_1_atoms()]}
    fixed = prepare([systems["OH"]], tmp_path, basis="sto-3g", grid_level=1, exact_exchange=True)[
        "OH"
    ]
    functional = _randomized()
    from pyscf import gto

    system = systems["OH"]
    mol = gto.M(atom=system.atoms_string(), basis="sto-3g", spin=system.spin, verbose=0)
    pbe = kohn_sham(mol, "PBE", grid_level=1)
    pbe.kernel()
    grid = GridDensity.from_scf(pbe)
    with torch.no_grad():
        direct = (
            functional.energy_density(grid.density(torch.as_tensor(pbe.make_rdm1()))) * grid.weights
        ).sum()
        stored = (functional.energy_density(fixed.density) * fixed.weights).sum()
    assert float(stored) == pytest.approx(float(direct), abs=1e-8)

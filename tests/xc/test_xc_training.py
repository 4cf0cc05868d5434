"""Training on fixed densities: the energy bookkeeping is exact for the reference
functional, dE_SCF/dtheta equals dE_xc/dtheta at the SCF density, and fitting lowers the
atomization-energy error of the molecules it is fitted to."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("pyscf")

from matforge.xc.data import g2_1_atoms, g2_1_molecules, g2_1_split
from matforge.xc.functionals import get_functional
from matforge.xc.neural import NeuralMetaGGA
from matforge.xc.pyscf_bridge import density_on_grid, kohn_sham
from matforge.xc.training import fit, prepare

SYSTEMS = {s.name: s for s in [*g2_1_molecules(), *g2_1_atoms()]}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    names = ["H2O", "HF", "OH", "H", "O", "F"]
    cache = tmp_path_factory.mktemp("xc-cache")
    return prepare([SYSTEMS[n] for n in names], cache, basis="sto-3g", grid_level=1)


def test_fixed_density_energy_is_the_reference_energy(data) -> None:
    pbe = get_functional("pbe")
    for fixed in data.values():
        with torch.no_grad():
            assert float(fixed.energy(pbe)) == pytest.approx(fixed.reference_energy, abs=1e-8)


def test_cache_resumes_without_recomputing(data, tmp_path: Path) -> None:
    first = prepare([SYSTEMS["HF"]], tmp_path, basis="sto-3g", grid_level=1)
    calls = []
    again = prepare(
        [SYSTEMS["HF"]], tmp_path, basis="sto-3g", grid_level=1, progress=lambda *a: calls.append(a)
    )
    assert calls == []
    assert again["HF"].rest_energy == first["HF"].rest_energy


def test_scf_energy_derivative_is_the_xc_derivative_at_the_scf_density() -> None:
    """E_SCF(theta) is stationary in the density, so dE/dtheta = dE_xc/dtheta at n_SCF:
    central finite difference of two SCFs against autograd at the SCF density."""
    from pyscf import gto

    mol = gto.M(atom="O 0 0 0; H 0 0.76 -0.59; H 0 -0.76 -0.59", basis="sto-3g", verbose=0)
    functional = NeuralMetaGGA()
    parameter = functional.exchange_net[-1].weight  # the bias cancels in g - g(0, 1)
    step = 1e-3

    def scf_energy(value: float) -> tuple[float, object]:
        with torch.no_grad():
            parameter.fill_(value)
        mf = kohn_sham(mol, functional, grid_level=2)
        mf.conv_tol = 1e-12
        return float(mf.kernel()), mf

    plus, _ = scf_energy(0.3 + step)
    minus, _ = scf_energy(0.3 - step)
    _, mf = scf_energy(0.3)
    density, weights = density_on_grid(mf)
    energy = (functional.energy_density(density) * weights).sum()
    (gradient,) = torch.autograd.grad(energy, parameter)
    analytic = float(gradient.sum())  # every weight was moved together
    finite = (plus - minus) / (2 * step)
    assert analytic == pytest.approx(finite, rel=1e-4)
    assert abs(analytic) > 1e-3


def test_fit_lowers_the_training_error(data) -> None:
    functional = NeuralMetaGGA(hidden=8)
    result = fit(functional, data, ["H2O", "HF"], ["OH"], epochs=25, learning_rate=2e-2)
    history = result["history"]
    assert history[-1]["train_mae"] < 0.6 * history[0]["train_mae"]
    assert result["best_validation_mae"] <= history[0]["validation_mae"]


def test_split_is_disjoint_and_fixed() -> None:
    split = g2_1_split(0)
    train, validation, test = (set(split[k]) for k in ("train", "validation", "test"))
    assert not train & validation
    assert not train & test
    assert not validation & test
    assert len(train | validation | test) == 55
    assert g2_1_split(0) == split

"""GAP: the sparse GP equals the dense GP, exact derivatives, clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from matforge.core.errors import ConfigError
from matforge.mlip.gap import GapSettings, fit_gap, gap_potential
from matforge.mlip.gap_variance import predict_with_variance
from matforge.mlip.soap import SoapParameters


def labelled(seed: int, symbols=("Cu",), repeat=(1, 1, 1), rattle=0.12) -> Atoms:
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.6 + 0.04 * rng.normal(), cubic=True).repeat(repeat)
    if len(symbols) > 1:
        atoms.set_chemical_symbols(rng.choice(symbols, len(atoms)).tolist())
    atoms.positions += rng.normal(0.0, rattle, atoms.positions.shape)
    atoms.calc = EMT()
    results = {
        "energy": atoms.get_potential_energy(),
        "forces": atoms.get_forces(),
        "stress": atoms.get_stress(),
    }
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def finite_difference_force_error(potential, atoms: Atoms, h: float = 1e-4) -> float:
    """Largest |central difference of -E - predicted force| over every component."""

    def energy(candidate: Atoms) -> float:
        return float(potential(potential.batch([candidate]), forces=False, stress=False).energy[0])

    forces = potential(potential.batch([atoms]), stress=False).forces
    worst = 0.0
    for i in range(len(atoms)):
        for k in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, k] += h
            minus.positions[i, k] -= h
            fd = -(energy(plus) - energy(minus)) / (2 * h)
            worst = max(worst, abs(fd - float(forces[i, k])))
    return worst


def finite_difference_stress_error(
    potential, atoms: Atoms, components=((0, 0), (1, 2), (0, 1)), h: float = 2e-5
) -> float:
    """Largest |central difference of dE/d strain / V - predicted stress| (eV/A^3)."""

    def energy(candidate: Atoms) -> float:
        return float(potential(potential.batch([candidate]), forces=False, stress=False).energy[0])

    stress = potential(potential.batch([atoms])).stress[0]
    worst = 0.0
    for a, b in components:
        strain = np.zeros((3, 3))
        strain[a, b] = strain[b, a] = h / 2 if a != b else h
        plus, minus = atoms.copy(), atoms.copy()
        plus.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
        minus.set_cell(atoms.cell.array @ (np.eye(3) - strain), scale_atoms=True)
        fd = (energy(plus) - energy(minus)) / (2 * h) / atoms.get_volume()
        worst = max(worst, abs(fd - float(stress[a, b])))
    return worst


SOAP_SMALL = {"cutoff": 4.0, "n_max": 3, "l_max": 3, "atom_sigma": 0.5}


@pytest.fixture(scope="module")
def alloy_fit():
    train = [labelled(s, ("Cu", "Ni"), (2, 1, 1)) for s in range(30)]
    potential = gap_potential(SoapParameters(("Cu", "Ni"), **SOAP_SMALL))
    settings = GapSettings(n_sparse=100, default_sigma=(0.002, 0.02, 0.02))
    return fit_gap(potential, train, settings)


def test_sparse_gp_with_every_environment_equals_the_dense_gp():
    """Energies only: with all training atoms as sparse points DTC is the exact GP."""
    train = [labelled(s) for s in range(5)]
    test = [labelled(s) for s in range(100, 103)]
    sigma = 0.003
    settings = GapSettings(
        n_sparse=20,
        sparse_method="random",
        default_sigma=(sigma, 1.0, 1.0),
        fit_forces=False,
        fit_virials=False,
        sparse_jitter=0.0,
    )
    fit = fit_gap(gap_potential(SoapParameters(("Cu",), **SOAP_SMALL)), train, settings)
    model, potential = fit.potential.model, fit.potential

    def atom_features(structures):
        batch = potential.batch(structures)
        vectors, _ = batch.strained(
            batch.positions, torch.zeros(len(structures), 3, 3, dtype=torch.float64)
        )
        pairs = batch.pairs
        q = potential.descriptor(
            vectors, pairs.center, batch.species[pairs.neighbor], batch.species
        )
        summing = torch.nn.functional.one_hot(batch.structure, len(structures)).T.to(q)
        return q.detach(), summing

    q, a = atom_features(train)
    qs, a_star = atom_features(test)
    kernel = lambda x, y: (x @ y.T) ** 4  # noqa: E731
    k_ee = a @ kernel(q, q) @ a.T
    noise = torch.diag(torch.tensor([sigma**2 * len(s) for s in train], dtype=torch.float64))
    e0 = model.e0[0].item()
    y = torch.tensor([s.get_potential_energy() - e0 * len(s) for s in train], dtype=torch.float64)
    k_star = a_star @ kernel(qs, q) @ a.T
    dense_mean = k_star @ torch.linalg.solve(k_ee + noise, y) + e0 * 4
    prior = a_star @ kernel(qs, qs) @ a_star.T
    dense_var = torch.diag(prior - k_star @ torch.linalg.solve(k_ee + noise, k_star.T))

    prediction = predict_with_variance(fit, test)
    np.testing.assert_allclose(prediction.energy, dense_mean.numpy(), rtol=1e-7)
    np.testing.assert_allclose(prediction.energy_variance, dense_var.numpy(), rtol=1e-5, atol=1e-12)
    assert (dense_var > 1e-8).all()  # the variance is not trivially zero


def test_forces_and_virials_equal_finite_differences(alloy_fit):
    potential = alloy_fit.potential
    atoms = labelled(55, ("Cu", "Ni"), (2, 1, 1))

    out = potential(potential.batch([atoms]))
    worst = finite_difference_force_error(potential, atoms)
    assert worst < 1e-6, worst
    assert out.forces.abs().max() > 0.05  # a fitted model, not a flat one
    # virials to 1e-5 eV (stress times volume); h = 2e-5: the O(h^2) error of h = 1e-4 is
    # of the size of the tolerance
    assert finite_difference_stress_error(potential, atoms) < 1e-5 / atoms.get_volume()


def test_fit_predicts_held_out_emt_forces_far_better_than_zero(alloy_fit):
    test = [labelled(s, ("Cu", "Ni"), (2, 1, 1)) for s in range(200, 206)]
    prediction = predict_with_variance(alloy_fit, test)
    truth = np.concatenate([a.get_forces() for a in test])
    mae = np.abs(prediction.forces - truth).mean()
    # zero forces score 1.0 here; 30 rattled 8-atom alloy cells measured 0.40
    assert mae < 0.5 * np.abs(truth).mean(), mae
    assert (prediction.force_variance > 0).all()


def test_bad_input_is_a_clear_error(alloy_fit):
    potential = alloy_fit.potential
    with pytest.raises(ConfigError, match="Al"):
        potential.batch([bulk("Al", "fcc", a=4.05)])
    train = [labelled(s) for s in range(2)]
    with pytest.raises(ConfigError, match="n_sparse = 50 is larger than the 8"):
        fit_gap(
            gap_potential(SoapParameters(("Cu",), **SOAP_SMALL)), train, GapSettings(n_sparse=50)
        )
    unlabelled = bulk("Cu", "fcc", a=3.6, cubic=True)
    unlabelled.info["source"] = "train.xyz line 9"
    with pytest.raises(ConfigError, match=r"train\.xyz line 9: .*energy and forces"):
        fit_gap(
            gap_potential(SoapParameters(("Cu",), **SOAP_SMALL)),
            [*train, unlabelled],
            GapSettings(n_sparse=4),
        )
    with pytest.raises(ConfigError, match="three sigmas"):
        GapSettings(default_sigma=(0.01, -1.0, 0.1))


def test_saved_gap_loads_with_identical_predictions_and_variances(tmp_path, alloy_fit):
    from matforge.mlip.io import load_potential, save_potential

    path = save_potential(alloy_fit.potential, tmp_path / "gap.pt")
    loaded = load_potential(path)
    test = [labelled(300, ("Cu", "Ni"), (2, 1, 1))]
    before = predict_with_variance(alloy_fit.potential, test)
    after = predict_with_variance(loaded, test)
    np.testing.assert_array_equal(before.forces, after.forces)
    np.testing.assert_array_equal(before.force_variance, after.force_variance)


def test_kernel_rows_reproduce_the_fitted_forces_and_virials(alloy_fit):
    """The rows the fit solves with are the derivatives the potential predicts with."""
    from matforge.mlip.gap import kernel_rows

    potential = alloy_fit.potential
    atoms = labelled(77, ("Cu", "Ni"), (2, 1, 1))
    batch = potential.batch([atoms])
    energy, forces, virials, _ = kernel_rows(potential.descriptor, potential.model, batch)
    alpha = potential.model.alpha
    out = potential(batch)
    e0 = float(potential.model.e0[batch.species].sum())
    assert abs(float(energy[0] @ alpha) + e0 - float(out.energy[0])) < 1e-10
    assert (forces @ alpha - out.forces).abs().max() < 1e-10
    stress = -out.stress[0] * atoms.get_volume()
    voigt = torch.stack([stress[a, b] for a, b in ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))])
    assert (virials[0] @ alpha - voigt).abs().max() < 1e-10

"""GAP's 2-body term: closed-form rows and prior variances equal autograd, joint fit,
finite-difference forces and virials, save/load with a ZBL beside it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from matforge.core.errors import ConfigError
from matforge.mlip.gap import GapSettings, fit_gap, gap_potential, observation_rows, two_body_term
from matforge.mlip.gap_variance import predict_with_variance
from matforge.mlip.potential import PairSum
from matforge.mlip.soap import SoapParameters
from matforge.mlip.two_body import TwoBodyGP, TwoBodySettings
from matforge.mlip.zbl import ZBL

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_gap import (
    SOAP_SMALL,
    finite_difference_force_error,
    finite_difference_stress_error,
    labelled,
)

TWO_BODY = TwoBodySettings(cutoff=4.5, cutoff_transition_width=1.0, delta=0.5, theta=0.7)


@pytest.fixture(scope="module")
def fit_2b():
    train = [labelled(s, ("Cu", "Ni"), (2, 1, 1)) for s in range(20)]
    potential = gap_potential(
        SoapParameters(("Cu", "Ni"), **SOAP_SMALL), ZBL({"Cu": 29, "Ni": 28}, 1.5, 2.45)
    )
    settings = GapSettings(n_sparse=60, default_sigma=(0.002, 0.02, 0.02), two_body=TWO_BODY)
    return fit_gap(potential, train, settings)


def test_the_joint_fit_places_a_two_body_term_beside_the_zbl(fit_2b):
    potential = fit_2b.potential
    assert isinstance(potential.reference, PairSum)
    term = two_body_term(potential)
    # Cu-Cu, Cu-Ni and Ni-Ni pairs all occur: 15 sparse distances each, below the cutoff
    assert term.n_sparse == 45
    assert float(term.sparse_distance.max()) < TWO_BODY.cutoff
    assert term.alpha.abs().max() > 0
    assert potential.cutoff == TWO_BODY.cutoff


def test_rows_reproduce_the_fitted_energies_forces_and_virials(fit_2b):
    potential = fit_2b.potential
    atoms = labelled(71, ("Cu", "Ni"), (2, 1, 1))
    batch = potential.batch([atoms])
    energy, forces, virials = observation_rows(potential, batch)
    term = two_body_term(potential)
    alpha = np.concatenate([potential.model.alpha.numpy(), term.alpha.numpy()])
    zbl = potential.reference.terms[0]
    pairs = batch.pairs
    vectors, _ = batch.strained(batch.positions, batch.zero_strain())
    e_zbl = float(zbl(vectors, pairs.center, batch.species[pairs.neighbor], batch.species).sum())
    out = potential(batch)
    e0 = float(potential.model.e0[batch.species].sum())
    assert abs(energy[0] @ alpha + e0 + e_zbl - float(out.energy[0])) < 1e-9
    reference = potential.reference_output(batch)
    # the rows hold the fitted part only; the ZBL's forces come on top
    fitted_forces = out.forces.numpy() - zbl_forces(potential, batch)
    assert np.abs(forces @ alpha - fitted_forces).max() < 1e-9
    assert reference.forces is not None
    stress = -out.stress[0].numpy() * atoms.get_volume()
    voigt = np.array([stress[a, b] for a, b in ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))])
    assert np.abs(virials[0] @ alpha - (voigt - zbl_virial(potential, batch))).max() < 1e-9


def zbl_forces(potential, batch) -> np.ndarray:
    only = potential.reference.terms[0]
    positions = batch.positions.clone().requires_grad_(True)
    vectors, _ = batch.strained(positions, batch.zero_strain())
    pairs = batch.pairs
    e = only(vectors, pairs.center, batch.species[pairs.neighbor], batch.species).sum()
    return -torch.autograd.grad(e, positions)[0].numpy()


def zbl_virial(potential, batch) -> np.ndarray:
    only = potential.reference.terms[0]
    strain = batch.zero_strain(requires_grad=True)
    vectors, _ = batch.strained(batch.positions, strain)
    pairs = batch.pairs
    e = only(vectors, pairs.center, batch.species[pairs.neighbor], batch.species).sum()
    g = torch.autograd.grad(e, strain)[0][0]
    g = 0.5 * (g + g.T)
    return -np.array([float(g[a, b]) for a, b in ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))])


def test_forces_and_virials_equal_finite_differences(fit_2b):
    potential = fit_2b.potential
    atoms = labelled(56, ("Cu", "Ni"), (2, 1, 1))
    worst = finite_difference_force_error(potential, atoms)
    assert worst < 1e-6, worst
    assert finite_difference_stress_error(potential, atoms, ((0, 0), (0, 1))) < 1e-7


def test_prior_variances_equal_the_kernel_differentiated_by_autograd():
    """var E = K(E, E) and var F_ka = d^2 K(E(x), E(x')) / dx_ka dx'_ka at x = x'."""
    term = TwoBodyGP(("Cu", "Ni"), TWO_BODY)
    atoms = labelled(5, ("Cu", "Ni"), (2, 1, 1))
    from matforge.mlip.batch import AtomsBatch

    batch = AtomsBatch.from_atoms([atoms], term.elements, term.cutoff)
    pairs = batch.pairs

    def pair_set(positions):
        vectors, _ = batch.strained(positions, batch.zero_strain())
        return term._pairs(vectors, pairs.center, batch.species[pairs.neighbor], batch.species)

    def covariance(x, y):
        _, r1, t1, _ = pair_set(x)
        _, r2, t2, _ = pair_set(y)
        return 0.25 * term.kernel(r1, t1, r2, t2)[0].sum()

    x = batch.positions.clone().requires_grad_(True)
    y = batch.positions.clone().requires_grad_(True)
    vectors, _ = batch.strained(batch.positions, batch.zero_strain())
    prior_e = term.prior_energy_variance(batch, vectors)
    assert abs(float(prior_e[0]) - float(covariance(batch.positions, batch.positions))) < 1e-12
    (gx,) = torch.autograd.grad(covariance(x, y), x, create_graph=True)
    expected = torch.zeros_like(batch.positions)
    for i in range(len(atoms)):
        for a in range(3):
            (gy,) = torch.autograd.grad(gx[i, a], y, retain_graph=True)
            expected[i, a] = gy[i, a]
    prior_f = term.prior_force_variance(batch, vectors)
    torch.testing.assert_close(prior_f, expected, rtol=1e-10, atol=1e-12)
    assert expected.min() > 0


def test_variances_include_the_two_body_block(fit_2b):
    test = [labelled(301, ("Cu", "Ni"), (2, 1, 1))]
    prediction = predict_with_variance(fit_2b.potential, test)
    assert (prediction.force_variance > 0).all()
    assert (prediction.energy_variance > 0).all()
    # a 2-body-only observation row (the SOAP block zeroed) has a variance of its own
    potential = fit_2b.potential
    batch = potential.batch(test)
    energy, _, _ = observation_rows(potential, batch)
    m = potential.model.n_sparse
    only_two_body = energy.copy()
    only_two_body[:, :m] = 0.0
    variance = potential.model.variance_of_rows(only_two_body, np.full(1, 1e3))
    assert variance[0] < 1e3


def test_saved_gap_with_two_body_and_zbl_loads_identically(tmp_path, fit_2b):
    from matforge.mlip.io import load_potential, save_potential

    loaded = load_potential(save_potential(fit_2b.potential, tmp_path / "gap2b.pt"))
    test = [labelled(302, ("Cu", "Ni"), (2, 1, 1))]
    before = predict_with_variance(fit_2b.potential, test)
    after = predict_with_variance(loaded, test)
    np.testing.assert_array_equal(before.energy, after.energy)
    np.testing.assert_array_equal(before.force_variance, after.force_variance)


def test_two_body_settings_are_checked():
    with pytest.raises(ConfigError, match="cutoff_transition_width"):
        TwoBodySettings(cutoff=3.0, cutoff_transition_width=3.0)
    with pytest.raises(ConfigError, match="n_sparse"):
        TwoBodySettings(cutoff=3.0, n_sparse=0)
    far = labelled(1)
    far.positions *= 1.0
    with pytest.raises(ConfigError, match="no pair of atoms closer"):
        fit_gap(
            gap_potential(SoapParameters(("Cu",), **SOAP_SMALL)),
            [far],
            GapSettings(
                n_sparse=2, two_body=TwoBodySettings(cutoff=1.0, cutoff_transition_width=0.2)
            ),
        )

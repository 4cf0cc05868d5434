"""Uncertainty measures: maxvol, grades, committees (fast path = generic path)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from matforge.active import (
    CommitteeUncertainty,
    DesignCache,
    LeverageGrade,
    LinearCommitteeUncertainty,
    LinearTrainer,
    MaxVolGrade,
    maxvol,
)
from matforge.active.model import predict


def test_maxvol_finds_a_dominant_submatrix_close_to_the_largest_volume():
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(12, 3))
    chosen = maxvol(matrix, tolerance=1.0 + 1e-12)
    coefficients = matrix @ np.linalg.inv(matrix[chosen])
    assert np.abs(coefficients).max() <= 1.0 + 1e-9  # every row inside the active set's box
    best = max(abs(np.linalg.det(matrix[list(s)])) for s in itertools.combinations(range(12), 3))
    # A dominant submatrix has volume >= max / k^(k/2) (Goreinov et al.); usually = max.
    assert abs(np.linalg.det(matrix[chosen])) >= best / 3**1.5


def test_maxvol_rejects_too_few_rows():
    with pytest.raises(ValueError, match="at least as many rows"):
        maxvol(np.ones((2, 3)))


def test_leverage_equals_the_hat_matrix_formula(frames, make_snap):
    cache = DesignCache(make_snap())
    grade = LeverageGrade(cache, frames["train"], regularization=1e-3)
    rows = np.vstack([r.atoms for r in cache.rows(frames["train"], forces=False)])
    scale = np.sqrt((rows**2).mean(axis=0))
    scale[scale == 0] = 1
    b = rows / scale
    inverse = np.linalg.inv(b.T @ b + 1e-6 * np.eye(b.shape[1]))
    new = np.vstack([r.atoms for r in cache.rows(frames["far"], forces=False)]) / scale
    expected = np.einsum("ik,kl,il->i", new, inverse, new)
    got = np.concatenate(grade.estimate(frames["far"]).per_atom)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # Training rows have leverage <= 1 and their sum is the rank of the rows (trace of H).
    train = np.concatenate(grade.estimate(frames["train"]).per_atom)
    assert train.max() <= 1.0
    assert train.sum() == pytest.approx(
        np.linalg.matrix_rank(b, tol=1e-6 * np.abs(b).max()), abs=0.5
    )


@pytest.mark.parametrize("grade_class", [MaxVolGrade, LeverageGrade])
def test_grades_separate_extrapolation_and_drop_once_a_structure_is_added(
    frames, grade_class, make_snap
):
    cache = DesignCache(make_snap())
    grade = grade_class(cache, frames["train"])
    near = grade.estimate(frames["near"]).per_structure
    far = grade.estimate(frames["far"]).per_structure
    assert far.min() > 3 * near.max()
    if grade_class is MaxVolGrade:
        assert grade.estimate(frames["train"]).per_structure.max() <= 1.01 + 1e-9
    updated = grade.with_added(frames["far"][:1])
    after = updated.estimate(frames["far"][:1]).per_structure[0]
    assert after <= (1.01 + 1e-9 if grade_class is MaxVolGrade else 1.0)
    assert after < far[0]


def test_linear_committee_equals_running_the_member_potentials(frames, make_snap):
    potential = make_snap()
    trainer = LinearTrainer(potential)
    members = trainer.fit_committee(frames["train"], 4, np.random.default_rng(0))
    fast = LinearCommitteeUncertainty(trainer.cache, members).estimate(frames["far"])
    generic = CommitteeUncertainty([trainer.with_coefficients(c) for c in members]).estimate(
        frames["far"]
    )
    np.testing.assert_allclose(fast.per_structure, generic.per_structure, rtol=1e-8)
    np.testing.assert_allclose(
        fast.extra["energy_std_per_atom"], generic.extra["energy_std_per_atom"], rtol=1e-8
    )
    for a, b in zip(fast.per_atom, generic.per_atom, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)


def test_committee_disagrees_more_out_of_distribution_and_not_at_all_when_identical(
    frames, make_snap
):
    trainer = LinearTrainer(make_snap())
    members = trainer.fit_committee(frames["train"], 8, np.random.default_rng(1))
    committee = LinearCommitteeUncertainty(trainer.cache, members)
    assert (
        committee.estimate(frames["far"]).per_structure.min()
        > committee.estimate(frames["near"]).per_structure.max()
    )
    same = LinearCommitteeUncertainty(trainer.cache, np.stack([members[0], members[0]]))
    assert same.estimate(frames["far"]).per_structure.max() == pytest.approx(0.0, abs=1e-12)


def test_trainer_reproduces_labels_of_its_own_model(frames, make_snap, make_frames):
    """Labels made by a SNAP are fitted back exactly (energies, forces, with stresses)."""
    truth = make_snap()
    rng = np.random.default_rng(3)
    coefficients = rng.normal(0, 0.01, truth.model.coefficients.shape[1])
    coefficients[0] = -3.0
    trainer = LinearTrainer(truth, alpha=0.0)
    truth = trainer.with_coefficients(coefficients)
    structures = make_frames(3, 0.1, 5, labelled=False)
    from ase.calculators.singlepoint import SinglePointCalculator

    out = truth(truth.batch(structures))
    for k, atoms in enumerate(structures):
        atoms.calc = SinglePointCalculator(
            atoms, energy=float(out.energy[k]), forces=out.forces[32 * k : 32 * (k + 1)].numpy()
        )
    fitted = trainer.solve(trainer.system(structures))
    energies, forces = predict(trainer.cache.rows(structures), fitted)
    for e, f, atoms in zip(energies, forces, structures, strict=True):
        assert e[0] == pytest.approx(atoms.get_potential_energy(), abs=1e-8)
        np.testing.assert_allclose(f[0], atoms.get_forces(), atol=1e-8)

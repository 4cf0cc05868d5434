"""Statistics against porespy on the same images (porespy's generators.blobs as an
independent source of test structures)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matforge.microstructure.statistics import (
    chord_lengths,
    percolates,
    radial_average,
    specific_surface,
    two_point_correlation,
)

porespy = pytest.importorskip("porespy", reason="porespy (extra 'reference') is the reference")


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    np.random.seed(0)  # blobs draws from numpy's global RNG
    return porespy.generators.blobs(shape=[60, 72], porosity=0.4, blobiness=1.5, seed=0)


def test_two_point_correlation_equals_porespy(blobs):
    reference = porespy.metrics.two_point_correlation(blobs, bins=100)
    s2 = two_point_correlation(torch.tensor(blobs, dtype=torch.float64)[None], periodic=False)
    centres, ours = radial_average(s2, centred=True)
    assert np.allclose(centres.numpy(), reference.bin_centers)
    relative = np.abs(ours[0].numpy() - reference.probability_scaled) / reference.probability_scaled
    assert relative.max() < 1e-6


def test_periodic_correlation_limits_and_brute_force():
    generator = np.random.default_rng(1)
    image = (generator.random((3, 9, 7)) < 0.3).astype(float)
    s2 = two_point_correlation(torch.tensor(image)).numpy()
    assert np.allclose(s2[:, 0, 0], image.reshape(3, -1).mean(1))  # S2(0) = phi
    brute = np.mean(image[0] * np.roll(image[0], (-2, -3), axis=(0, 1)))
    assert abs(s2[0, 2, 3] - brute) < 1e-12


@pytest.mark.parametrize("axis", [0, 1])
def test_chord_lengths_equal_porespy(blobs, axis):
    chords = porespy.filters.apply_chords(blobs, spacing=1, axis=axis, trim_edges=True)
    reference = np.sort(porespy.metrics.chord_counts(chords))
    # porespy draws chords on every other line and its border clearing also drops the
    # chords of the first and last drawn line; the same lines here:
    lines = np.moveaxis(blobs, axis, 0)[:, ::2][:, 1:-1]
    ours = np.sort(chord_lengths(lines, axis=0))
    assert np.array_equal(ours, reference)


def test_periodic_chords_join_across_the_boundary():
    line = np.array([[1, 1, 0, 0, 1, 0, 1, 1, 1]]).T  # wraps: 3 + 2 = 5, and 1
    assert sorted(chord_lengths(line, axis=0, periodic=True)) == [1, 5]
    assert sorted(chord_lengths(line, axis=0)) == [1]


def test_specific_surface_and_percolation():
    square = np.zeros((1, 10, 10))
    square[0, 2:6, 3:8] = 1.0  # perimeter 2 * (4 + 5) faces
    assert float(specific_surface(torch.tensor(square))[0]) == pytest.approx(18 / 100)
    stripe = np.zeros((8, 8))
    stripe[:, 3] = 1
    assert percolates(stripe, axis=0)
    assert not percolates(stripe, axis=1)
    assert percolates(stripe, axis=1, phase=0) is False
    assert percolates(stripe, axis=0, phase=0)

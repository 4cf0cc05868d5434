"""The ensemble helper: bootstrap resamples and member statistics, NumPy and torch alike."""

import numpy as np
import pytest
import torch

from matforge.core.ensemble import bootstrap_counts, bootstrap_indices, mixture_moments, spread


def test_bootstrap_resamples_with_replacement():
    rng = np.random.default_rng(0)
    indices = bootstrap_indices(rng, 1000)
    assert indices.min() >= 0
    assert indices.max() < 1000
    # About 1 - 1/e of the units appear in a resample of n from n.
    assert len(np.unique(indices)) / 1000 == pytest.approx(1 - np.exp(-1), abs=0.03)
    counts = bootstrap_counts(np.random.default_rng(0), 1000)
    assert counts.sum() == 1000
    np.testing.assert_array_equal(counts, np.bincount(indices, minlength=1000))


def test_spread_matches_numpy_and_torch_for_each_ddof():
    values = np.random.default_rng(1).normal(size=(5, 3, 2))
    for ddof in (0, 1):
        mean, std = spread(values, ddof=ddof)
        np.testing.assert_allclose(mean, values.mean(axis=0))
        np.testing.assert_allclose(std, values.std(axis=0, ddof=ddof))
        t_mean, t_std = spread(torch.from_numpy(values), ddof=ddof)
        np.testing.assert_allclose(t_std.numpy(), std)
        np.testing.assert_allclose(t_mean.numpy(), mean)
    one_mean, one_std = spread(values[:1])
    np.testing.assert_array_equal(one_std, 0 * values[0])
    np.testing.assert_array_equal(one_mean, values[0])


def test_mixture_variance_is_mean_variance_plus_variance_of_means():
    rng = np.random.default_rng(2)
    means, variances = rng.normal(size=(4, 10)), rng.uniform(0.1, 1.0, size=(4, 10))
    mean, variance = mixture_moments(means, variances)
    # Monte Carlo of the mixture at one output.
    draws = rng.normal(means[:, 0], np.sqrt(variances[:, 0]), size=(200_000, 4)).reshape(-1)
    assert mean[0] == pytest.approx(draws.mean(), abs=0.01)
    assert variance[0] == pytest.approx(draws.var(), rel=0.01)
    np.testing.assert_allclose(variance, variances.mean(0) + means.var(0))

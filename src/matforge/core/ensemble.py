"""Ensembles: the resampling of members and the statistics of their predictions, once.

Four parts build ensembles (deep-ensemble surrogates in `design`, chain ensembles in
`psp`, bootstrap identifications in `pinn`, committees of potentials in `active`); they
differ in what a member is, not in how members are resampled or combined:

* `bootstrap_indices(rng, n)`: one resample with replacement (indices);
* `bootstrap_counts(rng, n)`: the same as multiplicities of each of the n units (row
  weights for a weighted fit);
* `spread(members, ddof)`: mean and standard deviation over the members axis (0), for
  NumPy arrays and torch tensors alike;
* `mixture_moments(means, variances)`: mean and variance of the equal-weight mixture of
  Gaussian members (law of total variance: mean of the variances plus the variance of
  the means), what a deep ensemble predicts.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

Array = TypeVar("Array", np.ndarray, Any)


def bootstrap_indices(rng: np.random.Generator, n: int) -> np.ndarray:
    """n indices drawn uniformly with replacement from range(n)."""
    return rng.integers(0, n, n)


def bootstrap_counts(rng: np.random.Generator, n: int) -> np.ndarray:
    """How often each of n units is drawn in one bootstrap resample (sums to n)."""
    return np.bincount(bootstrap_indices(rng, n), minlength=n)


def spread(members: Array, *, ddof: int = 1) -> tuple[Array, Array]:
    """(mean, std) over axis 0; std is 0 for a single member (no spread to measure)."""
    count = members.shape[0]
    mean = members.mean(0)
    if count <= ddof:
        return mean, mean * 0
    variance = ((members - mean) ** 2).sum(0) / (count - ddof)
    return mean, variance**0.5


def mixture_moments(means: Array, variances: Array) -> tuple[Array, Array]:
    """Mean and variance over axis 0 of an equal-weight mixture of Gaussians."""
    mean = means.mean(0)
    return mean, variances.mean(0) + ((means - mean) ** 2).mean(0)

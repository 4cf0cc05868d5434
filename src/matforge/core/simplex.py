"""The bounded simplex {x : sum x = total, low <= x <= high} that alloy compositions live on.

Shared by the gradient-based CALPHAD design and the Bayesian-optimization design space:
an exact Euclidean projection onto the set and uniform sampling from it.
"""

from __future__ import annotations

import torch

from matforge.core.errors import ConfigError


def check_bounds(low: torch.Tensor, high: torch.Tensor, total: float, names: list[str]) -> None:
    """Raise ConfigError, naming elements and sums, if no x in [low, high] sums to `total`."""
    for name, lo, hi in zip(names, low.tolist(), high.tolist(), strict=True):
        if lo > hi:
            raise ConfigError(f"bounds of {name}: lower {lo:g} is above upper {hi:g}")
        if lo < 0 or hi > 1:
            raise ConfigError(f"bounds of {name}: [{lo:g}, {hi:g}] is not within [0, 1]")
    if float(low.sum()) > total + 1e-12 or float(high.sum()) < total - 1e-12:
        raise ConfigError(
            f"bounds {dict(zip(names, zip(low.tolist(), high.tolist(), strict=True), strict=True))}"
            f" leave no composition whose fractions sum to {total:g}: lower bounds sum to "
            f"{float(low.sum()):.4g}, upper bounds sum to {float(high.sum()):.4g}"
        )


def project(
    x: torch.Tensor, limits: torch.Tensor, total: float = 1.0, iterations: int = 60
) -> torch.Tensor:
    """Euclidean projection of rows of x onto {sum x = total, low <= x <= high}.

    limits: (d, 2) lower and upper bounds. The projection is clamp(x - lambda, low, high)
    with the scalar lambda that meets the sum, found by bisection (the sum is monotone in
    lambda).
    """
    low, high = limits[:, 0], limits[:, 1]
    lam_low = (x - high).amin(dim=1) - 1.0
    lam_high = (x - low).amax(dim=1) + 1.0
    for _ in range(iterations):
        lam = 0.5 * (lam_low + lam_high)
        too_much = (x - lam[:, None]).clamp(min=low, max=high).sum(dim=1) > total
        lam_low = torch.where(too_much, lam, lam_low)
        lam_high = torch.where(too_much, lam_high, lam)
    return (x - 0.5 * (lam_low + lam_high)[:, None]).clamp(min=low, max=high)


def sample_uniform(
    n: int,
    limits: torch.Tensor,
    total: float = 1.0,
    *,
    generator: torch.Generator | None = None,
    max_draws: int = 1000,
) -> torch.Tensor:
    """n points uniformly distributed on {sum x = total, low <= x <= high}, shape (n, d).

    x = low + (total - sum low) * Dirichlet(1, ..., 1) is uniform on the simplex shifted
    to the lower bounds; draws above an upper bound are rejected (exact, not projected,
    so the distribution stays uniform).
    """
    low, high = limits[:, 0], limits[:, 1]
    slack = total - float(low.sum())
    free = high > low  # elements with equal bounds are fixed and take no share
    kept: list[torch.Tensor] = []
    count = 0
    for _ in range(max_draws):
        draws = torch.zeros(max(2 * n, 64), limits.shape[0], dtype=limits.dtype)
        draws[:, free] = torch.empty(
            draws.shape[0], int(free.sum()), dtype=limits.dtype
        ).exponential_(generator=generator)
        x = low + slack * draws / draws.sum(dim=1, keepdim=True).clamp(min=1e-300)
        inside = x[(x <= high + 1e-15).all(dim=1)]
        kept.append(inside)
        count += inside.shape[0]
        if count >= n:
            return torch.cat(kept)[:n].clamp(min=low, max=high)
    raise ConfigError(
        f"the bounded simplex is too thin to sample ({count} of {n} points after "
        f"{max_draws} batches); widen the bounds"
    )

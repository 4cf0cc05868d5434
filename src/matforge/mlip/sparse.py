"""Choosing representative (sparse) points among many feature vectors.

- `cur`: gap_fit's `cur_points` (QUIP's `cur_decomposition`, after Mahoney and Drineas,
  PNAS 106 (2009) 697): the leverage of each row in the top-k right singular subspace of
  the feature matrix, k = half its numerical rank, scaled to p_i = min(1, c lev_i / k)
  for c requested points; each row draws u_i ~ U(0, 1) and the c rows of smallest
  u_i - p_i are taken (rows with p_i = 1 are always in, the rest by a leverage-weighted
  lottery). Seeded, so a fit is repeatable.
- `cur_top`: the c rows of highest leverage (deterministic; favours outliers).
- `fps`: farthest-point sampling in Euclidean feature distance, from the row of largest norm.
- `random`: a seeded draw without replacement.
"""

from __future__ import annotations

import numpy as np
import torch

from matforge.core.errors import ConfigError

METHODS = ("cur", "cur_top", "fps", "random")
# QUIP's TOL_SVD: singular values at or below it do not count toward the rank
SVD_TOLERANCE = 1e-13


def select_sparse(
    features: torch.Tensor, count: int, method: str = "cur", *, seed: int = 0
) -> torch.Tensor:
    """Indices (count,) of representative rows of `features` (N, D), sorted."""
    n = len(features)
    if method not in METHODS:
        raise ConfigError(f"sparse_method must be one of {METHODS}, got {method!r}")
    if count > n:
        raise ConfigError(
            f"n_sparse = {count} is larger than the {n} environments available; "
            f"lower n_sparse or add training data"
        )
    if count < 1:
        raise ConfigError(f"n_sparse must be >= 1, got {count}")
    if method == "random":
        rng = np.random.default_rng(seed)
        return torch.from_numpy(np.sort(rng.choice(n, count, replace=False)))
    if method == "fps":
        return farthest_points(features, count)
    if method == "cur_top":
        return leverage_points(features, count)
    return cur_points(features, count, seed=seed)


def _leverage(features: torch.Tensor, rank: int | None) -> tuple[torch.Tensor, int]:
    u, s, _ = torch.linalg.svd(features, full_matrices=False)
    if rank is None:
        rank = int((s > SVD_TOLERANCE).sum()) // 2
    rank = max(1, min(rank, len(s)))
    return (u[:, :rank] ** 2).sum(dim=1), rank


def cur_points(
    features: torch.Tensor, count: int, *, seed: int = 0, rank: int | None = None
) -> torch.Tensor:
    """gap_fit's randomized CUR choice of `count` rows (see the module docstring)."""
    leverage, rank = _leverage(features, rank)
    p = (leverage * count / rank).clamp(max=1.0).cpu().numpy()
    u = np.random.default_rng(seed).uniform(size=len(p))
    return torch.from_numpy(np.sort(np.argsort(u - p, kind="stable")[:count]))


def leverage_points(features: torch.Tensor, count: int) -> torch.Tensor:
    u, s, _ = torch.linalg.svd(features, full_matrices=False)
    rank = int((s > s[0] * 1e-10).sum()) if len(s) else 0
    k = max(1, min(count, rank))
    scores = (u[:, :k] ** 2).sum(dim=1)
    return torch.sort(torch.argsort(scores, descending=True, stable=True)[:count]).values


def farthest_points(features: torch.Tensor, count: int) -> torch.Tensor:
    chosen = [int(features.norm(dim=1).argmax())]
    distance = (features - features[chosen[0]]).norm(dim=1)
    for _ in range(count - 1):
        nxt = int(distance.argmax())
        chosen.append(nxt)
        distance = torch.minimum(distance, (features - features[nxt]).norm(dim=1))
    return torch.sort(torch.tensor(chosen)).values

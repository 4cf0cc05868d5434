"""Choosing representative (sparse) points among many feature vectors.

`cur` ranks rows by their statistical leverage in the top singular subspace of the feature
matrix (the CUR decomposition's row scores, which gap_fit's `cur_points` samples from; here
the highest scores are taken, so the choice is deterministic); `fps` is farthest-point
sampling in Euclidean feature distance, started from the row of largest norm; `random` is a
seeded draw without replacement.
"""

from __future__ import annotations

import numpy as np
import torch

from matforge.core.errors import ConfigError

METHODS = ("cur", "fps", "random")


def select_sparse(
    features: torch.Tensor, count: int, method: str = "cur", *, seed: int = 0
) -> torch.Tensor:
    """Indices (count,) of representative rows of `features` (N, D)."""
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
    return leverage_points(features, count)


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

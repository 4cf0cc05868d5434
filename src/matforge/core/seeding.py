"""One seed for every random number generator matforge uses."""

from __future__ import annotations

import random

import numpy as np

from matforge.core.errors import MatforgeError

_MAX_SEED = 2**32 - 1


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python's `random`, numpy's global RNG and torch; return a fresh numpy Generator.

    Library code should draw from the returned Generator (or a `torch.Generator` seeded from
    it) rather than from global state; the global seeds cover third-party code that does not
    take a generator argument.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise MatforgeError(f"seed must be an integer, got {seed!r}")
    if not 0 <= int(seed) <= _MAX_SEED:
        raise MatforgeError(f"seed must lie in [0, {_MAX_SEED}], got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    import torch

    torch.manual_seed(seed)
    return np.random.default_rng(seed)

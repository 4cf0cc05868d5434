from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from matforge.core.errors import MatforgeError
from matforge.core.seeding import seed_everything


def _draw() -> tuple:
    return random.random(), np.random.rand(), torch.rand(1).item()


def test_one_seed_drives_every_generator() -> None:
    rng_a = seed_everything(123)
    first = (*_draw(), rng_a.random())
    rng_b = seed_everything(123)
    second = (*_draw(), rng_b.random())
    assert first == second
    seed_everything(124)
    assert _draw() != first[:3]


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "7", True])
def test_rejects_bad_seeds(seed: object) -> None:
    with pytest.raises(MatforgeError, match="seed must"):
        seed_everything(seed)  # type: ignore[arg-type]

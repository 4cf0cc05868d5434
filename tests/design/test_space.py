"""The design space: compositions on the simplex within per-element bounds."""

from __future__ import annotations

import pytest
import torch

from matforge.core.errors import CompositionError, ConfigError
from matforge.design import DesignSpace

CANTOR = ["Co", "Cr", "Fe", "Mn", "Ni"]


def cantor_space() -> DesignSpace:
    return DesignSpace.from_bounds(CANTOR, default=(0.05, 0.35))


def test_bounds_that_cannot_sum_to_one_are_rejected_by_name() -> None:
    with pytest.raises(ConfigError, match=r"lower bounds sum to 1\.25"):
        DesignSpace.from_bounds(CANTOR, default=(0.25, 0.35))
    with pytest.raises(ConfigError, match=r"upper bounds sum to 0\.75"):
        DesignSpace.from_bounds(CANTOR, default=(0.0, 0.15))
    with pytest.raises(ConfigError, match=r"bounds of Cr: lower 0\.3 is above upper 0\.2"):
        DesignSpace.from_bounds(CANTOR, {"Cr": (0.3, 0.2)})
    with pytest.raises(ConfigError, match="'Al' is not one of the elements"):
        DesignSpace.from_bounds(CANTOR, {"Al": (0.0, 0.1)})
    with pytest.raises(ConfigError, match="sum to 1"):  # fixed 0.9 leaves 0.1 < 4 x 0.05
        DesignSpace.from_bounds(CANTOR, {}, fixed={"Ni": 0.9}, default=(0.05, 0.35))
    with pytest.raises(CompositionError, match="unknown element 'Xx'"):
        DesignSpace.from_bounds(["Co", "Xx"])


def test_samples_are_uniform_on_the_bounded_simplex() -> None:
    space = cantor_space()
    x = space.sample(4000, generator=torch.Generator().manual_seed(0))
    assert bool(space.contains(x).all())
    # Symmetric bounds: every element has mean 0.2 (standard error ~0.0012).
    torch.testing.assert_close(
        x.mean(dim=0), torch.full((5,), 0.2, dtype=torch.float64), atol=6e-3, rtol=0
    )
    # Unbounded 3-simplex: each marginal is Beta(1, 2), CDF 1 - (1 - t)^2.
    free = DesignSpace.from_bounds(["Al", "Co", "Ni"]).sample(
        4000, generator=torch.Generator().manual_seed(1)
    )
    for t in (0.1, 0.3, 0.6):
        empirical = float((free[:, 0] <= t).double().mean())
        assert abs(empirical - (1 - (1 - t) ** 2)) < 0.03


def test_projection_is_the_nearest_point_of_the_space() -> None:
    space = cantor_space()
    generator = torch.Generator().manual_seed(2)
    x = torch.rand(200, 5, dtype=torch.float64, generator=generator)
    p = space.project(x)
    assert bool(space.contains(p).all())
    torch.testing.assert_close(space.project(p), p)
    # No sampled point of the space is closer to x than its projection.
    others = space.sample(3000, generator=generator)
    nearest_sample = torch.cdist(x, others).min(dim=1).values
    assert bool(((x - p).norm(dim=1) <= nearest_sample + 1e-12).all())


def test_fixed_elements_enter_the_equality_constraint() -> None:
    space = DesignSpace.from_bounds(
        ["Al", "Co", "Cr", "Ni"], {"Al": (0.0, 0.3)}, fixed={"Co": 0.25}
    )
    assert space.free == (0, 2, 3)
    ((indices, coefficients, rhs),) = space.equality_constraints()
    assert indices.tolist() == [0, 2, 3]
    assert coefficients.tolist() == [1.0, 1.0, 1.0]
    assert rhs == pytest.approx(0.75)
    x = space.sample(50, generator=torch.Generator().manual_seed(3))
    assert bool((x[:, 1] == 0.25).all())
    assert bool(space.contains(x).all())


def test_botorch_optimizer_keeps_proposals_on_the_simplex() -> None:
    pytest.importorskip("botorch", reason="needs the 'bo' extra (botorch)")
    from botorch.optim import optimize_acqf

    space = cantor_space()
    target = torch.tensor([0.35, 0.05, 0.2, 0.05, 0.35], dtype=torch.float64)

    def closeness(x: torch.Tensor) -> torch.Tensor:  # (b, q, d) -> (b,)
        return -((x - target) ** 2).sum(dim=-1).sum(dim=-1)

    proposals, _ = optimize_acqf(
        closeness,
        bounds=space.botorch_bounds(),
        q=3,
        num_restarts=4,
        raw_samples=64,
        equality_constraints=space.equality_constraints(),
    )
    assert bool(space.contains(proposals, tol=1e-6).all())
    torch.testing.assert_close(proposals[0], target, atol=1e-3, rtol=0)

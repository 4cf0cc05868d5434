"""The PINN toolkit: geometry and sampling, composable loss terms and their weights, the
training loop."""

from __future__ import annotations

import pytest
import torch

from matforge.pinn.losses import (
    CompositeLoss,
    FixedWeights,
    GradientNormWeights,
    LossTerm,
    interface_jump,
)
from matforge.pinn.sampling import Box, fraction_in, resample_by_residual
from matforge.pinn.training import train


def test_box_grid_random_and_faces():
    box = Box((0.0, -1.0), (2.0, 1.0))
    grid = box.grid((3, 5))
    assert grid.shape == (15, 2)
    assert grid[:, 0].unique().tolist() == [0.0, 1.0, 2.0]
    inside = box.random(1000, torch.Generator().manual_seed(0))
    assert (inside[:, 0] >= 0).all()
    assert (inside[:, 0] <= 2).all()
    assert (inside[:, 1] >= -1).all()
    assert (inside[:, 1] <= 1).all()
    face = box.face(1, "high", 10)
    assert (face[:, 1] == 1.0).all()
    with pytest.raises(ValueError, match="exceed"):
        Box((0.0,), (0.0,))
    with pytest.raises(ValueError, match="side"):
        box.face(0, "top", 3)


def test_residual_based_resampling_follows_the_residual():
    """A residual peaked at x = 0.8 (width 0.05): uniform draws put 20% of the points in
    [0.7, 0.9], RAD with a small floor most of them; a large floor is nearly uniform."""
    box = Box((0.0,), (1.0,))
    pool = box.random(20000, torch.Generator().manual_seed(0))

    def peak(p: torch.Tensor) -> torch.Tensor:
        return torch.exp(-(((p[:, 0] - 0.8) / 0.05) ** 2))

    near = resample_by_residual(
        pool, peak, 1000, floor=0.1, generator=torch.Generator().manual_seed(1)
    )
    assert near.shape == (1000, 1)
    assert fraction_in(near, 0.7, 0.9) > 0.6
    flat = resample_by_residual(
        pool, peak, 1000, floor=100.0, generator=torch.Generator().manual_seed(1)
    )
    assert abs(fraction_in(flat, 0.7, 0.9) - 0.2) < 0.05
    with pytest.raises(ValueError, match="cannot draw"):
        resample_by_residual(pool[:10], peak, 11)


def test_gradient_norm_weights_balance_the_terms():
    """The data term's gradient is 100x the PDE term's: with no smoothing one update sets
    its weight to 1/100, so that both pull equally."""
    theta = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    pde = LossTerm("pde", "pde", lambda: theta * 1.0)
    data = LossTerm("data", "data", lambda: theta * 10.0, weight=1.0)  # (10 theta)^2: 100x
    GradientNormWeights(smoothing=0.0).update([pde, data], [theta])
    assert data.weight == pytest.approx(0.01, rel=1e-12)
    assert pde.weight == 1.0
    smoothed = LossTerm("data", "data", lambda: theta * 10.0, weight=1.0)
    GradientNormWeights(smoothing=0.5).update([pde, smoothed], [theta])
    assert smoothed.weight == pytest.approx(0.5 * 1.0 + 0.5 * 0.01)
    with pytest.raises(ValueError, match="pde"):
        GradientNormWeights().update([data], [theta])


def test_interface_jump_sees_a_step_and_not_a_kink():
    points = lambda: torch.tensor([[0.2, 0.5], [0.7, 0.5]], dtype=torch.float64)  # noqa: E731
    normal = torch.tensor([0.0, 1.0], dtype=torch.float64)
    kink = interface_jump(lambda p: (p[:, 1] - 0.5).abs(), points, normal, 1e-3)
    step = interface_jump(lambda p: (p[:, 1] > 0.5).double(), points, normal, 1e-3)
    assert kink().abs().max() < 1e-12
    assert torch.allclose(step(), torch.ones(2, dtype=torch.float64))


def test_composite_loss_and_training_loop():
    """Adam then L-BFGS minimize a weighted sum; the hooks run in order."""
    theta = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    target = torch.tensor([3.0, -1.0], dtype=torch.float64)
    loss = CompositeLoss(
        [
            LossTerm("pde", "pde", lambda: theta - target),
            LossTerm("boundary", "dirichlet", lambda: theta[:1] - 3.0, weight=10.0),
        ],
        FixedWeights(),
    )
    calls: list[object] = []
    history = train(
        [theta],
        loss,
        adam_steps=300,
        learning_rate=0.05,
        lbfgs_steps=50,
        before_step=calls.append,
        before_lbfgs=lambda: calls.append("lbfgs"),
    )
    assert calls[:3] == [0, 1, 2]
    assert calls[-1] == "lbfgs"
    assert len(calls) == 301
    assert torch.allclose(theta.detach(), target, atol=1e-8)
    assert history.total[-1] < 1e-14
    assert set(history.terms) == {"pde", "boundary"}
    assert history.steps[0] == 0
    with pytest.raises(ValueError, match="unique"):
        CompositeLoss([loss.terms[0], loss.terms[0]], FixedWeights())

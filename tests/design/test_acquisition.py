"""Acquisition values against Monte Carlo estimates of the quantities they stand for."""

import math

import pytest
import torch
from botorch.models import SingleTaskGP

from matforge.design.acquisition import (
    LogExpectedImprovementTimesFeasibility,
    PenalizedUpperConfidenceBound,
    RandomFeasible,
    propose_batch,
    refine_proposal,
)
from matforge.design.space import DesignSpace


class StepFeasibility:
    """PoF that depends on x[0]; second-phase fraction linear beyond 0.5."""

    def probability(self, x):
        return torch.sigmoid((0.5 - x[..., 0]) * 20)

    def second_phase_fraction(self, x):
        return (x[..., 0] - 0.5).clamp(min=0)

    def soft_probability(self, x):
        return torch.exp(-(x[..., 0] - 0.5).clamp(min=0) / 0.1)

    def soft_second_phase_fraction(self, x):
        return self.second_phase_fraction(x)


@pytest.fixture(scope="module")
def model():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(12, 2, generator=g, dtype=torch.float64)
    y = torch.sin(6 * x[:, :1]) + x[:, 1:] ** 2
    gp = SingleTaskGP(x, y)
    gp.eval()
    return gp


def test_log_ei_times_pof_matches_monte_carlo(model):
    feasibility = StepFeasibility()
    best = 0.5
    acq = LogExpectedImprovementTimesFeasibility(model, best, feasibility)
    x = torch.tensor([[0.2, 0.3], [0.45, 0.9], [0.7, 0.1]], dtype=torch.float64)
    value = acq(x[:, None, :]).exp()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        post = model.posterior(x)
        mean, std = post.mean.squeeze(-1), post.variance.sqrt().squeeze(-1)
    n = 400_000
    f = mean + std * torch.randn(n, 3, generator=g, dtype=torch.float64)
    feasible = torch.rand(n, 3, generator=g, dtype=torch.float64) < feasibility.probability(x)
    mc = ((f - best).clamp(min=0) * feasible).mean(0)
    stderr = ((f - best).clamp(min=0) * feasible).std(0) / math.sqrt(n)
    assert torch.all((value - mc).abs() <= 4 * stderr + 1e-12), (value, mc, stderr)


def test_log_ei_times_pof_stays_finite_where_infeasible(model):
    class Never:
        def probability(self, x):
            return torch.zeros(x.shape[:-1], dtype=x.dtype)

    acq = LogExpectedImprovementTimesFeasibility(model, 0.0, Never())
    values = acq(torch.rand(5, 1, 2, dtype=torch.float64))
    assert torch.isfinite(values).all()


def test_penalized_ucb_is_mean_plus_bonus_minus_penalty(model):
    acq = PenalizedUpperConfidenceBound(model, StepFeasibility(), beta=4.0, weight=2.0, scale=3.0)
    x = torch.tensor([[0.8, 0.2]], dtype=torch.float64)
    with torch.no_grad():
        post = model.posterior(x)
    expected = post.mean.item() + 2.0 * post.variance.sqrt().item() - 2.0 * 3.0 * 0.3
    assert acq(x[:, None, :]).item() == pytest.approx(expected, rel=1e-10)


def test_random_feasible_only_scores_predicted_feasible_points(model):
    acq = RandomFeasible(model, StepFeasibility(), torch.Generator().manual_seed(0))
    x = torch.tensor([[0.1, 0.5], [0.9, 0.5]], dtype=torch.float64)
    values = acq(x[:, None, :])
    assert torch.isfinite(values[0])
    assert values[1] == -torch.inf


def test_batch_proposals_are_distinct_and_spread_by_the_believer(model):
    """Six near-copies of the EI maximizer: plain top-4 takes four of them; the believer
    (conditioned on its own mean at each pick, which then is the incumbent) takes one."""
    import copy

    from botorch.acquisition import LogExpectedImprovement

    model = copy.deepcopy(model)
    model.likelihood.noise = 1e-6  # near-exact observations: a believed pick is "known"

    best_f = float(model.train_targets.max())
    choices = torch.rand(200, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with torch.no_grad():
        scores = LogExpectedImprovement(model, best_f=best_f)(choices[:, None, :])
    peak = choices[int(scores.argmax())]
    noise = torch.randn(6, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    choices = torch.cat([choices, peak + 1e-3 * noise])

    def build(m, believed=()):
        return LogExpectedImprovement(m, best_f=max([best_f, *(v for _, v in believed)]))

    batch = propose_batch(build, model, choices, 4)
    assert batch.shape == (4, 2)
    assert len({tuple(r.tolist()) for r in batch}) == 4
    with torch.no_grad():
        scores = build(model)(choices[:, None, :])
    top = choices[scores.argsort(descending=True)[:4]]

    def near_peak(points):
        return int(((points - peak).norm(dim=1) < 0.01).sum())

    assert near_peak(top) == 4
    assert near_peak(batch) == 1


def test_smooth_ei_pof_gradient_carries_the_feasibility_term(model):
    from botorch.acquisition import LogExpectedImprovement

    x = torch.tensor([[[0.7, 0.4]]], dtype=torch.float64, requires_grad=True)
    smooth = LogExpectedImprovementTimesFeasibility(model, 0.5, StepFeasibility(), smooth=True)
    (total,) = torch.autograd.grad(smooth(x).sum(), x)
    (log_ei,) = torch.autograd.grad(LogExpectedImprovement(model, best_f=0.5)(x).sum(), x)
    # log soft PoF = -(x0 - 0.5) / 0.1 beyond 0.5: d/dx0 = -10, d/dx1 = 0.
    assert (total - log_ei).squeeze().tolist() == pytest.approx([-10.0, 0.0], abs=1e-9)
    hard = LogExpectedImprovementTimesFeasibility(model, 0.5, StepFeasibility())
    (no_pof,) = torch.autograd.grad(hard(x).sum(), x)
    assert torch.allclose(no_pof, log_ei)  # the hard PoF enters without a gradient


def test_refined_point_is_on_the_simplex_within_bounds_and_scores_higher():
    space = DesignSpace.from_bounds(("Co", "Cr", "Ni"), default=(0.1, 0.6))
    g = torch.Generator().manual_seed(4)
    x = space.sample(10, generator=g)
    y = (3 * x[:, 1] - 2 * (x[:, 0] - 0.3) ** 2)[:, None]
    gp = SingleTaskGP(x, y)
    gp.eval()
    acq = PenalizedUpperConfidenceBound(gp, StepFeasibility(), weight=5.0, smooth=True)
    start = torch.tensor([0.3, 0.3, 0.4], dtype=torch.float64)
    point, moved = refine_proposal(acq, space, start, max_iterations=30)
    assert moved
    assert bool(space.contains(point[None]).all())
    assert float(point.sum()) == pytest.approx(1.0, abs=1e-12)
    with torch.no_grad():
        assert float(acq(point[None, None])) > float(acq(start[None, None]))

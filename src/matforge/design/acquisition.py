"""Acquisition functions for constrained alloy design, as BoTorch acquisition functions.

All take `X` of shape (b, 1, d) (BoTorch's analytic convention) and return (b,), so they
compose with BoTorch's optimizers (`optimize_acqf`, `optimize_acqf_discrete`). The
feasibility model is anything with `probability(X)` (and, for the penalty,
`second_phase_fraction(X)`), e.g. `CalphadFeasibility`.

* `LogExpectedImprovementTimesFeasibility`: log EI(x) + log PoF(x) (Gardner et al., ICML
  2014; Gelbart et al., UAI 2014), with BoTorch's numerically stable `LogExpectedImprovement`
  (Ament et al., NeurIPS 2023). PoF is floored at `POF_FLOOR` so that an infeasible region
  stays ordered by EI instead of collapsing to -inf.
* `PenalizedUpperConfidenceBound`: the penalized objective, mu(x) + sqrt(beta) sigma(x)
  minus `weight` times the expected amount of second phases, in units of the observed
  objective's standard deviation (so `weight` = 5 charges 0.5 sigma_y for 10% of a second
  phase).
* `RandomFeasible`: a baseline; a random score where PoF >= 0.5, -inf elsewhere.
* plain EI is BoTorch's `LogExpectedImprovement` itself.

The CALPHAD terms are piecewise constant (PoF is a quadrature of indicators), so by default
they enter without a gradient and the acquisitions are maximized over candidate sets. With
`smooth=True` they use the feasibility model's smooth, differentiable versions
(`soft_probability`, `soft_second_phase_fraction`, with autograd through the equilibrium by
the implicit function theorem), and `refine_proposal` polishes a candidate with BoTorch's
`optimize_acqf` (SLSQP, the bounds and the simplex equality constraint of the design space).

Batch proposals (q > 1) come from `propose_batch`: sequential greedy selection with the
"Kriging believer" (Ginsbourger et al. 2010): after each pick the GP is conditioned on its
own mean there, and that believed value joins the observations, so it can raise the
incumbent that improvement is measured from; near-copies of a pick then promise neither
variance nor improvement. A model that cannot be conditioned (the deep ensemble) gives
the q best distinct points.
"""

from __future__ import annotations

import contextlib
import math

import torch
from botorch.acquisition import AcquisitionFunction, LogExpectedImprovement
from botorch.models.model import Model
from botorch.utils.transforms import t_batch_mode_transform

from matforge.design.feasibility import FeasibilityModel
from matforge.design.space import DesignSpace

POF_FLOOR = 1e-6


class LogExpectedImprovementTimesFeasibility(AcquisitionFunction):
    """log(EI(x) * PoF(x)) for a maximized objective."""

    def __init__(
        self, model: Model, best_f: float, feasibility: FeasibilityModel, *, smooth: bool = False
    ) -> None:
        super().__init__(model=model)
        self.log_ei = LogExpectedImprovement(model=model, best_f=best_f)
        self.feasibility = feasibility
        self.smooth = smooth

    @t_batch_mode_transform(expected_q=1)
    def forward(self, X: torch.Tensor) -> torch.Tensor:  # noqa: N803
        if self.smooth:
            pof = self.feasibility.soft_probability(X).reshape(X.shape[:-2])  # type: ignore[attr-defined]
        else:
            pof = self.feasibility.probability(X.detach()).reshape(X.shape[:-2]).to(X)
        return self.log_ei(X) + torch.log(pof.clamp(min=POF_FLOOR))


class PenalizedUpperConfidenceBound(AcquisitionFunction):
    """mu + sqrt(beta) sigma - weight * scale * E[second-phase fraction]."""

    def __init__(
        self,
        model: Model,
        feasibility: FeasibilityModel,
        *,
        beta: float = 4.0,
        weight: float = 5.0,
        scale: float = 1.0,
        smooth: bool = False,
    ) -> None:
        super().__init__(model=model)
        self.feasibility = feasibility
        self.beta, self.weight, self.scale = beta, weight, scale
        self.smooth = smooth

    @t_batch_mode_transform(expected_q=1)
    def forward(self, X: torch.Tensor) -> torch.Tensor:  # noqa: N803
        posterior = self.model.posterior(X)
        mean = posterior.mean.reshape(X.shape[:-2])
        std = posterior.variance.clamp(min=0).sqrt().reshape(X.shape[:-2])
        if self.smooth:
            penalty = self.feasibility.soft_second_phase_fraction(X)  # type: ignore[attr-defined]
        else:
            penalty = self.feasibility.second_phase_fraction(X.detach()).to(X)
        penalty = penalty.reshape(X.shape[:-2])
        return mean + math.sqrt(self.beta) * std - self.weight * self.scale * penalty


class RandomFeasible(AcquisitionFunction):
    """A random score for points with PoF >= 0.5 (random feasible sampling), -inf else."""

    def __init__(
        self, model: Model, feasibility: FeasibilityModel | None, generator: torch.Generator
    ) -> None:
        super().__init__(model=model)
        self.feasibility = feasibility
        self.generator = generator

    @t_batch_mode_transform(expected_q=1)
    def forward(self, X: torch.Tensor) -> torch.Tensor:  # noqa: N803
        score = torch.rand(X.shape[:-2], generator=self.generator, dtype=X.dtype)
        if self.feasibility is None:
            return score
        pof = self.feasibility.probability(X.detach()).reshape(X.shape[:-2])
        return torch.where(pof >= 0.5, score, torch.full_like(score, -torch.inf))


def propose_batch(
    build: callable,  # type: ignore[valid-type]
    model: Model,
    choices: torch.Tensor,
    q: int,
) -> torch.Tensor:
    """q distinct rows of `choices` by sequential greedy Kriging-believer selection.

    `build(model, believed)` returns the acquisition function for a (conditioned) model;
    `believed` lists (x, believed value) of the picks so far, for the incumbent of
    improvement-based acquisitions.
    """
    chosen: list[int] = []
    believed: list[tuple[torch.Tensor, float]] = []
    current = model
    for _ in range(q):
        with torch.no_grad():
            values = build(current, believed)(choices[:, None, :]).clone()
        if chosen:
            values[chosen] = -torch.inf
        index = int(torch.argmax(values))
        if not torch.isfinite(values[index]):
            # Nothing left that the acquisition accepts: take the best-ranked remaining.
            remaining = [i for i in range(len(choices)) if i not in chosen]
            index = remaining[0]
        chosen.append(index)
        if len(chosen) < q:
            x = choices[index][None]
            with torch.no_grad():
                mean = current.posterior(x).mean.detach()
            believed.append((x[0], float(mean.reshape(-1)[0])))
            # A model without exact conditioning (the deep ensemble) gives plain top-q.
            with contextlib.suppress(NotImplementedError):
                current = current.condition_on_observations(x, mean)
    return choices[chosen]


def refine_proposal(
    acquisition: AcquisitionFunction,
    space: DesignSpace,
    start: torch.Tensor,
    *,
    max_iterations: int = 20,
) -> tuple[torch.Tensor, bool]:
    """Polish one point (d,) by maximizing a differentiable acquisition with BoTorch's
    `optimize_acqf` from it, under the space's bounds and simplex equality constraint.

    Returns the point to evaluate (projected onto the space, so it lies exactly on the
    simplex within bounds) and whether it replaced `start`: it does only when the
    acquisition improved, so a failed or wandering local search costs nothing.
    """
    from botorch.optim import optimize_acqf

    start = space.project(start.reshape(1, -1))
    candidate, _ = optimize_acqf(
        acquisition,
        bounds=space.botorch_bounds(),
        q=1,
        num_restarts=1,
        batch_initial_conditions=start[None],
        equality_constraints=space.equality_constraints(),
        options={"maxiter": max_iterations},
    )
    candidate = space.project(candidate.detach().reshape(1, -1))
    with torch.no_grad():
        before, after = acquisition(start[None]), acquisition(candidate[None])
    if bool(torch.isfinite(after).all()) and float(after) > float(before):
        return candidate[0], True
    return start[0], False

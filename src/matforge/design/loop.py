"""The active-learning loop: fit the surrogate, score candidates, ask the oracle, repeat.

Candidates. Each feasibility-aware acquisition needs CALPHAD at every point it scores, so the
loop maximizes acquisitions over a finite candidate set with BoTorch's
`optimize_acqf_discrete` convention (`propose_batch`) instead of a continuous optimizer that
would solve equilibria at every line-search step: a uniform sample of the design space
(`pool_size` points, drawn once per run, the same for every strategy with the same seed)
that grows every iteration by `local_candidates` Gaussian perturbations (scale
`local_scale`, projected back onto the bounded simplex) of the best feasible observation
and of the current top-scored candidates (for `random`: random predicted-feasible ones).
Every candidate lies on the simplex within bounds by construction. A pool-based oracle
(`TableOracle`, or an oracle on a composition grid) replaces the set by its rows.

Refinement (`refine_iterations` > 0): each proposal is then polished by a local,
gradient-based maximization of the smooth version of its acquisition with BoTorch's
`optimize_acqf` under the bounds and the simplex equality constraint; the CALPHAD term's
gradient comes from the equilibrium solver's implicit-function-theorem derivatives. The
polished point replaces the proposal only where it scores higher. Each step solves
equilibria, so it costs about a second per acquisition evaluation on 2 cores.

Strategies: `ei-pof` (log EI x PoF), `penalty` (penalized UCB), `ei` (plain log EI, blind
to feasibility) and `random` (random points predicted feasible, PoF >= 0.5).

Stopping: after `budget` evaluations, or earlier (`stop_patience` > 0) once the best
feasible objective has not improved by more than `stop_tolerance` (relative to its
magnitude) in the last `stop_patience` evaluations; the count starts at the first feasible
evaluation. `DesignHistory.stop_reason` says which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from botorch.acquisition import LogExpectedImprovement

from matforge.core.errors import ConfigError
from matforge.core.progress import track
from matforge.design.acquisition import (
    LogExpectedImprovementTimesFeasibility,
    PenalizedUpperConfidenceBound,
    RandomFeasible,
    propose_batch,
    refine_proposal,
)
from matforge.design.feasibility import FeasibilityModel
from matforge.design.oracles import Oracle
from matforge.design.space import DesignSpace
from matforge.design.surrogates import Surrogate

STRATEGIES = ("ei-pof", "penalty", "ei", "random")


@dataclass(frozen=True)
class LoopSettings:
    strategy: str = "ei-pof"
    budget: int = 40
    initial: int = 8
    batch_size: int = 1
    pool_size: int = 1000
    local_candidates: int = 48
    local_scale: float = 0.02
    beta: float = 4.0
    penalty_weight: float = 5.0
    refine_iterations: int = 0
    stop_patience: int = 0
    stop_tolerance: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {list(STRATEGIES)}, got {self.strategy!r}")
        if self.initial < 2 or self.budget < 1 or self.batch_size < 1:
            raise ConfigError("initial must be >= 2, budget and batch_size >= 1")
        if self.refine_iterations < 0:
            raise ConfigError(f"refine_iterations must be >= 0, got {self.refine_iterations}")
        if self.stop_patience < 0 or self.stop_tolerance < 0:
            raise ConfigError("stop_patience and stop_tolerance must be >= 0")


@dataclass
class DesignHistory:
    """Every evaluation in order; `iteration` 0 marks the initial design."""

    elements: tuple[str, ...]
    x: list[torch.Tensor] = field(default_factory=list)
    objective: list[float] = field(default_factory=list)
    feasible: list[bool] = field(default_factory=list)
    iteration: list[int] = field(default_factory=list)
    predicted_mean: list[float] = field(default_factory=list)
    predicted_std: list[float] = field(default_factory=list)
    probability_feasible: list[float] = field(default_factory=list)
    refined: list[bool] = field(default_factory=list)
    stop_reason: str = ""

    def add(
        self,
        x: torch.Tensor,
        objective: torch.Tensor,
        feasible: torch.Tensor,
        iteration: int,
        mean: torch.Tensor,
        std: torch.Tensor,
        pof: torch.Tensor,
        refined: torch.Tensor | None = None,
    ) -> None:
        for i in range(len(x)):
            self.refined.append(bool(refined[i]) if refined is not None else False)
            self.x.append(x[i].clone())
            self.objective.append(float(objective[i]))
            self.feasible.append(bool(feasible[i]))
            self.iteration.append(iteration)
            self.predicted_mean.append(float(mean[i]))
            self.predicted_std.append(float(std[i]))
            self.probability_feasible.append(float(pof[i]))

    @property
    def inputs(self) -> torch.Tensor:
        return torch.stack(self.x)

    @property
    def outputs(self) -> torch.Tensor:
        return torch.tensor(self.objective, dtype=torch.float64)

    @property
    def feasible_mask(self) -> torch.Tensor:
        return torch.tensor(self.feasible, dtype=torch.bool)

    def best_feasible_trace(self) -> torch.Tensor:
        """Best feasible objective after each evaluation (NaN before the first feasible)."""
        values = torch.where(self.feasible_mask, self.outputs, -torch.inf)
        best = torch.cummax(values, dim=0).values
        return torch.where(torch.isfinite(best), best, torch.nan)

    def evaluations_without_improvement(self, tolerance: float) -> int | None:
        """Evaluations since the best feasible objective last rose by more than
        `tolerance` x its magnitude (None before the first feasible evaluation)."""
        trace = self.best_feasible_trace()
        seen = torch.nonzero(torch.isfinite(trace)).flatten()
        if len(seen) == 0:
            return None
        last = int(seen[0])
        for i in range(last + 1, len(trace)):
            if trace[i] - trace[last] > tolerance * abs(float(trace[last])):
                last = i
        return len(trace) - 1 - last

    def rows(self) -> list[dict]:
        return [
            {
                "evaluation": i + 1,
                "iteration": self.iteration[i],
                **{f"x_{e}": float(self.x[i][j]) for j, e in enumerate(self.elements)},
                "objective": self.objective[i],
                "feasible": self.feasible[i],
                "predicted_mean": self.predicted_mean[i],
                "predicted_std": self.predicted_std[i],
                "probability_feasible": self.probability_feasible[i],
                "refined": self.refined[i],
            }
            for i in range(len(self.x))
        ]


def _acquisition_builder(
    settings: LoopSettings,
    history: DesignHistory,
    feasibility: FeasibilityModel | None,
    generator: torch.Generator,
    *,
    smooth: bool = False,
) -> Callable:
    """`build(model, believed=())`: the strategy's acquisition function. `believed` holds
    the Kriging believer's (x, value) picks of the current batch (see `propose_batch`):
    they raise the incumbent of EI, for EI x PoF where predicted feasible (PoF >= 0.5)."""
    y = history.outputs
    if settings.strategy == "ei":
        best = float(y.max())
        return lambda model, believed=(): LogExpectedImprovement(
            model, best_f=max([best, *(v for _, v in believed)])
        )
    if feasibility is None:
        raise ConfigError(f"strategy {settings.strategy!r} needs a feasibility model")
    if settings.strategy == "ei-pof":
        feasible = history.feasible_mask
        # No feasible point yet: improvement over the worst observation, so PoF dominates.
        best = float(y[feasible].max()) if feasible.any() else float(y.min())

        def ei_pof(model, believed=()):  # type: ignore[no-untyped-def]
            counted = [v for x, v in believed if float(feasibility.probability(x[None])[0]) >= 0.5]
            return LogExpectedImprovementTimesFeasibility(
                model, max([best, *counted]), feasibility, smooth=smooth
            )

        return ei_pof
    if settings.strategy == "penalty":
        scale = float(y.std()) if len(y) > 1 else 1.0
        return lambda model, believed=(): PenalizedUpperConfidenceBound(
            model,
            feasibility,
            beta=settings.beta,
            weight=settings.penalty_weight,
            scale=scale,
            smooth=smooth,
        )
    return lambda model, believed=(): RandomFeasible(model, feasibility, generator)


def _local_candidates(
    space: DesignSpace, centers: torch.Tensor, count: int, scale: float, generator: torch.Generator
) -> torch.Tensor:
    if count <= 0 or len(centers) == 0:
        return centers.new_zeros(0, space.dimension)
    picks = torch.randint(0, len(centers), (count,), generator=generator)
    noise = torch.randn(count, space.dimension, generator=generator, dtype=torch.float64)
    return space.project(centers[picks] + scale * noise)


def run_loop(
    space: DesignSpace,
    oracle: Oracle,
    surrogate_factory: Callable[[], Surrogate],
    feasibility: FeasibilityModel | None,
    settings: LoopSettings,
    *,
    show_progress: bool = True,
) -> DesignHistory:
    """Initial design of `settings.initial` random points, then `budget` evaluations."""
    generator = torch.Generator().manual_seed(settings.seed)
    history = DesignHistory(space.elements)
    # an oracle that can only answer for listed compositions (a table, a grid) has them
    pool_based = getattr(oracle, "candidates", None) is not None
    if pool_based:
        pool = oracle.candidates.clone()
        if len(pool) < settings.initial + settings.budget:
            raise ConfigError(
                f"the table has {len(pool)} alloys, fewer than initial + budget = "
                f"{settings.initial + settings.budget}"
            )
        first = pool[torch.randperm(len(pool), generator=generator)[: settings.initial]]
    else:
        pool = space.sample(settings.pool_size, generator=generator)
        first = space.sample(settings.initial, generator=generator)
    observed = oracle.evaluate(first)
    nan = torch.full((len(first),), torch.nan, dtype=torch.float64)
    pof = feasibility.probability(first) if feasibility is not None else nan
    history.add(first, observed.objective, observed.feasible, 0, nan, nan, pof)

    steps = range(1, -(-settings.budget // settings.batch_size) + 1)
    if show_progress:
        steps = track(steps, description=f"design ({settings.strategy})")
    surrogate: Surrogate | None = None
    for iteration in steps:
        q = min(settings.batch_size, settings.budget - (len(history.x) - settings.initial))
        next_surrogate = surrogate_factory()
        if surrogate is not None and hasattr(next_surrogate, "warm_start"):
            next_surrogate.warm_start(surrogate)
        surrogate = next_surrogate.fit(history.inputs, history.outputs)
        build = _acquisition_builder(settings, history, feasibility, generator)
        choices = _unevaluated(pool, history.inputs)
        if not pool_based:
            # Every strategy (random too: its scores are random among the predicted
            # feasible) grows the same uniform pool around its best and top candidates.
            scores = build(surrogate.model)(choices[:, None, :]).detach()
            top = choices[torch.argsort(scores, descending=True)[:8]]
            feasible = history.feasible_mask
            centers = torch.cat(
                [top, history.inputs[feasible][history.outputs[feasible].argsort()[-1:]]]
            )
            fresh = _local_candidates(
                space, centers, settings.local_candidates, settings.local_scale, generator
            )
            pool = _distinct(torch.cat([pool, fresh]))
            choices = _unevaluated(pool, history.inputs)
        proposal = propose_batch(build, surrogate.model, choices, q)
        refined = torch.zeros(len(proposal), dtype=torch.bool)
        if settings.refine_iterations and not pool_based and settings.strategy != "random":
            smooth = _acquisition_builder(settings, history, feasibility, generator, smooth=True)
            proposal, refined = _refine(
                smooth(surrogate.model), space, proposal, history.inputs, settings
            )
        mean, std = surrogate.predict(proposal)
        pof = feasibility.probability(proposal) if feasibility is not None else mean * torch.nan
        observed = oracle.evaluate(proposal)
        history.add(
            proposal, observed.objective, observed.feasible, iteration, mean, std, pof, refined
        )
        reason = _early_stop(history, settings)
        if reason:
            history.stop_reason = reason
            break
    if not history.stop_reason:
        history.stop_reason = f"budget of {settings.budget} evaluations used"
    return history


def _early_stop(history: DesignHistory, settings: LoopSettings) -> str:
    """Why to stop now (patience exhausted), or '' to go on."""
    if settings.stop_patience == 0:
        return ""
    stale = history.evaluations_without_improvement(settings.stop_tolerance)
    if stale is None or stale < settings.stop_patience:
        return ""
    trace = history.best_feasible_trace()
    best = float(trace[-1])
    at = int(torch.nonzero(trace == best).flatten()[0]) + 1
    return (
        f"stopped early: the best feasible objective ({best:.6g}, evaluation {at}) has not "
        f"improved by more than {100 * settings.stop_tolerance:g}% in the last {stale} "
        f"evaluations (stop_patience {settings.stop_patience})"
    )


def _refine(
    acquisition: object,
    space: DesignSpace,
    proposal: torch.Tensor,
    evaluated: torch.Tensor,
    settings: LoopSettings,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Polish each proposal (independently); keep the original where the polished point
    would repeat an evaluated or already chosen one."""
    points, flags = [], []
    for start in proposal:
        point, moved = refine_proposal(
            acquisition, space, start, max_iterations=settings.refine_iterations
        )
        taken = torch.cat([evaluated, *[p[None] for p in points]])
        if moved and len(_unevaluated(point[None], taken)) == 0:
            point, moved = start, False
        points.append(point)
        flags.append(moved)
    return torch.stack(points), torch.tensor(flags)


def _distinct(points: torch.Tensor) -> torch.Tensor:
    """Rows that differ by more than rounding (projection sends many points to one corner)."""
    keys = torch.round(points * 1e9)
    _, inverse = torch.unique(keys, dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), len(points), dtype=torch.long)
    first = first.scatter_reduce(0, inverse, torch.arange(len(points)), reduce="amin")
    return points[first.sort().values]


def _unevaluated(pool: torch.Tensor, evaluated: torch.Tensor) -> torch.Tensor:
    distance = (
        torch.cdist(pool, evaluated, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values
    )
    return pool[distance > 1e-9]

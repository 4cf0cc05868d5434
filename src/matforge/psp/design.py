"""Gradient-based process design through a differentiable chain.

Process variables live in boxes (`Bound`: low, high, optionally log-scaled as annealing
times spanning decades). Each is reparameterized x = low + (high - low) sigmoid(u) (in
log10 space for log-scaled ones), so unconstrained gradient steps on u never leave the
box. Many starts are optimized at once as one batch (Adam, then L-BFGS on the best),
toward a target value of the property (minimize ((y - target)/scale)^2) or its maximum.
With an ensemble of chains the mean is optimized (minus `risk` x its standard deviation
for a cautious design) and the spread is reported as the prediction's uncertainty.
`grid_search` evaluates any batched function on a dense grid over the same boxes: the
check (on the true process) and the brute-force alternative (on the chain).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from matforge.core.errors import ConfigError


@dataclass(frozen=True)
class Bound:
    name: str
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ConfigError(
                f"bound {self.name!r}: low ({self.low}) must be below high ({self.high})"
            )
        if self.log and self.low <= 0:
            raise ConfigError(f"bound {self.name!r}: a log-scaled range needs low > 0")

    def _space(self) -> tuple[float, float]:
        return (math.log10(self.low), math.log10(self.high)) if self.log else (self.low, self.high)

    def from_unit(self, unit: torch.Tensor) -> torch.Tensor:
        """Map [0, 1] onto the bound (log-uniformly when log)."""
        a, b = self._space()
        value = a + (b - a) * unit
        return 10.0**value if self.log else value

    def to_unit(self, value: torch.Tensor) -> torch.Tensor:
        a, b = self._space()
        space = torch.log10(value) if self.log else value
        return (space - a) / (b - a)


@dataclass
class DesignResult:
    process: dict[str, float]
    predicted: dict[str, float]  # every chain quantity at the design (ensemble mean)
    uncertainty: dict[str, float]  # ensemble standard deviations ({} for one chain)
    objective: float
    starts: int
    seconds: float
    all_starts: list[dict[str, float]]


Model = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


def design_process(
    model: Model,
    bounds: Sequence[Bound],
    output: str,
    *,
    target: float | None = None,
    maximize: bool = False,
    fixed: dict[str, float] | None = None,
    starts: int = 16,
    steps: int = 100,
    learning_rate: float = 0.2,
    risk: float = 0.0,
    tolerance: dict[str, float] | None = None,
    scale: float | None = None,
    seed: int = 0,
) -> DesignResult:
    """Process variables within `bounds` that reach `target` (or maximize) `output`.

    `tolerance` (per process variable: absolute, or relative for log-scaled ones) asks for
    a robust route: the objective is charged (sum_i dy/dx_i tol_i)^2 / scale^2, the variance
    of the property when the process drifts within its tolerances, so a route on a steep
    flank (where a furnace 5 C off changes the result, and where a fitted model is least
    reliable) loses to an equally good route on a plateau."""
    if (target is None) == (not maximize):
        raise ConfigError("give either a target value or maximize=True")
    begin = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    unit0 = torch.rand(starts, len(bounds), generator=generator, dtype=torch.float64)
    unit0 = unit0.clamp(1e-3, 1 - 1e-3)
    u = torch.logit(unit0).requires_grad_(True)
    fixed = dict(fixed or {})

    tolerance = dict(tolerance or {})
    unknown = set(tolerance) - {b.name for b in bounds}
    if unknown:
        raise ConfigError(f"tolerances given for {sorted(unknown)}, not among the free variables")

    def evaluate(
        u: torch.Tensor, *, robust: bool = False
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        unit = torch.sigmoid(u)
        values = {b.name: b.from_unit(unit[:, i]) for i, b in enumerate(bounds)}
        if robust and tolerance and not u.requires_grad:
            values = {k: v.detach().requires_grad_(True) for k, v in values.items()}
        for name, value in fixed.items():
            values[name] = torch.full((len(u),), float(value), dtype=torch.float64)
        with torch.enable_grad():
            out = model(values)
            if robust and tolerance:
                names = list(tolerance)
                grads = torch.autograd.grad(
                    out[output].sum(), [values[n] for n in names], create_graph=True
                )
                variance = torch.zeros_like(out[output])
                for name, g in zip(names, grads, strict=True):
                    bound = next(b for b in bounds if b.name == name)
                    step = tolerance[name] * (values[name] if bound.log else 1.0)
                    variance = variance + (g * step) ** 2
                out = {**out, f"{output}_sensitivity": variance.sqrt()}
        return values, out

    _, first = evaluate(u.detach())
    norm = scale or max(float(first[output].detach().abs().mean()), 1e-12)

    def objective(out: dict[str, torch.Tensor]) -> torch.Tensor:
        y = out[output]
        spread = out.get(f"{output}_std", torch.zeros_like(y))
        drift = out.get(f"{output}_sensitivity", torch.zeros_like(y))
        if maximize:
            return -(y - risk * spread - drift) / norm
        return ((y - target) / norm) ** 2 + risk * (spread / norm) ** 2 + (drift / norm) ** 2

    optimizer = torch.optim.Adam([u], lr=learning_rate)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = objective(evaluate(u, robust=True)[1])
        loss.sum().backward()  # starts are independent: one backward for all
        optimizer.step()
    scores = objective(evaluate(u, robust=True)[1]).detach()
    best = int(torch.argmin(scores))
    polished = u[best : best + 1].detach().clone().requires_grad_(True)
    lbfgs = torch.optim.LBFGS([polished], max_iter=40, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        lbfgs.zero_grad()
        value = objective(evaluate(polished, robust=True)[1]).sum()
        value.backward()
        return value.detach()  # LBFGS needs only the value

    lbfgs.step(closure)
    values, out = evaluate(polished.detach(), robust=True)
    final = float(objective(out).detach())
    if final > float(scores[best]):  # polishing never makes it worse
        values, out = evaluate(u[best : best + 1].detach(), robust=True)
        final = float(scores[best])
    every_start, _ = evaluate(u.detach())
    process = {k: float(v[0].detach()) for k, v in values.items()}
    out = {k: v.detach() for k, v in out.items()}
    predicted = {k: float(v[0]) for k, v in out.items() if not k.endswith(("_std", "_sensitivity"))}
    spread = {k[:-4]: float(v[0]) for k, v in out.items() if k.endswith("_std")}
    if f"{output}_sensitivity" in out:
        predicted[f"{output}_sensitivity"] = float(out[f"{output}_sensitivity"][0])
    for k in process:
        predicted.pop(k, None)
    return DesignResult(
        process,
        predicted,
        spread,
        final,
        starts,
        time.perf_counter() - begin,
        [{k: float(v[i]) for k, v in every_start.items()} for i in range(starts)],
    )


def grid_search(
    function: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    bounds: Sequence[Bound],
    points: int,
    *,
    target: float | None = None,
    fixed: dict[str, float] | None = None,
    chunk: int = 200_000,
) -> tuple[dict[str, float], float, int]:
    """Best grid point (max of `function`, or closest to `target`): (process, value, count).

    The grid has `points` per bound, spaced uniformly (log-uniformly for log bounds)."""
    axes = [
        bounds[i].from_unit(torch.linspace(0, 1, points, dtype=torch.float64))
        for i in range(len(bounds))
    ]
    total = points ** len(bounds)
    best_score, best_value, best_point = -np.inf, float("nan"), None
    shape = (points,) * len(bounds)
    with torch.no_grad():
        for start in range(0, total, chunk):
            flat = np.arange(start, min(total, start + chunk))
            block = np.stack(np.unravel_index(flat, shape), axis=1)
            values = {b.name: axes[i][torch.from_numpy(block[:, i])] for i, b in enumerate(bounds)}
            for name, value in (fixed or {}).items():
                values[name] = torch.full((len(block),), float(value), dtype=torch.float64)
            y = function(values)
            score = y if target is None else -(y - target).abs()
            k = int(torch.argmax(score))
            if float(score[k]) > best_score:
                best_score, best_value = float(score[k]), float(y[k])
                best_point = {name: float(v[k]) for name, v in values.items()}
    assert best_point is not None
    return best_point, best_value, total

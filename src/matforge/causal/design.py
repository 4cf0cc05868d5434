"""Causal design: the treatment value that maximizes E[outcome | do(treatment)], beside
the value a correlational model E[outcome | treatment] would choose.

The interventional curve comes from a fitted `StructuralCausalModel` (exact for affine
mechanisms, else Monte Carlo with the same random draws at every grid point, so that the
curve is smooth and its argmax is not chasing sampling noise); the correlational curve
from a regression of the outcome on the treatment alone. Both are searched on a grid
within the bounds and refined by golden-section search around the best grid point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from matforge.causal.estimation import Regressor, fit_regression, polynomial
from matforge.causal.scm import Intervention, StructuralCausalModel
from matforge.core.errors import ConfigError

__all__ = ["DesignChoice", "causal_design", "interventional_curve"]


def interventional_curve(
    scm: StructuralCausalModel,
    treatment: str,
    outcome: str,
    values: np.ndarray,
    *,
    samples: int = 4000,
    seed: int = 0,
) -> np.ndarray:
    return np.array(
        [
            scm.interventional_mean(
                outcome, [Intervention(treatment, float(v))], samples=samples, seed=seed
            ).mean
            for v in values
        ]
    )


def _golden_max(function: Callable[[float], float], low: float, high: float, steps: int) -> float:
    ratio = (math.sqrt(5) - 1) / 2
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = function(c), function(d)
    for _ in range(steps):
        if fc > fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = function(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = function(d)
    return (a + b) / 2


@dataclass(frozen=True)
class DesignChoice:
    causal: float  # argmax of E[outcome | do(treatment)]
    correlational: float  # argmax of E[outcome | treatment]
    grid: np.ndarray
    interventional: np.ndarray
    observational: np.ndarray


def causal_design(
    scm: StructuralCausalModel,
    data: pd.DataFrame,
    treatment: str,
    outcome: str,
    bounds: tuple[float, float],
    *,
    points: int = 41,
    samples: int = 4000,
    regressor: Regressor | None = None,
    seed: int = 0,
) -> DesignChoice:
    low, high = bounds
    if not low < high:
        raise ConfigError(f"design bounds must satisfy low < high, got {bounds}")
    grid = np.linspace(low, high, points)
    interventional = interventional_curve(scm, treatment, outcome, grid, samples=samples, seed=seed)
    regression = fit_regression(data, outcome, [treatment], regressor or polynomial())

    def observed_mean(values: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return regression.predict(torch.tensor(values, dtype=torch.float64)[:, None]).numpy()

    observational = observed_mean(grid)
    step = grid[1] - grid[0]

    def refine(curve: np.ndarray, function: Callable[[float], float]) -> float:
        best = int(np.argmax(curve))
        return _golden_max(function, max(low, grid[best] - step), min(high, grid[best] + step), 20)

    causal = refine(
        interventional,
        lambda v: float(
            interventional_curve(
                scm, treatment, outcome, np.array([v]), samples=samples, seed=seed
            )[0]
        ),
    )
    correlational = refine(
        observational,
        lambda v: float(observed_mean(np.array([v]))[0]),
    )
    return DesignChoice(causal, correlational, grid, interventional, observational)

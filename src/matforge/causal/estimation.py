"""Effect estimators from observational data: backdoor adjustment, front-door, the naive
regression they correct, and a sensitivity analysis for an unobserved confounder.

Each estimator takes a pandas DataFrame and a regressor factory (a `Mechanism` class or a
callable (node, parents) -> Mechanism; default a quadratic polynomial), so the naive and
the adjusted estimates can use the same regression family and differ only in what they
condition on.

- Adjustment (backdoor): E[Y | do(x)] = mean_i m(x, z_i), m(x, z) = E[Y | X = x, Z = z].
- Front-door (one mediator set M): E[Y | do(x)] = E_{m ~ p(m | x)} E_{x'} m(m, x'), with
  p(m | x) from an additive-noise model of M (fitted mean + resampled residuals).
- Sensitivity (Cinelli & Hazlett 2020, JRSS-B 82:39): for the linear regression of Y on X
  and Z, a confounder U explaining a share r2_outcome of Y's residual variance (given X, Z)
  and r2_treatment of X's (given Z) moves the coefficient of X by at most
  se * sqrt(df * r2_outcome * r2_treatment / (1 - r2_treatment)); the robustness value is
  the equal strength of both that would remove the whole estimate. The bound is attained
  in-sample by the regression with U included (a test checks this identity).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from matforge.causal.mechanisms import DTYPE, Mechanism, PolynomialMechanism
from matforge.core.errors import ConfigError

__all__ = [
    "Regressor",
    "SensitivityReport",
    "adjusted_means",
    "fit_regression",
    "frontdoor_means",
    "linear_sensitivity",
    "naive_means",
    "polynomial",
]

Regressor = Callable[[str, tuple[str, ...]], Mechanism]


def polynomial(degree: int = 2) -> Regressor:
    def make(node: str, parents: tuple[str, ...]) -> Mechanism:
        return PolynomialMechanism(node, parents, degree=degree)

    return make


def _column(data: pd.DataFrame, name: str) -> torch.Tensor:
    if name not in data.columns:
        raise ConfigError(f"the data has no column {name!r}; columns: {list(data.columns)}")
    values = pd.to_numeric(data[name], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ConfigError(f"column {name!r} has missing or non-numeric values")
    return torch.tensor(values, dtype=DTYPE)


def fit_regression(
    data: pd.DataFrame, outcome: str, inputs: Sequence[str], regressor: Regressor
) -> Mechanism:
    """The regression of `outcome` on `inputs` (a fitted mechanism; `predict` gives it)."""
    parents = tuple(inputs)
    x = torch.stack([_column(data, p) for p in parents], dim=1)
    return regressor(outcome, parents).fit(x, _column(data, outcome))


def naive_means(
    data: pd.DataFrame,
    treatment: str,
    outcome: str,
    values: Sequence[float],
    *,
    regressor: Regressor | None = None,
) -> np.ndarray:
    """E[Y | X = x] (no adjustment) at each x: what a correlational model predicts."""
    model = fit_regression(data, outcome, [treatment], regressor or polynomial())
    grid = torch.tensor(list(values), dtype=DTYPE).unsqueeze(1)
    with torch.no_grad():
        return model.predict(grid).numpy()


def adjusted_means(
    data: pd.DataFrame,
    treatment: str,
    outcome: str,
    adjustment: Sequence[str],
    values: Sequence[float],
    *,
    regressor: Regressor | None = None,
) -> np.ndarray:
    """Backdoor adjustment: E[Y | do(X = x)] = mean over units of E[Y | x, z_unit]."""
    adjustment = list(adjustment)
    if treatment in adjustment or outcome in adjustment:
        raise ConfigError("the adjustment set must not contain the treatment or the outcome")
    if not adjustment:
        return naive_means(data, treatment, outcome, values, regressor=regressor)
    model = fit_regression(data, outcome, [treatment, *adjustment], regressor or polynomial())
    z = torch.stack([_column(data, name) for name in adjustment], dim=1)
    means = []
    with torch.no_grad():
        for value in values:
            x = torch.full((z.shape[0], 1), float(value), dtype=DTYPE)
            means.append(float(model.predict(torch.cat([x, z], dim=1)).mean()))
    return np.array(means)


def frontdoor_means(
    data: pd.DataFrame,
    treatment: str,
    mediator: str,
    outcome: str,
    values: Sequence[float],
    *,
    regressor: Regressor | None = None,
    draws: int = 400,
    seed: int = 0,
) -> np.ndarray:
    """Front-door formula with one mediator: sum_m p(m | x) sum_x' E[Y | m, x'] p(x')."""
    regressor = regressor or polynomial()
    to_mediator = fit_regression(data, mediator, [treatment], regressor)
    to_outcome = fit_regression(data, outcome, [mediator, treatment], regressor)
    generator = torch.Generator().manual_seed(seed)
    x_all = _column(data, treatment)
    x_prime = x_all[torch.randint(len(x_all), (draws,), generator=generator)]
    noise = to_mediator.draw_noise(draws, generator)
    means = []
    with torch.no_grad():
        for value in values:
            m = to_mediator.predict(torch.full((1, 1), float(value), dtype=DTYPE)) + noise
            grid_m = m.repeat_interleave(draws)
            grid_x = x_prime.repeat(draws)
            means.append(float(to_outcome.predict(torch.stack([grid_m, grid_x], 1)).mean()))
    return np.array(means)


@dataclass(frozen=True)
class SensitivityReport:
    estimate: float  # coefficient of the treatment in Y ~ X + Z
    standard_error: float
    degrees_of_freedom: int
    bias_bound: float  # largest |change| from a confounder of the given strength
    interval: tuple[float, float]  # estimate -+ bias_bound
    robustness_value: float  # equal partial R^2 (both sides) that explains the estimate away

    def sign_can_flip(self) -> bool:
        return self.interval[0] <= 0 <= self.interval[1]


def linear_sensitivity(
    data: pd.DataFrame,
    treatment: str,
    outcome: str,
    covariates: Sequence[str],
    *,
    r2_outcome: float,
    r2_treatment: float,
) -> SensitivityReport:
    """Omitted-variable bias bound for a confounder of the given partial R^2 strengths."""
    for name, value in (("r2_outcome", r2_outcome), ("r2_treatment", r2_treatment)):
        if not 0 <= value < 1:
            raise ConfigError(f"{name} must lie in [0, 1), got {value}")
    y = _column(data, outcome).numpy()
    columns = [_column(data, treatment).numpy()] + [_column(data, c).numpy() for c in covariates]
    design = np.column_stack([np.ones_like(y), *columns])
    n, p = design.shape
    dof = n - p
    if dof < 1:
        raise ConfigError(f"{n} rows are too few for {p - 1} regressors")
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coefficients
    sigma2 = residual @ residual / dof
    covariance = sigma2 * np.linalg.inv(design.T @ design)
    estimate, se = float(coefficients[1]), float(math.sqrt(covariance[1, 1]))
    bias = se * math.sqrt(dof * r2_outcome * r2_treatment / (1 - r2_treatment))
    f = abs(estimate / se) / math.sqrt(dof)
    robustness = 0.5 * (math.sqrt(f**4 + 4 * f**2) - f**2)
    return SensitivityReport(
        estimate, se, dof, bias, (estimate - bias, estimate + bias), robustness
    )

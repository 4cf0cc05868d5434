"""Composition design by gradient steps through the equilibrium solver.

Two goals, both for one phase P at a fixed temperature:

* maximize the content of an element subject to P's fraction >= `min_fraction`;
* bring P's fraction to `target_fraction`.

The composition lives on the simplex intersected with per-element bounds; every step is
projected back onto that set (an exact Euclidean projection, by bisection on the simplex
multiplier). The derivative of P's fraction comes from the implicit function theorem
(`gradients`). A step either climbs the objective (a feasible point) or restores the phase
fraction with a Gauss-Newton step on (f_P - goal)^2 (an infeasible point), so iterates zigzag
along the feasibility boundary with shrinking steps. All starts are solved as one batch.

This is a first-order method on a non-smooth problem (phase fractions have kinks where phases
appear): it returns the best feasible point it visited, and `grid_search` checks it against
brute force over the same bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

import torch
from pydantic import Field, model_validator

from matforge.calphad.gradients import sensitivities
from matforge.calphad.model import PhaseModel
from matforge.calphad.solver import equilibrium
from matforge.core.config import JobConfig
from matforge.core.errors import ConfigError
from matforge.core.progress import track
from matforge.core.simplex import check_bounds, project

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]

#: Largest composition change of one restoration step.
MAX_RESTORATION_STEP = 0.05


class DesignConfig(JobConfig):
    """`matforge calphad design` settings (see examples/calphad_design.yaml)."""

    database: str = Field(description="TDB file or bundled data set name")
    components: list[str] = Field(min_length=2)
    phases: list[str] | None = Field(None, description="phases to consider (default: all)")
    temperature: float = Field(gt=0, description="kelvin")
    phase: str = Field(description="the phase whose fraction is constrained or targeted")
    maximize: str | None = Field(None, description="element whose mole fraction to maximize")
    min_fraction: Fraction | None = Field(None, description="lower bound on the phase fraction")
    target_fraction: Fraction | None = Field(None, description="phase fraction to reach")
    bounds: dict[str, tuple[Fraction, Fraction]] = Field(default_factory=dict)
    starts: int = Field(8, ge=1, le=1000)
    steps: int = Field(40, ge=1, le=10_000)
    step_size: float = Field(0.02, gt=0, le=0.5, description="initial objective step")

    @model_validator(mode="before")
    @classmethod
    def _upper_case_names(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in ("phase", "maximize"):
            if isinstance(data.get(key), str):
                data[key] = data[key].upper()
        for key in ("components", "phases"):
            if isinstance(data.get(key), list):
                data[key] = [v.upper() if isinstance(v, str) else v for v in data[key]]
        if isinstance(data.get("bounds"), dict):
            data["bounds"] = {
                (k.upper() if isinstance(k, str) else k): v for k, v in data["bounds"].items()
            }
        return data

    @model_validator(mode="after")
    def _one_goal(self) -> DesignConfig:
        if (self.maximize is None) == (self.target_fraction is None):
            raise ValueError("give either maximize (with min_fraction) or target_fraction")
        if self.maximize is not None and self.min_fraction is None:
            raise ValueError("maximize needs min_fraction, the phase-fraction constraint")
        if self.maximize is not None and self.maximize not in self.components:
            raise ValueError(f"maximize: {self.maximize} is not among {self.components}")
        for element, (low, high) in self.bounds.items():
            if element not in self.components:
                raise ValueError(f"bounds: {element} is not among {self.components}")
            if low > high:
                raise ValueError(f"bounds: {element} has lower {low} above upper {high}")
        return self


def box_bounds(config: DesignConfig, elements: tuple[str, ...]) -> torch.Tensor:
    """(C, 2) lower and upper mole fraction of each element (default 0 and 1)."""
    limits = torch.tensor([config.bounds.get(e, (0.0, 1.0)) for e in elements], dtype=torch.float64)
    check_bounds(limits[:, 0], limits[:, 1], 1.0, list(elements))
    return limits


@dataclass
class DesignResult:
    elements: tuple[str, ...]
    best_composition: dict[str, float] | None
    best_phase_fraction: float | None
    best_objective: float | None
    history: list[dict] = field(default_factory=list)  # one row per (step, start)


def _objective(
    config: DesignConfig, elements: tuple[str, ...], x: torch.Tensor, f: torch.Tensor
) -> torch.Tensor:
    if config.maximize is not None:
        return x[:, elements.index(config.maximize)]
    return -((f - config.target_fraction) ** 2)


def _feasible(config: DesignConfig, f: torch.Tensor) -> torch.Tensor:
    if config.maximize is not None:
        return f >= config.min_fraction
    return (f - config.target_fraction).abs() <= 1e-3


def run_design(
    config: DesignConfig, models: Mapping[str, PhaseModel], *, show_progress: bool = True
) -> DesignResult:
    """Multi-start projected gradient design (see module docstring)."""
    elements = next(iter(models.values())).elements
    if sorted(config.components) != list(elements):
        raise ConfigError(f"components {config.components} do not match models {elements}")
    phases = sorted(models)
    if config.phase not in phases:
        raise ConfigError(f"phase: {config.phase} is not among the phases considered {phases}")
    column = phases.index(config.phase)
    limits = box_bounds(config, elements)
    generator = torch.Generator().manual_seed(config.seed)
    draws = torch.empty(config.starts, len(elements), dtype=torch.float64).exponential_(
        generator=generator
    )
    x = project(limits[:, 0] + draws / draws.sum(dim=1, keepdim=True), limits)
    step = torch.full((config.starts,), config.step_size, dtype=torch.float64)
    if config.maximize is not None:
        climb = -torch.full((len(elements),), 1.0 / len(elements), dtype=torch.float64)
        climb[elements.index(config.maximize)] += 1.0
    goal = config.min_fraction if config.maximize is not None else config.target_fraction
    best: tuple[float, torch.Tensor, float] | None = None
    history: list[dict] = []
    steps = range(config.steps)
    for iteration in track(steps, description="design steps") if show_progress else steps:
        result = equilibrium(models, config.temperature, x)
        sens = sensitivities(models, result)
        fraction = sens.amounts[:, column]
        converged = torch.tensor([p.converged for p in result.points])
        feasible = _feasible(config, fraction) & converged
        objective = _objective(config, elements, x, fraction)
        for s in range(config.starts):
            history.append(
                {
                    "step": iteration,
                    "start": s,
                    **{f"x_{e}": float(x[s, i]) for i, e in enumerate(elements)},
                    "phase_fraction": float(fraction[s]),
                    "objective": float(objective[s]),
                    "feasible": bool(feasible[s]),
                    "converged": bool(converged[s]),
                }
            )
            if feasible[s] and (best is None or float(objective[s]) > best[0]):
                best = (float(objective[s]), x[s].clone(), float(fraction[s]))
        gradient = sens.d_amounts_d_bulk[:, column]
        gradient = gradient - gradient.mean(dim=1, keepdim=True)  # stay on sum x = 1
        gradient = torch.nan_to_num(gradient)
        norm2 = (gradient**2).sum(dim=1).clamp(min=1e-12)
        # Gauss-Newton step towards the goal fraction (aim slightly inside the constraint).
        aim = goal + (1e-3 if config.maximize is not None else 0.0)
        restore = ((aim - fraction)[:, None] * gradient / norm2[:, None]).nan_to_num()
        length = restore.norm(dim=1, keepdim=True)
        restore = restore * (MAX_RESTORATION_STEP / length.clamp(min=MAX_RESTORATION_STEP))
        if config.maximize is not None:
            move = torch.where(feasible[:, None], step[:, None] * climb, restore)
            # Leaving the feasible set means the climb overshot: shorter climbs from now on.
            step = torch.where(feasible, step, 0.7 * step)
        else:
            move = restore
        x = project(x + torch.where(converged[:, None], move, torch.zeros_like(move)), limits)
    if best is None:
        return DesignResult(elements, None, None, None, history)
    value, composition, fraction_value = best
    return DesignResult(
        elements,
        dict(zip(elements, composition.tolist(), strict=True)),
        fraction_value,
        value,
        history,
    )


def grid_search(
    config: DesignConfig, models: Mapping[str, PhaseModel], spacing: float
) -> DesignResult:
    """Brute force: every composition of a grid of `spacing` inside the bounds."""
    import itertools

    elements = next(iter(models.values())).elements
    limits = box_bounds(config, elements)
    axes = [
        torch.arange(float(lo), float(hi) + 1e-9, spacing, dtype=torch.float64)
        for lo, hi in limits[:-1].tolist()
    ]
    rows = []
    for combo in itertools.product(*(a.tolist() for a in axes)):
        rest = 1.0 - sum(combo)
        if limits[-1, 0] - 1e-9 <= rest <= limits[-1, 1] + 1e-9:
            rows.append([*combo, max(rest, 0.0)])
    if not rows:
        raise ConfigError(f"no grid composition of spacing {spacing} lies inside the bounds")
    x = torch.tensor(rows, dtype=torch.float64)
    result = equilibrium(models, config.temperature, x)
    fraction = torch.tensor(
        [
            sum(s.amount for s in p.sets if s.phase == config.phase) if p.converged else 0.0
            for p in result.points
        ],
        dtype=torch.float64,
    )
    converged = torch.tensor([p.converged for p in result.points])
    feasible = _feasible(config, fraction) & converged
    objective = torch.where(
        feasible, _objective(config, elements, x, fraction), torch.full_like(fraction, -torch.inf)
    )
    index = int(objective.argmax())
    if not bool(feasible[index]):
        return DesignResult(elements, None, None, None)
    return DesignResult(
        elements,
        dict(zip(elements, x[index].tolist(), strict=True)),
        float(fraction[index]),
        float(objective[index]),
    )


def write_design_run(
    config: DesignConfig, result: DesignResult, check: DesignResult | None, spacing: float | None
) -> tuple[object, dict]:
    """A run directory with config, metrics.json, history.csv and design.png."""
    import pandas as pd

    from matforge.core.rundir import RunDirectory, pyplot

    plt = pyplot()

    run = RunDirectory.create(config.name, config.runs_dir)
    run.write_config(config)
    metrics: dict = {
        "best_composition": result.best_composition,
        "best_phase_fraction": result.best_phase_fraction,
        "best_objective": result.best_objective,
        "reached_goal": result.best_composition is not None,
        "phase": config.phase,
        "temperature": config.temperature,
    }
    if check is not None:
        metrics["grid_check"] = {
            "spacing": spacing,
            "best_composition": check.best_composition,
            "best_phase_fraction": check.best_phase_fraction,
            "best_objective": check.best_objective,
        }
    run.write_metrics(metrics)
    history = pd.DataFrame(result.history)
    run.write_table("history.csv", history)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for start, rows in history.groupby("start"):
        top.plot(rows["step"], rows["objective"], lw=1, label=f"start {start}")
        bottom.plot(rows["step"], rows["phase_fraction"], lw=1)
    goal = config.min_fraction if config.maximize else config.target_fraction
    bottom.axhline(goal, color="k", ls="--", lw=0.8)
    top.set_ylabel(f"x({config.maximize})" if config.maximize else "-(f - target)^2")
    bottom.set_ylabel(f"fraction of {config.phase}")
    bottom.set_xlabel("step")
    top.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    run.save_figure("design.png", figure)
    plt.close(figure)
    return run, metrics

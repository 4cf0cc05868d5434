"""Oracles: what the design loop asks for the truth about a composition.

An oracle maps compositions (n, d), in the design's element order, to an `Observation`:
the objective (e.g. yield strength, MPa) and whether the alloy is feasible (single phase).
Three kinds, as a lab would have them:

* `SyntheticHEAOracle`: the bundled benchmark with real physics, Varvenne-Curtin strength
  (`design.strength`) and single-FCC feasibility from CALPHAD at the design temperature;
* `CallableOracle`: any Python function;
* `TableOracle`: a table of measured alloys (pool-based design: the loop may only pick
  rows of the table; `candidates` lists them).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from matforge.core.errors import ConfigError
from matforge.design.feasibility import CalphadFeasibility, FeasibilityModel
from matforge.design.strength import VarvenneCurtin


@dataclass(frozen=True)
class Observation:
    objective: torch.Tensor  # (n,)
    feasible: torch.Tensor  # (n,) bool


class Oracle(Protocol):
    elements: tuple[str, ...]

    def evaluate(self, x: torch.Tensor) -> Observation: ...


@dataclass
class SyntheticHEAOracle:
    """Varvenne-Curtin yield strength; feasible = single target phase at T (CALPHAD)."""

    strength: VarvenneCurtin
    feasibility: CalphadFeasibility

    @property
    def elements(self) -> tuple[str, ...]:
        return self.strength.elements

    def evaluate(self, x: torch.Tensor) -> Observation:
        x = torch.as_tensor(x, dtype=torch.float64)
        return Observation(self.strength(x).detach(), self.feasibility.is_feasible(x))


@dataclass
class CallableOracle:
    """`function(x)` (or `function(x, elements)` when it takes `elements`) returns objective
    values (n,) or (values, feasible flags). Without flags, `feasibility` (e.g. CALPHAD at
    the design temperature) decides, or every alloy counts as feasible."""

    elements: tuple[str, ...]
    function: Callable[..., object]
    feasibility: FeasibilityModel | None = None

    def evaluate(self, x: torch.Tensor) -> Observation:
        x = torch.as_tensor(x, dtype=torch.float64)
        takes_elements = "elements" in inspect.signature(self.function).parameters
        out = self.function(x, elements=self.elements) if takes_elements else self.function(x)
        values, feasible = out if isinstance(out, tuple) else (out, None)
        values = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
        if len(values) != len(x):
            raise ConfigError(f"the oracle returned {len(values)} values for {len(x)} inputs")
        if feasible is None and self.feasibility is not None:
            feasible = self.feasibility.is_feasible(x)
        if feasible is None:
            feasible = torch.ones(len(values), dtype=torch.bool)
        return Observation(values, torch.as_tensor(feasible, dtype=torch.bool).reshape(-1))


class TableOracle:
    """Measured alloys: rows of compositions with an objective (and feasibility) column."""

    def __init__(
        self,
        elements: Sequence[str],
        compositions: torch.Tensor,
        objective: torch.Tensor,
        feasible: torch.Tensor | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        self.elements = tuple(elements)
        self.candidates = torch.as_tensor(compositions, dtype=torch.float64)
        self.objective = torch.as_tensor(objective, dtype=torch.float64).reshape(-1)
        if self.candidates.shape != (len(self.objective), len(self.elements)):
            raise ConfigError(
                f"table oracle: {tuple(self.candidates.shape)} compositions for "
                f"{len(self.objective)} values and {len(self.elements)} elements"
            )
        self.feasible = (
            torch.ones(len(self.objective), dtype=torch.bool)
            if feasible is None
            else torch.as_tensor(feasible, dtype=torch.bool)
        )
        self.labels = (
            list(labels) if labels is not None else [str(i) for i in range(len(self.objective))]
        )

    def index_of(self, x: torch.Tensor) -> torch.Tensor:
        distance = torch.cdist(
            torch.as_tensor(x, dtype=torch.float64),
            self.candidates,
            compute_mode="donot_use_mm_for_euclid_dist",
        )
        nearest = distance.argmin(dim=1)
        if (distance.gather(1, nearest[:, None]) > 1e-9).any():
            raise ConfigError("a pool-based oracle can only evaluate rows of its table")
        return nearest

    def evaluate(self, x: torch.Tensor) -> Observation:
        rows = self.index_of(x)
        return Observation(self.objective[rows], self.feasible[rows])

"""Grids of equilibrium conditions from text ("500:900:50", "ZN=0:1:0.01") and results as rows.

A range "start:stop:step" includes stop when the steps land on it (within 1e-9), as a
user listing "0:1:0.1" expects eleven values; a single number is one value. Compositions
give the mole fractions of all but one component, the dependent one takes the rest; grid
points where that rest is negative are left out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from matforge.calphad.solver import EquilibriumResult
from matforge.core.errors import ConfigError

_MAX_VALUES = 1_000_000


def parse_values(text: str, what: str) -> list[float]:
    """Values of "a:b:s" (inclusive range), "a,b,c" or "a"; `what` names the option."""
    text = text.strip()
    unreadable = ConfigError(
        f"{what}: cannot read {text!r}; expected a number, a list 'a,b,c' or a range "
        f"'start:stop:step'"
    )
    # ConfigError is a ValueError: only the float() conversions sit inside the try, so the
    # specific range errors below reach the user unchanged.
    try:
        parts = [float(p) for p in text.split(":" if ":" in text else ",") if p.strip()]
    except ValueError:
        raise unreadable from None
    if ":" not in text:
        values = parts
    else:
        if len(parts) != 3 or len(text.split(":")) != 3:
            raise unreadable
        start, stop, step = parts
        if not all(math.isfinite(v) for v in parts):
            raise ConfigError(f"{what}: range {text!r} needs finite start, stop and step")
        if step <= 0 or stop < start:
            raise ConfigError(f"{what}: range {text!r} needs start <= stop and a positive step")
        count = math.floor((stop - start) / step + 1e-9) + 1
        if count > _MAX_VALUES:
            raise ConfigError(f"{what}: range {text!r} has {count} values, too many")
        values = [start + i * step for i in range(count)]
    if not values or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"{what}: {text!r} gives no finite values")
    return values


def parse_composition_options(options: Sequence[str]) -> dict[str, list[float]]:
    """{"ZN": [...]} from options like "ZN=0:1:0.01" (element names upper-cased)."""
    grid: dict[str, list[float]] = {}
    for option in options:
        name, sep, values = option.partition("=")
        name = name.strip().upper()
        if not sep or not name:
            raise ConfigError(f"--x {option!r}: expected ELEMENT=VALUES, e.g. ZN=0:1:0.01")
        if name in grid:
            raise ConfigError(f"--x: {name} given twice")
        grid[name] = parse_values(values, f"--x {name}")
        bad = [v for v in grid[name] if not 0.0 <= v <= 1.0]
        if bad:
            raise ConfigError(f"--x {name}: mole fractions must lie in [0, 1], got {bad[0]}")
    return grid


@dataclass(frozen=True)
class ConditionGrid:
    """N conditions: temperature (N,) and bulk mole fractions (N, C) of `elements`."""

    elements: tuple[str, ...]
    temperature: torch.Tensor
    bulk: torch.Tensor


def condition_grid(
    elements: Sequence[str],
    temperatures: Sequence[float],
    fractions: Mapping[str, Sequence[float]],
) -> ConditionGrid:
    """The product grid of temperatures and the given mole fractions (one element free)."""
    elements = tuple(sorted(e.upper() for e in elements))
    unknown = sorted(set(fractions) - set(elements))
    if unknown:
        raise ConfigError(f"--x names {unknown}, which are not among the components {elements}")
    free = [e for e in elements if e not in fractions]
    if len(free) != 1:
        raise ConfigError(
            f"give the mole fractions of all components but one (it takes the rest); "
            f"components {list(elements)}, fractions given for {sorted(fractions)}"
        )
    given = [e for e in elements if e in fractions]
    rows, temps = [], []
    for t in temperatures:
        if t <= 0:
            raise ConfigError(f"--T: temperatures are in kelvin and must be positive, got {t}")
        for combo in itertools.product(*(fractions[e] for e in given)):
            rest = 1.0 - sum(combo)
            if rest < -1e-12:
                continue
            values = dict(zip(given, combo, strict=True))
            values[free[0]] = max(rest, 0.0)
            rows.append([values[e] for e in elements])
            temps.append(t)
    if not rows:
        raise ConfigError("no grid point has mole fractions summing to at most 1")
    return ConditionGrid(
        elements,
        torch.tensor(temps, dtype=torch.float64),
        torch.tensor(rows, dtype=torch.float64),
    )


def result_records(result: EquilibriumResult, given: Sequence[str] | None = None) -> list[dict]:
    """One JSON-ready dict per point: T, x (the `given` elements, default all), phases, mu."""
    names = list(given) if given is not None else list(result.elements)
    index = {e: i for i, e in enumerate(result.elements)}
    records: list[dict[str, Any]] = []
    for n, point in enumerate(result.points):
        mu = point.chemical_potentials.tolist()
        finite = all(math.isfinite(m) for m in mu)
        records.append(
            {
                "T": float(result.temperature[n]),
                "x": {e: float(result.bulk[n, index[e]]) for e in names},
                "converged": point.converged,
                "phases": point.phase_fractions() if point.converged else {},
                "mu": dict(zip(result.elements, mu, strict=True)) if finite else None,
                "unique_mu": point.unique_potentials,
                "gibbs": point.gibbs if math.isfinite(point.gibbs) else None,
                "reason": point.reason,
            }
        )
    return records

"""Temperature ranges of a database's Gibbs energy functions, per phase.

TDB functions and parameters are piecewise in T, each piece valid on [low, high). pycalphad
(and so matforge) extends the first and last pieces beyond the database's limits, so a
condition outside them is an extrapolation the assessment never covered. The range of a
phase is the intersection of the ranges of every parameter its model uses and of every
FUNCTION those reference.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

import symengine

if TYPE_CHECKING:
    from pycalphad import Database

Range = tuple[float, float]


class HasTemperatureRange(Protocol):
    """What the range check needs of a phase model (`PhaseModel` has it); a protocol, so
    that this module does not import `model`, which imports it."""

    @property
    def temperature_range(self) -> Range: ...


UNBOUNDED: Range = (0.0, math.inf)


class TemperatureRangeWarning(UserWarning):
    """A condition lies outside the temperature range of a phase's Gibbs energy functions."""


def _bounds(condition: symengine.Basic, temperature: symengine.Symbol) -> Range:
    """[low, high) of T from a condition such as And(T < 700, 298.15 <= T)."""
    low, high = 0.0, math.inf
    kind = type(condition).__name__
    if kind == "And":
        for part in condition.args:
            part_low, part_high = _bounds(part, temperature)
            low, high = max(low, part_low), min(high, part_high)
    elif kind in ("StrictLessThan", "LessThan"):
        left, right = condition.args
        if left == temperature and right.is_Number:
            high = float(right)
        elif right == temperature and left.is_Number:
            low = float(left)
    return low, high


def _piecewise_range(expr: symengine.Basic, temperature: symengine.Symbol) -> Range:
    if not isinstance(expr, symengine.Piecewise):
        return UNBOUNDED
    args = expr.args
    pieces = [
        _bounds(condition, temperature)
        for value, condition in zip(args[0::2], args[1::2], strict=True)
        if condition != symengine.true  # the "otherwise 0" fallback
    ]
    if not pieces:
        return UNBOUNDED
    return min(p[0] for p in pieces), max(p[1] for p in pieces)


def _intersect(ranges: Iterable[Range]) -> Range:
    low, high = UNBOUNDED
    for r_low, r_high in ranges:
        low, high = max(low, r_low), min(high, r_high)
    return low, high


def phase_temperature_range(db: Database, phase: str, species: Iterable[str]) -> Range:
    """Range over which every parameter of `phase` among `species`, and every function they
    reference (recursively), is defined by the database."""
    from pycalphad import variables as v

    temperature = v.T
    names = set(species) | {"VA", "*"}  # "*": any constituent
    phases = {phase}
    hints = db.phases[phase].model_hints if phase in db.phases else {}
    if "disordered_phase" in hints:
        phases.add(hints["disordered_phase"])
    ranges: list[Range] = []
    seen: set[str] = set()
    pending: list[symengine.Basic] = []
    for parameter in db._parameters.all():
        if parameter["phase_name"] not in phases:
            continue
        constituents = {
            str(getattr(s, "name", s))
            for sublattice in parameter["constituent_array"]
            for s in sublattice
        }
        if not constituents <= names:
            continue
        ranges.append(_piecewise_range(parameter["parameter"], temperature))
        pending.append(parameter["parameter"])
    while pending:
        expr = pending.pop()
        for symbol in getattr(expr, "free_symbols", ()):
            name = str(symbol)
            if name in seen or name not in db.symbols:
                continue
            seen.add(name)
            ranges.append(_piecewise_range(db.symbols[name], temperature))
            pending.append(db.symbols[name])
    return _intersect(ranges)


def warn_outside_ranges(
    models: Mapping[str, HasTemperatureRange],
    temperatures: Iterable[float],
    *,
    stacklevel: int = 4,
) -> None:
    """One TemperatureRangeWarning naming each phase with a temperature outside its range."""
    values = [float(t) for t in temperatures]
    if not values:
        return
    lowest, highest = min(values), max(values)
    outside = []
    for name, model in models.items():
        low, high = model.temperature_range
        if lowest < low or highest >= high:
            outside.append(f"{name} ({low:g}-{high:g} K)")
    if outside:
        span = f"{lowest:g}-{highest:g} K" if lowest != highest else f"{lowest:g} K"
        warnings.warn(
            f"T = {span} leaves the database's temperature range of the Gibbs energy of "
            f"{', '.join(outside)}; the first or last piece of each function is extrapolated "
            f"there (as pycalphad does)",
            TemperatureRangeWarning,
            stacklevel=stacklevel,
        )

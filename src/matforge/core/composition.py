"""Alloy compositions: parsing, normalization, and vectors over an ordered element list.

A `Composition` is an immutable mapping from element symbol to mole fraction; the fractions
are non-negative and sum to one. It parses the notations found in the alloy literature:

- equimolar shorthand: ``"CoCrFeMnNi"``
- relative amounts: ``"Al0.5CoCrFeNi"``, ``"Al0.25 Co1 Fe1 Ni1"`` (whitespace is ignored)
- atomic percent: ``"Co20Cr20Fe20Mn20Ni20"``
- groups: ``"(CoCrFeNi)94Ti2Al4"``, ``"[FeNi]0.8Cr0.2"``

Groups follow the alloy literature, not chemical formulas: a group's number is the amount of
the whole group, shared among its elements in their proportions inside the group. So
``(CoCrFeNi)94Ti2Al4`` is 94 at.% of equimolar CoCrFeNi (23.5 at.% each) plus 2 Ti and 4 Al,
whereas the chemical reading of ``(OH)2`` would multiply each element's amount by 2.

Optimizers work on the simplex through `to_vector` / `from_vector` (and the batched
`compositions_to_matrix`), which fix an element order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import total_ordering
from typing import Any, ClassVar

import numpy as np

from matforge.core.errors import CompositionError

# Fractions are compared after rounding to this many decimals, so that compositions that
# differ only by floating-point noise from normalization compare (and hash) equal.
_KEY_DECIMALS = 12
DEFAULT_FRACTION_TOL = 1e-6


def _periodic_table() -> frozenset[str]:
    from ase.data import chemical_symbols

    # chemical_symbols[0] is ASE's placeholder 'X', not an element.
    return frozenset(chemical_symbols[1:])


ELEMENTS: frozenset[str] = _periodic_table()

_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SYMBOL = re.compile(r"[A-Z][a-z]?")


def validate_element(symbol: str, context: str | None = None) -> str:
    """Return `symbol` if it is an element of the periodic table, else raise CompositionError."""
    if symbol in ELEMENTS:
        return symbol
    where = f" in {context!r}" if context is not None else ""
    hint = ""
    if symbol.capitalize() in ELEMENTS and symbol != symbol.capitalize():
        hint = f" (did you mean {symbol.capitalize()!r}?)"
    raise CompositionError(f"unknown element {symbol!r}{where}{hint}")


class _FormulaParser:
    """Recursive-descent parser: formula := group+ ; group := (symbol | '(' formula ')') number?"""

    _CLOSE: ClassVar[dict[str, str]] = {"(": ")", "[": "]"}

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> dict[str, float]:
        if not self.text.strip():
            raise CompositionError("empty formula: expected element symbols such as 'CoCrFeNi'")
        amounts = self._formula(closing=None)
        self._skip_space()
        if self.pos != len(self.text):
            self._unexpected("an element symbol or '('")
        return amounts

    def _skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _unexpected(self, expected: str) -> None:
        if self.pos >= len(self.text):
            found = "end of formula"
        else:
            found = f"character {self.text[self.pos]!r} at position {self.pos + 1}"
        raise CompositionError(f"unexpected {found} in {self.text!r}: expected {expected}")

    def _formula(self, closing: str | None) -> dict[str, float]:
        amounts: dict[str, float] = {}
        while True:
            self._skip_space()
            if self.pos >= len(self.text) or self.text[self.pos] == closing:
                break
            for symbol, amount in self._group().items():
                amounts[symbol] = amounts.get(symbol, 0.0) + amount
        if not amounts:
            self._unexpected("an element symbol")
        return amounts

    def _group(self) -> dict[str, float]:
        char = self.text[self.pos]
        if char in self._CLOSE:
            closing = self._CLOSE[char]
            self.pos += 1
            inner = self._formula(closing=closing)
            if self.pos >= len(self.text):
                raise CompositionError(f"unbalanced {char!r} in {self.text!r}: missing {closing!r}")
            self.pos += 1
            group_amount = self._number()
            inner_total = math.fsum(inner.values())
            if inner_total <= 0:
                raise CompositionError(
                    f"group ending at position {self.pos} in {self.text!r} has no positive amount"
                )
            return {symbol: group_amount * amount / inner_total for symbol, amount in inner.items()}
        match = _SYMBOL.match(self.text, self.pos)
        if match is None:
            expected = "an element symbol (symbols start with an upper-case letter, e.g. 'Fe')"
            self._unexpected(expected)
        assert match is not None
        symbol = validate_element(match.group(), context=self.text)
        self.pos = match.end()
        return {symbol: self._number()}

    def _number(self) -> float:
        self._skip_space()
        match = _NUMBER.match(self.text, self.pos)
        if match is None:
            return 1.0
        self.pos = match.end()
        return float(match.group())


def parse_formula(formula: str) -> dict[str, float]:
    """Parse a formula into (unnormalized) amounts per element, in order of appearance."""
    if not isinstance(formula, str):
        raise CompositionError(f"a formula must be a string, got {type(formula).__name__}")
    return _FormulaParser(formula).parse()


def _validated_amounts(amounts: Mapping[Any, Any], context: str) -> dict[str, float]:
    result: dict[str, float] = {}
    for symbol, raw in amounts.items():
        if not isinstance(symbol, str):
            raise CompositionError(f"element keys must be strings, got {symbol!r} in {context}")
        validate_element(symbol, context=context)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise CompositionError(
                f"amount of {symbol!r} must be a number, got {raw!r} in {context}"
            ) from None
        if not math.isfinite(value):
            raise CompositionError(f"amount of {symbol!r} must be finite, got {value} in {context}")
        if value < 0:
            raise CompositionError(
                f"amount of {symbol!r} must be non-negative, got {value} in {context}"
            )
        if value > 0:
            result[symbol] = value
    if not result:
        raise CompositionError(f"composition {context} has no positive amount")
    return result


@total_ordering
class Composition(Mapping[str, float]):
    """An immutable alloy composition: element symbol -> mole fraction (fractions sum to 1).

    ``Composition("Al0.5CoCrFeNi")`` and ``Composition({"Al": 0.5, "Co": 1, ...})`` take
    relative amounts in any scale and normalize them. Use `Composition.from_fractions` when
    the numbers are meant to be mole fractions already: it checks that they sum to one.
    Elements with a zero amount are dropped.
    """

    __slots__ = ("_fractions", "_key")

    def __init__(self, value: str | Mapping[str, float] | Composition) -> None:
        if isinstance(value, Composition):
            self._fractions: dict[str, float] = dict(value._fractions)
            self._key = value._key
            return
        if isinstance(value, str):
            amounts = _validated_amounts(parse_formula(value), context=repr(value))
        elif isinstance(value, Mapping):
            amounts = _validated_amounts(value, context=repr(dict(value)))
        else:
            raise CompositionError(
                f"a composition is a formula string or a mapping of element to amount, "
                f"got {type(value).__name__}"
            )
        total = math.fsum(amounts.values())
        self._fractions = {el: amounts[el] / total for el in sorted(amounts)}
        self._key = tuple((el, round(x, _KEY_DECIMALS)) for el, x in self._fractions.items())

    @classmethod
    def from_fractions(
        cls, fractions: Mapping[str, float], *, tol: float = DEFAULT_FRACTION_TOL
    ) -> Composition:
        """Build from mole fractions, which must lie in [0, 1] and sum to 1 within `tol`."""
        amounts = _validated_amounts(fractions, context=repr(dict(fractions)))
        for symbol, value in amounts.items():
            if value > 1 + tol:
                raise CompositionError(
                    f"mole fraction of {symbol!r} is {value}, above 1; pass relative amounts "
                    f"to Composition(...) instead of from_fractions"
                )
        total = math.fsum(amounts.values())
        if abs(total - 1.0) > tol:
            raise CompositionError(
                f"mole fractions {dict(fractions)!r} sum to {total:.10g}, not 1 (tolerance {tol:g})"
            )
        return cls(amounts)

    @classmethod
    def from_vector(
        cls,
        vector: Sequence[float] | np.ndarray,
        elements: Sequence[str],
        *,
        tol: float = DEFAULT_FRACTION_TOL,
    ) -> Composition:
        """Inverse of `to_vector`: mole fractions ordered as `elements`, summing to 1."""
        values = np.asarray(vector, dtype=float)
        if values.ndim != 1 or values.shape[0] != len(elements):
            raise CompositionError(
                f"vector of shape {values.shape} does not match {len(elements)} elements "
                f"{list(elements)}"
            )
        if len(set(elements)) != len(elements):
            raise CompositionError(f"element list {list(elements)} has duplicates")
        return cls.from_fractions(dict(zip(elements, values.tolist(), strict=True)), tol=tol)

    def to_vector(self, elements: Sequence[str]) -> np.ndarray:
        """Mole fractions ordered as `elements` (zero for absent ones), as float64."""
        missing = [el for el in self._fractions if el not in elements]
        if missing:
            raise CompositionError(
                f"{self.formula} contains {missing}, which the element list {list(elements)} "
                f"lacks; a vector over that list would drop them"
            )
        return np.array([self._fractions.get(el, 0.0) for el in elements], dtype=float)

    # Mapping protocol ---------------------------------------------------------------
    def __getitem__(self, symbol: str) -> float:
        return self._fractions[symbol]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fractions)

    def __len__(self) -> int:
        return len(self._fractions)

    # Identity and ordering -------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Composition):
            return self._key == other._key
        return NotImplemented

    def __lt__(self, other: object) -> bool:
        if isinstance(other, Composition):
            return self._key < other._key
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key)

    def isclose(self, other: Composition, *, atol: float = 1e-9) -> bool:
        """True when every element's fraction differs by at most `atol`."""
        symbols = set(self) | set(other)
        return all(abs(self.get(el, 0.0) - other.get(el, 0.0)) <= atol for el in symbols)

    # Views ------------------------------------------------------------------------------
    @property
    def elements(self) -> tuple[str, ...]:
        """Element symbols in alphabetical order."""
        return tuple(self._fractions)

    @property
    def fractions(self) -> dict[str, float]:
        """A copy of the mole fractions."""
        return dict(self._fractions)

    def atomic_percent(self) -> dict[str, float]:
        return {el: 100.0 * x for el, x in self._fractions.items()}

    @property
    def formula(self) -> str:
        """Amounts relative to the most abundant element, ones omitted: 'Al0.5CoCrFeNi'.

        Twelve significant digits, so that parsing the formula gives back this composition
        to within about 1e-11 in every fraction.
        """
        return self.to_string(digits=12)

    def to_string(self, digits: int = 4) -> str:
        """Formula with amounts relative to the most abundant element, `digits` significant."""
        largest = max(self._fractions.values())
        parts = []
        for el, x in self._fractions.items():
            ratio = float(f"{x / largest:.{digits}g}")
            parts.append(el if ratio == 1.0 else f"{el}{ratio:.{digits}g}")
        return "".join(parts)

    def __str__(self) -> str:
        return self.formula

    def __repr__(self) -> str:
        return f"Composition({self.formula!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Composition, (self._fractions,))


def compositions_to_matrix(
    compositions: Iterable[Composition | str | Mapping[str, float]], elements: Sequence[str]
) -> np.ndarray:
    """Stack compositions into an (n, len(elements)) array of mole fractions."""
    rows = [Composition(c).to_vector(elements) for c in compositions]
    if not rows:
        return np.zeros((0, len(elements)))
    return np.vstack(rows)


def compositions_from_matrix(
    matrix: np.ndarray, elements: Sequence[str], *, tol: float = DEFAULT_FRACTION_TOL
) -> list[Composition]:
    """Inverse of `compositions_to_matrix`; each row must be on the simplex within `tol`."""
    values = np.asarray(matrix, dtype=float)
    if values.ndim != 2:
        raise CompositionError(f"expected a 2-D array of fractions, got shape {values.shape}")
    return [Composition.from_vector(row, elements, tol=tol) for row in values]

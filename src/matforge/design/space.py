"""Where alloy design searches: compositions over chosen elements, within bounds.

Each free element's mole fraction lies in [low, high]; fixed elements hold a set fraction;
all fractions sum to one. Points are handled as (n, d) tensors over `elements` (free and
fixed, in the order given), so a model sees whole compositions, and BoTorch's optimizers
get the same set as bounds plus one linear equality (`botorch_bounds`,
`equality_constraints`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from matforge.core.composition import Composition, validate_element
from matforge.core.errors import ConfigError
from matforge.core.simplex import check_bounds, project, sample_uniform

#: A design point this far outside its bounds or its sum still counts as inside.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class DesignSpace:
    """Compositions over `elements` with per-element bounds and fixed fractions."""

    elements: tuple[str, ...]
    #: (d, 2) lower and upper mole fraction of each element (fixed: equal bounds).
    limits: torch.Tensor

    @classmethod
    def from_bounds(
        cls,
        elements: Sequence[str],
        bounds: Mapping[str, tuple[float, float]] | None = None,
        fixed: Mapping[str, float] | None = None,
        default: tuple[float, float] = (0.0, 1.0),
    ) -> DesignSpace:
        """Bounds per element (`default` for those not named), some elements fixed.

        Raises ConfigError naming the element or the sums when the set is empty or a name
        is not one of `elements`.
        """
        elements = tuple(validate_element(e, "design space elements") for e in elements)
        if len(set(elements)) != len(elements):
            raise ConfigError(f"design space elements repeat: {list(elements)}")
        bounds, fixed = dict(bounds or {}), dict(fixed or {})
        for name, where in [*((b, "bounds") for b in bounds), *((f, "fixed") for f in fixed)]:
            if name not in elements:
                raise ConfigError(f"{where}: {name!r} is not one of the elements {list(elements)}")
        both = set(bounds) & set(fixed)
        if both:
            raise ConfigError(f"{sorted(both)} both bounded and fixed; give one")
        rows = []
        for e in elements:
            if e in fixed:
                rows.append((float(fixed[e]), float(fixed[e])))
            else:
                low, high = bounds.get(e, default)
                rows.append((float(low), float(high)))
        limits = torch.tensor(rows, dtype=torch.float64)
        check_bounds(limits[:, 0], limits[:, 1], 1.0, list(elements))
        return cls(elements, limits)

    @property
    def dimension(self) -> int:
        return len(self.elements)

    @property
    def free(self) -> tuple[int, ...]:
        """Indices of the elements that are not fixed."""
        return tuple(i for i, (lo, hi) in enumerate(self.limits.tolist()) if hi > lo)

    def contains(self, x: torch.Tensor, tol: float = TOLERANCE) -> torch.Tensor:
        """(n,) whether each row lies in the space (bounds and sum, within `tol`)."""
        x = torch.as_tensor(x, dtype=torch.float64).reshape(-1, self.dimension)
        inside = (x >= self.limits[:, 0] - tol) & (x <= self.limits[:, 1] + tol)
        return inside.all(dim=1) & ((x.sum(dim=1) - 1.0).abs() <= tol)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The nearest point of the space to each row of x (Euclidean)."""
        return project(torch.as_tensor(x, dtype=torch.float64), self.limits)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n compositions drawn uniformly from the space, shape (n, d)."""
        return sample_uniform(n, self.limits, generator=generator)

    def botorch_bounds(self) -> torch.Tensor:
        """(2, d) lower and upper bounds, as BoTorch's `optimize_acqf` takes them."""
        return self.limits.T.contiguous()

    def equality_constraints(self) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
        """sum of the free fractions = 1 - sum of the fixed, as BoTorch's (indices,
        coefficients, rhs)."""
        free = torch.tensor(self.free, dtype=torch.long)
        fixed_total = float(self.limits[:, 0].sum() - self.limits[free, 0].sum())
        return [(free, torch.ones(len(free), dtype=torch.float64), 1.0 - fixed_total)]

    def compositions(self, x: torch.Tensor) -> list[Composition]:
        """Rows of x as `Composition`s (fractions below 1e-12 dropped)."""
        return [
            Composition({e: v for e, v in zip(self.elements, row, strict=True) if v > 1e-12})
            for row in torch.as_tensor(x, dtype=torch.float64).tolist()
        ]

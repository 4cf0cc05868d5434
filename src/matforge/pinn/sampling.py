"""Geometry and collocation points: uniform grids, random draws and residual-based
adaptive resampling.

`resample_by_residual` is RAD (residual-based adaptive distribution, Wu et al., Comput.
Methods Appl. Mech. Eng. 403 (2023) 115671): from a dense pool of candidates, draw points
with probability p(x) proportional to |r(x)|^k / mean |r|^k + c, so that collocation
follows the residual where it is large (k > 0) while keeping a uniform floor (c > 0).
With k large and c = 0 it approaches RAR (add the worst points only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Box:
    """An axis-aligned box [low_i, high_i] in d dimensions (an interval when d = 1)."""

    low: Sequence[float]
    high: Sequence[float]

    def __post_init__(self) -> None:
        if len(self.low) != len(self.high) or not self.low:
            raise ValueError("low and high need the same, non-zero number of coordinates")
        if any(h <= lo for lo, h in zip(self.low, self.high, strict=True)):
            raise ValueError(f"every high must exceed its low, got {self.low}, {self.high}")

    @property
    def dim(self) -> int:
        return len(self.low)

    def _tensor(self, values: Sequence[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float64)

    def grid(self, points_per_axis: int | Sequence[int]) -> torch.Tensor:
        """Tensor-product grid including the faces, (n, d)."""
        counts = (
            [points_per_axis] * self.dim if isinstance(points_per_axis, int) else points_per_axis
        )
        axes = [
            torch.linspace(lo, hi, n, dtype=torch.float64)
            for lo, hi, n in zip(self.low, self.high, counts, strict=True)
        ]
        return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, self.dim)

    def random(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n points uniformly at random inside, (n, d)."""
        unit = torch.rand(n, self.dim, dtype=torch.float64, generator=generator)
        low, high = self._tensor(self.low), self._tensor(self.high)
        return low + unit * (high - low)

    def face(
        self, axis: int, side: str, n: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """n random points on the face where coordinate `axis` is at its low or high end."""
        if side not in ("low", "high"):
            raise ValueError(f"side must be 'low' or 'high', got {side!r}")
        points = self.random(n, generator)
        points[:, axis] = (self.low if side == "low" else self.high)[axis]
        return points


def resample_by_residual(
    candidates: torch.Tensor,
    residual: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    *,
    power: float = 1.0,
    floor: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """n of the candidates, drawn without replacement with probability proportional to
    |r|^power / mean |r|^power + floor (RAD). `residual` maps points (m, d) to one
    nonnegative value per point (e.g. the summed squared PDE residuals)."""
    if n > len(candidates):
        raise ValueError(f"cannot draw {n} points from {len(candidates)} candidates")
    strength = residual(candidates).detach().abs() ** power
    density = strength / strength.mean().clamp_min(1e-300) + floor
    if not torch.isfinite(density).all():
        raise FloatingPointError("the residual is not finite at some candidates")
    chosen = torch.multinomial(density, n, replacement=False, generator=generator)
    return candidates[chosen].detach()


def fraction_in(points: torch.Tensor, low: float, high: float, axis: int = 0) -> float:
    """Share of points whose coordinate `axis` lies in [low, high] (diagnostics, tests)."""
    inside = (points[:, axis] >= low) & (points[:, axis] <= high)
    return float(np.asarray(inside.double().mean()))

"""Loss terms as composable pieces, and the strategies that weight them.

A PINN loss is sum_i w_i mean(r_i^2) over terms i: data misfit, PDE residual, Dirichlet or
Neumann boundary, interface continuity. Each `LossTerm` evaluates its residual vector on
demand (so collocation points may change between steps); `CompositeLoss` adds them with
weights that a strategy may adapt:

- `FixedWeights`: the weights as given;
- `GradientNormWeights`: learning-rate annealing (Wang, Teng and Perdikaris, SIAM J. Sci.
  Comput. 43 (2021) A3055): every few steps each non-reference term's weight moves
  (exponential average) towards ||grad L_ref|| / ||grad L_i||, so that no term's gradient
  drowns the others; the reference terms (the PDE residuals) keep their weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

Kind = Literal["data", "pde", "dirichlet", "neumann", "interface"]


@dataclass
class LossTerm:
    name: str
    kind: Kind
    residual: Callable[[], torch.Tensor]
    weight: float = 1.0

    def value(self) -> torch.Tensor:
        r = self.residual()
        return (r**2).mean()


def interface_jump(
    field: Callable[[torch.Tensor], torch.Tensor],
    points: Callable[[], torch.Tensor],
    normal: torch.Tensor,
    offset: float,
    field_above: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Callable[[], torch.Tensor]:
    """Residual of continuity across an interface: above(p + offset n) - field(p - offset n)
    at the interface points p (n the unit normal towards the 'above' side; `field_above`
    defaults to `field`: give it where each side has its own law, e.g. its own modulus).
    For use in an 'interface' LossTerm."""
    above = field if field_above is None else field_above

    def residual() -> torch.Tensor:
        p = points()
        return above(p + offset * normal) - field(p - offset * normal)

    return residual


class FixedWeights:
    def update(self, terms: Sequence[LossTerm], parameters: Sequence[torch.Tensor]) -> None:
        return None


class GradientNormWeights:
    """Balance gradient norms against the PDE terms (see the module docstring)."""

    def __init__(
        self, every: int = 100, smoothing: float = 0.9, bounds: tuple[float, float] = (1e-3, 1e4)
    ) -> None:
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must lie in [0, 1), got {smoothing}")
        self.every, self.smoothing, self.bounds = every, smoothing, bounds

    def update(self, terms: Sequence[LossTerm], parameters: Sequence[torch.Tensor]) -> None:
        def norm(term: LossTerm) -> float:
            grads = torch.autograd.grad(term.value(), parameters, allow_unused=True)
            return float(torch.sqrt(sum((g**2).sum() for g in grads if g is not None)))

        reference = [t for t in terms if t.kind == "pde"]
        if not reference:
            raise ValueError("gradient-norm weighting needs at least one 'pde' term")
        target = sum(t.weight * norm(t) for t in reference)
        for term in terms:
            if term.kind == "pde":
                continue
            g = norm(term)
            if g == 0:
                continue
            ideal = min(max(target / g, self.bounds[0]), self.bounds[1])
            term.weight = self.smoothing * term.weight + (1 - self.smoothing) * ideal


@dataclass
class CompositeLoss:
    terms: list[LossTerm]
    weighting: FixedWeights | GradientNormWeights

    def __post_init__(self) -> None:
        names = [t.name for t in self.terms]
        if len(set(names)) != len(names):
            raise ValueError(f"loss term names must be unique, got {names}")

    def evaluate(self) -> tuple[torch.Tensor, dict[str, float]]:
        values = {t.name: t.value() for t in self.terms}
        total = sum(t.weight * values[t.name] for t in self.terms)
        return total, {name: float(v.detach()) for name, v in values.items()}

    def weights(self) -> dict[str, float]:
        return {t.name: t.weight for t in self.terms}

"""Layered elastic media: exact solutions and the sigmoid-smoothed layered modulus.

`LayeredBar` is a bar of n layers along x in [0, L], fixed at x = 0, pulled by a force P at
x = L and loaded by a uniform body force b per unit length. The axial force is
N(x) = P + b (L - x) and the displacement the closed form

    u(x) = integral_0^x N(s) / (A E(s)) ds,

piecewise quadratic with continuous displacement and axial force at the interfaces. It is
the ground truth of the 1D inverse problem and the reference a PINN is checked against.

`smoothed_modulus` writes a piecewise-constant property as a smooth function of position
with differentiable interface positions,

    E(y) = E_1 + sum_k (E_{k+1} - E_k) sigmoid((y - y_k) / w),

blending either the modulus ("modulus", right for layers loaded in parallel, whose
stiffness adds up) or the compliance 1/E ("compliance", right for layers loaded in series,
whose compliances add up): with the matching rule the integral that the load sees is
exact for any width w (the sigmoid's excess on one side of an interface cancels its
deficit on the other), with the other rule it is off by O(w).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

Blend = Literal["modulus", "compliance"]


def smoothed_modulus(
    y: torch.Tensor,
    moduli: torch.Tensor,
    interfaces: torch.Tensor,
    width: float | torch.Tensor,
    rule: Blend = "modulus",
) -> torch.Tensor:
    """E at positions y for n layers (moduli (n,)) separated at interfaces (n - 1,)."""
    if moduli.shape[-1] != interfaces.shape[-1] + 1:
        raise ValueError(
            f"{moduli.shape[-1]} moduli need {moduli.shape[-1] - 1} interfaces, got "
            f"{interfaces.shape[-1]}"
        )
    steps = torch.sigmoid((y[..., None] - interfaces) / width)  # (..., n - 1)
    if rule == "modulus":
        return moduli[0] + (steps * (moduli[1:] - moduli[:-1])).sum(dim=-1)
    if rule == "compliance":
        compliance = 1.0 / moduli
        return 1.0 / (compliance[0] + (steps * (compliance[1:] - compliance[:-1])).sum(dim=-1))
    raise ValueError(f"rule must be 'modulus' or 'compliance', got {rule!r}")


@dataclass
class NarrowingWidth:
    """The smoothing width during training: geometric from `start` to `end` over the Adam
    steps (wide early, so that interface positions feel the data from afar; sharp late),
    then held at `end` for L-BFGS. Pass `at_step` and `finish` to `training.train` as its
    hooks and read `value` in the loss."""

    start: float
    end: float
    steps: int

    def __post_init__(self) -> None:
        self.value = self.start

    def at_step(self, step: int) -> None:
        self.value = self.start * (self.end / self.start) ** (step / max(self.steps, 1))

    def finish(self) -> None:
        self.value = self.end


def check_layers(moduli: Sequence[float], interfaces: Sequence[float], extent: float) -> None:
    """n positive moduli and n - 1 interfaces increasing strictly inside (0, extent)."""
    if len(moduli) != len(interfaces) + 1:
        raise ValueError("n layers need n - 1 interfaces")
    if any(b <= a for a, b in itertools.pairwise([0.0, *interfaces, extent])):
        raise ValueError(f"interfaces must increase strictly inside (0, {extent})")
    if min(moduli) <= 0:
        raise ValueError("moduli must be positive")


@dataclass(frozen=True)
class LayeredBar:
    """n layers in series along a bar; lengths in m, moduli in Pa, forces in N."""

    moduli: Sequence[float]
    interfaces: Sequence[float]
    length: float = 1.0
    area: float = 1.0
    end_force: float = 1.0
    body_force: float = 0.0  # N per m, along +x

    def __post_init__(self) -> None:
        check_layers(self.moduli, self.interfaces, self.length)

    def axial_force(self, x: torch.Tensor) -> torch.Tensor:
        return self.end_force + self.body_force * (self.length - x)

    def _primitive(self, x: torch.Tensor) -> torch.Tensor:
        """integral_0^x N(s) ds."""
        return self.end_force * x + self.body_force * (self.length * x - 0.5 * x**2)

    def modulus(self, x: torch.Tensor) -> torch.Tensor:
        bounds = torch.tensor(self.interfaces, dtype=x.dtype)
        index = torch.bucketize(x, bounds, right=True)
        return torch.tensor(self.moduli, dtype=x.dtype)[index]

    def displacement(self, x: torch.Tensor) -> torch.Tensor:
        """Closed-form u(x), exact to rounding."""
        edges = torch.tensor([0.0, *self.interfaces, self.length], dtype=x.dtype)
        moduli = torch.tensor(self.moduli, dtype=x.dtype)
        u = torch.zeros_like(x)
        for k in range(len(self.moduli)):
            low, high = edges[k], edges[k + 1]
            upper = torch.clamp(x, min=low, max=high)
            span = self._primitive(upper) - self._primitive(low.expand_as(x))  # 0 below low
            u = u + span / (self.area * moduli[k])
        return u

    def end_displacement(self) -> float:
        return float(self.displacement(torch.tensor([self.length], dtype=torch.float64))[0])

"""Unknown physical quantities as named, bounded, trainable parameters."""

from __future__ import annotations

import math

import torch


class LogBoxParameter(torch.nn.Module):
    """Positive values in [low, high], log-uniform: value = low (high/low)^sigmoid(z)."""

    def __init__(self, name: str, low: float, high: float, initial: torch.Tensor) -> None:
        super().__init__()
        if not 0 < low < high:
            raise ValueError(f"{name}: bounds must satisfy 0 < low < high, got {low}, {high}")
        if (initial <= low).any() or (initial >= high).any():
            raise ValueError(f"{name}: initial values must lie strictly inside ({low}, {high})")
        self.name, self.low, self.high = name, low, high
        unit = torch.log(initial / low) / math.log(high / low)
        self.raw = torch.nn.Parameter(torch.logit(unit.to(torch.float64)))

    def forward(self) -> torch.Tensor:
        return self.low * (self.high / self.low) ** torch.sigmoid(self.raw)


class OrderedInterfaces(torch.nn.Module):
    """n - 1 interface positions in (0, length) with every layer at least `min_thickness`
    thick: thicknesses = t_min + (length - n t_min) softmax(z), interfaces = their cumsum.
    A layer cannot collapse or two interfaces swap, whatever the optimizer does."""

    def __init__(
        self,
        name: str,
        n_layers: int,
        length: float,
        min_thickness: float,
        initial: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if n_layers * min_thickness >= length:
            raise ValueError(
                f"{name}: {n_layers} layers of at least {min_thickness} exceed the length {length}"
            )
        self.name, self.n, self.length, self.min_thickness = name, n_layers, length, min_thickness
        if initial is None:
            raw = torch.zeros(n_layers, dtype=torch.float64)
        else:
            edges = torch.cat(
                [torch.zeros(1), initial.to(torch.float64).cpu(), torch.tensor([length])]
            ).to(torch.float64)
            free = (edges.diff() - min_thickness) / (length - n_layers * min_thickness)
            if (free <= 0).any():
                raise ValueError(f"{name}: initial layers thinner than {min_thickness}")
            raw = torch.log(free)
        self.raw = torch.nn.Parameter(raw)

    def thicknesses(self) -> torch.Tensor:
        free = self.length - self.n * self.min_thickness
        return self.min_thickness + free * torch.softmax(self.raw, dim=0)

    def forward(self) -> torch.Tensor:
        return torch.cumsum(self.thicknesses(), dim=0)[:-1]

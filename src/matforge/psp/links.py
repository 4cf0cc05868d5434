"""Differentiable links of a process -> structure -> property chain, and the chain itself.

A `Link` is a torch module that maps named quantities to named quantities: every tensor is
(batch,) and every name carries its unit (`Quantity`). Links compose into a `Chain` when
each link's inputs are among the chain's inputs or earlier links' outputs, so a link can be
trained alone on its own data and then composed, or the chain trained end to end.

Physical constraints are built into the architecture, so they hold for any input, also far
outside the training range:

- `ProcessStructureNet`: a neural network whose grain size is exp of a bounded number
  (always positive and finite, between `grain_bounds_um`) and whose phase fractions come
  from a softmax (non-negative, summing to one);
- `HallPetchLink`: sigma = sum_i f_i (sigma0_i + k_i d^-1/2), the constants given or learnt
  (kept positive by a softplus);
- `NeuralPropertyLink`: a network from log grain size and phase fractions, for when the
  physics is unknown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Quantity:
    name: str
    unit: str
    description: str = ""
    log_scale: bool = False  # enter networks as log10 (times, sizes spanning decades)


class Link(torch.nn.Module):
    """Named inputs to named outputs; subclasses set `inputs` and `outputs`."""

    inputs: tuple[Quantity, ...]
    outputs: tuple[Quantity, ...]

    def input_names(self) -> list[str]:
        return [q.name for q in self.inputs]

    def output_names(self) -> list[str]:
        return [q.name for q in self.outputs]

    def forward(self, values: Mapping[str, torch.Tensor]) -> Tensors:
        raise NotImplementedError


def _mlp(n_in: int, n_out: int, hidden: Sequence[int]) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [torch.nn.Linear(width, h, dtype=torch.float64), torch.nn.Tanh()]
        width = h
    layers.append(torch.nn.Linear(width, n_out, dtype=torch.float64))
    return torch.nn.Sequential(*layers)


class Standardizer(torch.nn.Module):
    """(x - mean) / std with statistics of the training inputs (log10 where asked)."""

    def __init__(self, quantities: Sequence[Quantity]) -> None:
        super().__init__()
        self.logs = [q.log_scale for q in quantities]
        self.register_buffer("mean", torch.zeros(len(quantities), dtype=torch.float64))
        self.register_buffer("std", torch.ones(len(quantities), dtype=torch.float64))

    def raw(self, columns: Sequence[torch.Tensor]) -> torch.Tensor:
        parts = [torch.log10(c) if log else c for c, log in zip(columns, self.logs, strict=True)]
        return torch.stack(parts, dim=-1)

    def fit(self, columns: Sequence[torch.Tensor]) -> None:
        x = self.raw(columns)
        self.mean.copy_(x.mean(dim=0))
        self.std.copy_(x.std(dim=0).clamp_min(1e-12))

    def forward(self, columns: Sequence[torch.Tensor]) -> torch.Tensor:
        return (self.raw(columns) - self.mean) / self.std


class ProcessStructureNet(Link):
    """Process variables -> grain size (exp of a bounded output) and phase fractions."""

    def __init__(
        self,
        process: Sequence[Quantity],
        phases: Sequence[str],
        *,
        hidden: Sequence[int] = (32, 32),
        grain_bounds_um: tuple[float, float] = (0.01, 1e5),
    ) -> None:
        super().__init__()
        if len(phases) < 1:
            raise ValueError("at least one phase is needed")
        self.inputs = tuple(process)
        self.phases = tuple(phases)
        self.outputs = (
            Quantity("grain_size_um", "um", "mean grain size"),
            *(Quantity(f"fraction_{p}", "1", f"phase fraction of {p}") for p in self.phases),
        )
        self.scale = Standardizer(self.inputs)
        self.net = _mlp(len(self.inputs), 1 + len(self.phases), hidden)
        low, high = grain_bounds_um
        self.log_low, self.log_high = math.log(low), math.log(high)

    def forward(self, values: Mapping[str, torch.Tensor]) -> Tensors:
        z = self.net(self.scale([values[q.name] for q in self.inputs]))
        # exp of a number confined to [log low, log high]: positive and finite everywhere.
        log_d = self.log_low + (self.log_high - self.log_low) * torch.sigmoid(z[..., 0])
        out = {"grain_size_um": torch.exp(log_d)}
        fractions = torch.softmax(z[..., 1:], dim=-1)
        for k, phase in enumerate(self.phases):
            out[f"fraction_{phase}"] = fractions[..., k]
        return out


def _inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value))


class HallPetchLink(Link):
    """sigma_y = sum_i f_i (sigma0_i + k_i d^-1/2); d in um, k in MPa m^1/2, sigma in MPa."""

    def __init__(
        self,
        phases: Sequence[str],
        *,
        sigma0: Sequence[float] | None = None,
        k: Sequence[float] | None = None,
        learnable: bool = True,
        output: str = "yield_strength_MPa",
    ) -> None:
        super().__init__()
        self.phases = tuple(phases)
        self.inputs = (
            Quantity("grain_size_um", "um", "mean grain size"),
            *(Quantity(f"fraction_{p}", "1") for p in self.phases),
        )
        self.outputs = (Quantity(output, "MPa", "yield strength"),)
        sigma0 = list(sigma0) if sigma0 is not None else [300.0] * len(self.phases)
        k = list(k) if k is not None else [0.5] * len(self.phases)
        if len(sigma0) != len(self.phases) or len(k) != len(self.phases):
            raise ValueError("sigma0 and k need one value per phase")
        if min(sigma0) <= 0 or min(k) <= 0:
            raise ValueError("Hall-Petch sigma0 and k must be positive")
        # Parameters in MPa/100 and MPa m^1/2 keep Adam's steps of similar size.
        raw_s = torch.tensor([_inverse_softplus(s / 100.0) for s in sigma0], dtype=torch.float64)
        raw_k = torch.tensor([_inverse_softplus(v) for v in k], dtype=torch.float64)
        self.raw_sigma0 = torch.nn.Parameter(raw_s, requires_grad=learnable)
        self.raw_k = torch.nn.Parameter(raw_k, requires_grad=learnable)

    @property
    def sigma0(self) -> torch.Tensor:
        return 100.0 * F.softplus(self.raw_sigma0)

    @property
    def k(self) -> torch.Tensor:
        return F.softplus(self.raw_k)

    def forward(self, values: Mapping[str, torch.Tensor]) -> Tensors:
        inverse_root = (values["grain_size_um"] * 1e-6) ** -0.5
        total = torch.zeros_like(inverse_root)
        for i, phase in enumerate(self.phases):
            total = total + values[f"fraction_{phase}"] * (
                self.sigma0[i] + self.k[i] * inverse_root
            )
        return {self.outputs[0].name: total}


class NeuralPropertyLink(Link):
    """A network from log10 grain size and phase fractions to the property."""

    def __init__(
        self,
        phases: Sequence[str],
        *,
        hidden: Sequence[int] = (32, 32),
        output: str = "yield_strength_MPa",
    ) -> None:
        super().__init__()
        self.phases = tuple(phases)
        self.inputs = (
            Quantity("grain_size_um", "um", "mean grain size", log_scale=True),
            *(Quantity(f"fraction_{p}", "1") for p in self.phases),
        )
        self.outputs = (Quantity(output, "MPa", "yield strength"),)
        self.scale = Standardizer(self.inputs)
        self.net = _mlp(len(self.inputs), 1, hidden)
        self.register_buffer("y_mean", torch.zeros((), dtype=torch.float64))
        self.register_buffer("y_std", torch.ones((), dtype=torch.float64))

    def forward(self, values: Mapping[str, torch.Tensor]) -> Tensors:
        z = self.net(self.scale([values[q.name] for q in self.inputs]))[..., 0]
        return {self.outputs[0].name: self.y_mean + self.y_std * z}


class Chain(torch.nn.Module):
    """Links applied in order; returns every quantity (inputs and all outputs)."""

    def __init__(self, links: Sequence[Link]) -> None:
        super().__init__()
        self.links = torch.nn.ModuleList(links)
        known: set[str] = set()
        produced: set[str] = set()
        for index, link in enumerate(links):
            for name in link.input_names():
                if name not in produced:
                    known.add(name)
            overlap = produced & set(link.output_names())
            if overlap:
                raise ValueError(f"link {index} produces {sorted(overlap)} again")
            produced |= set(link.output_names())
        self.inputs = tuple(sorted(known))
        self.outputs = tuple(produced)

    def forward(self, values: Mapping[str, torch.Tensor]) -> Tensors:
        missing = [n for n in self.inputs if n not in values]
        if missing:
            raise KeyError(f"chain inputs missing: {missing}")
        state = dict(values)
        for link in self.links:
            state.update(link(state))
        return state

"""The synthesis-planning problem: operations, process noise, reward and the state grid.

A `PlanningProblem` is everything the environment, the exact solver and the agents share:

- `operations`: the discrete action set (heat treatments at T for t, cold rolling to a
  strain, stop), each with a cost (energy of the furnace, (T - 293 K) x hours x
  `heat_cost`, or `roll_cost` x strain);
- process noise: the furnace temperature is off by -s, 0, +s K and the time by a
  factor 1 - v, 1, 1 + v, independently, with probabilities 1/6, 2/3, 1/6 each for
  s = sqrt(3) sigma_T and v = sqrt(3) sigma_t: the three-point distribution with a
  Gaussian's mean and variance (Gauss-Hermite), so expectations over the noise are exact
  finite sums (9 outcomes per action);
- reward, given at the end of the episode (stop, or the horizon): 1 inside the target
  window |sigma_y - target| <= window, else -|sigma_y - target| / scale; minus
  `ductility_penalty` if the ductility proxy is below `min_ductility`, minus
  `overage_penalty` if the alloy is over-aged (precipitation complete, 90% of its
  fraction at 443 K, and the radius past the shearing/Orowan crossing),
  minus `grain_penalty` if the grain size leaves [grain_min, grain_max]; and
  each operation's cost when it is applied;
- the grid of the discrete variant: after every operation the state is moved to the
  nearest grid point of each variable (log-spaced grain size, dislocation density and
  radius; linear precipitate fraction), so the discrete environment IS a finite MDP that
  value iteration solves exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch

from matforge.core.errors import ConfigError
from matforge.synthesis.process import ProcessModel

NOISE_WEIGHTS = (1 / 6, 2 / 3, 1 / 6)
LIMITS = {"temperature_k": (293.0, 818.0), "hours": (1e-3, 200.0), "strain": (0.0, 2.0)}


@dataclass(frozen=True)
class Operation:
    name: str
    kind: Literal["heat", "roll", "stop"]
    temperature_k: float = 293.0
    hours: float = 0.0
    strain: float = 0.0

    def __post_init__(self) -> None:
        where = f"operation {self.name!r}"
        if self.kind not in ("heat", "roll", "stop"):
            raise ConfigError(f"{where}: kind must be heat, roll or stop, got {self.kind!r}")
        if self.kind == "heat":
            low, high = LIMITS["temperature_k"]
            if not low <= self.temperature_k <= high:
                raise ConfigError(
                    f"{where}: temperature_k {self.temperature_k:g} is outside the range "
                    f"[{low:g}, {high:g}] K where the kinetics hold (solid alloy, below the "
                    "Al-Cu eutectic at 821 K)"
                )
            if not LIMITS["hours"][0] <= self.hours <= LIMITS["hours"][1]:
                raise ConfigError(f"{where}: hours must lie in [0.001, 200], got {self.hours:g}")
        if self.kind == "roll" and not 0 < self.strain <= LIMITS["strain"][1]:
            raise ConfigError(f"{where}: strain must lie in (0, 2], got {self.strain:g}")


DEFAULT_OPERATIONS = (
    Operation("stop", "stop"),
    Operation("solution treat 793 K 1 h", "heat", 793.0, 1.0),
    Operation("anneal 623 K 0.5 h", "heat", 623.0, 0.5),
    Operation("cold roll 0.3", "roll", strain=0.3),
    Operation("cold roll 0.7", "roll", strain=0.7),
    Operation("age 443 K 4 h", "heat", 443.0, 4.0),
    Operation("age 443 K 12 h", "heat", 443.0, 12.0),
    Operation("age 473 K 4 h", "heat", 473.0, 4.0),
)


@dataclass
class Grid:
    """Grid points of each state variable (grain m, rho m^-2, fraction, radius m)."""

    grain: torch.Tensor = field(
        default_factory=lambda: torch.logspace(
            math.log10(5e-6), math.log10(200e-6), 8, dtype=torch.float64
        )
    )
    dislocations: torch.Tensor = field(
        default_factory=lambda: torch.logspace(12, 15, 7, dtype=torch.float64)
    )
    fraction: torch.Tensor = field(
        default_factory=lambda: torch.linspace(0, 0.05, 6, dtype=torch.float64)
    )
    radius: torch.Tensor = field(
        default_factory=lambda: torch.logspace(-9, math.log10(3e-7), 9, dtype=torch.float64)
    )

    LOG = (True, True, False, True)

    def axes(self) -> list[torch.Tensor]:
        return [self.grain, self.dislocations, self.fraction, self.radius]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a) for a in self.axes())

    def index(self, states: torch.Tensor) -> torch.Tensor:
        """Nearest grid index per variable (n, 4), nearest in log for the log variables."""
        columns = []
        for column, (points, logarithmic) in enumerate(zip(self.axes(), self.LOG, strict=True)):
            value = states[:, column]
            if logarithmic:
                value, points = value.clamp(min=1e-300).log(), points.log()
            columns.append((value[:, None] - points[None, :]).abs().argmin(dim=1))
        return torch.stack(columns, dim=1)

    def values(self, index: torch.Tensor) -> torch.Tensor:
        return torch.stack([axis[index[:, i]] for i, axis in enumerate(self.axes())], dim=1)

    def snap(self, states: torch.Tensor) -> torch.Tensor:
        return self.values(self.index(states))

    def flat(self, index: torch.Tensor) -> torch.Tensor:
        flat = torch.zeros(index.shape[0], dtype=torch.long)
        for i, size in enumerate(self.shape):
            flat = flat * size + index[:, i]
        return flat

    def all_states(self) -> torch.Tensor:
        mesh = torch.meshgrid(*[torch.arange(n) for n in self.shape], indexing="ij")
        return self.values(torch.stack([m.flatten() for m in mesh], dim=1))


@dataclass
class PlanningProblem:
    operations: tuple[Operation, ...] = DEFAULT_OPERATIONS
    horizon: int = 5
    window_mpa: float = 15.0
    scale_mpa: float = 100.0
    min_ductility: float = 0.10
    ductility_penalty: float = 0.5
    overage_penalty: float = 0.3
    grain_min_m: float = 8e-6
    grain_max_m: float = 150e-6
    grain_penalty: float = 0.3
    heat_cost: float = 2e-5  # per K h
    roll_cost: float = 0.02  # per unit strain
    sigma_temperature_k: float = 5.0
    sigma_time: float = 0.1  # relative
    discrete: bool = True
    grid: Grid = field(default_factory=Grid)
    model: ProcessModel = field(default_factory=ProcessModel)

    def __post_init__(self) -> None:
        kinds = [op.kind for op in self.operations]
        if kinds.count("stop") != 1:
            raise ConfigError("operations: exactly one operation of kind 'stop' is needed")
        if self.horizon < 1:
            raise ConfigError(f"horizon must be at least 1, got {self.horizon}")

    @property
    def stop_action(self) -> int:
        return next(i for i, op in enumerate(self.operations) if op.kind == "stop")

    def furnace_noise(
        self, temperature_level: torch.Tensor, time_level: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Temperature offsets (K) and time factors of noise levels 0, 1, 2 (low, none,
        high), drawn with probabilities NOISE_WEIGHTS."""
        spread = math.sqrt(3)
        offsets = (temperature_level - 1).to(torch.float64) * spread * self.sigma_temperature_k
        factors = 1 + (time_level - 1).to(torch.float64) * spread * self.sigma_time
        return offsets, factors

    def noise_outcomes(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The 9 (temperature offset K, time factor, probability) outcomes."""
        levels = torch.arange(3)
        offsets, factors = self.furnace_noise(levels.repeat_interleave(3), levels.repeat(3))
        weights = torch.tensor(NOISE_WEIGHTS, dtype=torch.float64)
        return offsets, factors, torch.outer(weights, weights).flatten()

    @staticmethod
    def _parameters(operations) -> tuple[torch.Tensor, ...]:
        """Per operation: temperature K, hours, strain, is-heat, is-roll."""
        as_tensor = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
        return (
            as_tensor([op.temperature_k for op in operations]),
            as_tensor([op.hours for op in operations]),
            as_tensor([op.strain for op in operations]),
            torch.tensor([op.kind == "heat" for op in operations]),
            torch.tensor([op.kind == "roll" for op in operations]),
        )

    def _advance(self, states, parameters, offsets, factors) -> torch.Tensor:
        temperature, hours, strain, heat, roll = parameters
        heated = self.model.heat_treat(states, temperature + offsets, hours * 3600 * factors)
        rolled = self.model.cold_roll(states, strain)
        nxt = torch.where(heat[:, None], heated, torch.where(roll[:, None], rolled, states))
        return self.grid.snap(nxt) if self.discrete else nxt

    def transform(
        self,
        states: torch.Tensor,
        operations: list[Operation],
        offsets: torch.Tensor,
        factors: torch.Tensor,
    ) -> torch.Tensor:
        """Next states (n, 4): operations[i] (any, e.g. a continuous action) applied to
        states[i] under its noise; snapped to the grid in the discrete variant."""
        return self._advance(states, self._parameters(operations), offsets, factors)

    def apply(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        offsets: torch.Tensor,
        factors: torch.Tensor,
    ) -> torch.Tensor:
        """Next states (n, 4) for action indices (n,) under the given noise (n,) each."""
        table = self._parameters(self.operations)
        return self._advance(states, tuple(t[actions] for t in table), offsets, factors)

    def operation_cost(self, operation: Operation) -> float:
        if operation.kind == "heat":
            return self.heat_cost * (operation.temperature_k - 293.0) * operation.hours
        return self.roll_cost * operation.strain if operation.kind == "roll" else 0.0

    def costs(self, actions: torch.Tensor) -> torch.Tensor:
        table = torch.tensor(
            [self.operation_cost(op) for op in self.operations], dtype=torch.float64
        )
        return table[actions]

    def terminal_reward(self, states: torch.Tensor, target_mpa: torch.Tensor) -> torch.Tensor:
        properties = self.model.properties(states)
        miss = (properties["yield_strength_MPa"] - target_mpa).abs()
        reward = torch.where(miss <= self.window_mpa, torch.ones_like(miss), -miss / self.scale_mpa)
        reward = reward - self.ductility_penalty * (properties["ductility"] < self.min_ductility)
        grain, _, fraction, radius = states.unbind(-1)
        # over-aged: precipitation complete (90% of the fraction at 443 K) and the radius past
        # the shearing/Orowan crossing, so further ageing only loses strength
        complete = 0.9 * float(
            self.model.equilibrium_fraction(torch.tensor(443.0, dtype=torch.float64))
        )
        overaged = (fraction >= complete) & (radius > self.model.peak_radius())
        reward = reward - self.overage_penalty * overaged
        outside = (grain < self.grain_min_m) | (grain > self.grain_max_m)
        return reward - self.grain_penalty * outside

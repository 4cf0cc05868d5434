"""`ProcessingEnv`: the synthesis-planning problem as a Gymnasium environment.

Observation (float32, 7 values): grain size (um), log10 of the dislocation density
(m^-2), precipitate volume fraction (-), precipitate radius (nm), yield strength of the
current state (MPa), operations left in the episode, target yield strength (MPa). The
target is part of the observation, so one policy serves many targets (goal-conditioned).

Actions: discrete variant, the index of one of `problem.operations`; continuous variant
(`problem.discrete = False`), a Box of 4 in [-1, 1] (SB3's recommended scaling), mapped
linearly to: operation kind in [0, 3) (floor: 0 stop, 1 heat treat, 2 cold roll),
temperature 293-818 K, log10 of the time in hours -1 to 1.5, true strain 0.05-1.
Rewards: operation costs as they are applied and the
terminal reward at the end (`planning.PlanningProblem`). All randomness (start target when
none is given, process noise) comes from the generator seeded by `reset(seed=...)`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from matforge.synthesis.planning import NOISE_WEIGHTS, Operation, PlanningProblem

START_STATE = (50e-6, 1e12, 0.04, 2e-7)  # O temper: coarse grains, annealed, coarse theta
OBSERVATION_LOW = np.array([0, 10, 0, 0, 0, 0, 0], dtype=np.float32)
OBSERVATION_HIGH = np.array([1000, 16, 0.1, 1000, 2000, 100, 2000], dtype=np.float32)


def observe(
    problem: PlanningProblem, states: torch.Tensor, steps_left: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Batched observations (n, 7), float64 (the env casts to float32)."""
    strength = problem.model.properties(states)["yield_strength_MPa"]
    return torch.stack(
        [
            states[:, 0] * 1e6,
            states[:, 1].log10(),
            states[:, 2],
            states[:, 3] * 1e9,
            strength,
            steps_left.to(torch.float64),
            target,
        ],
        dim=1,
    )


class ProcessingEnv(gym.Env):
    metadata = {"render_modes": []}  # noqa: RUF012 (Gymnasium's class attribute)

    def __init__(
        self,
        problem: PlanningProblem | None = None,
        *,
        targets_mpa: tuple[float, ...] = (250.0, 300.0, 350.0),
        start_state: tuple[float, float, float, float] = START_STATE,
    ) -> None:
        super().__init__()
        self.problem = problem or PlanningProblem()
        self.targets = tuple(float(t) for t in targets_mpa)
        self.start = torch.tensor([start_state], dtype=torch.float64)
        if self.problem.discrete:
            self.start = self.problem.grid.snap(self.start)
            self.action_space = spaces.Discrete(len(self.problem.operations))
        else:
            self.action_space = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        self.observation_space = spaces.Box(OBSERVATION_LOW, OBSERVATION_HIGH, dtype=np.float32)
        self.state = self.start.clone()
        self.steps_left = self.problem.horizon
        self.target = self.targets[0]

    def _observation(self) -> np.ndarray:
        values = observe(
            self.problem,
            self.state,
            torch.tensor([self.steps_left]),
            torch.tensor([self.target], dtype=torch.float64),
        )
        return values[0].numpy().astype(np.float32).clip(OBSERVATION_LOW, OBSERVATION_HIGH)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        self.state = self.start.clone()
        if "start_state" in options:
            self.state = torch.tensor([options["start_state"]], dtype=torch.float64)
            if self.problem.discrete:
                self.state = self.problem.grid.snap(self.state)
        target = options.get("target_mpa")
        self.target = (
            float(target) if target is not None else float(self.np_random.choice(self.targets))
        )
        self.steps_left = self.problem.horizon
        return self._observation(), {}

    def _operation(self, action: Any) -> Operation:
        if self.problem.discrete:
            return self.problem.operations[int(action)]
        unit = (np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0) + 1.0) / 2.0  # [0, 1]
        selector = min(int(unit[0] * 3), 2)
        if selector == 0:
            return Operation("stop", "stop")
        if selector == 1:
            kelvin = 293.0 + unit[1] * (818.0 - 293.0)
            return Operation("heat", "heat", float(kelvin), float(10 ** (-1 + 2.5 * unit[2])))
        return Operation("roll", "roll", strain=float(0.05 + 0.95 * unit[3]))

    def step(self, action: Any):
        operation = self._operation(action)
        problem = self.problem
        reward = 0.0
        if operation.kind != "stop":
            temperature_level = self.np_random.choice(3, p=NOISE_WEIGHTS)
            time_level = self.np_random.choice(3, p=NOISE_WEIGHTS)
            offset, factor = problem.furnace_noise(
                torch.tensor([temperature_level]), torch.tensor([time_level])
            )
            self.state = problem.transform(self.state, [operation], offset, factor)
            reward -= problem.operation_cost(operation)
            self.steps_left -= 1
        done = operation.kind == "stop" or self.steps_left == 0
        if done:
            reward += float(
                problem.terminal_reward(
                    self.state, torch.tensor([self.target], dtype=torch.float64)
                )[0]
            )
        info = {"operation": operation.name} | {
            k: float(v[0]) for k, v in problem.model.properties(self.state).items()
        }
        return self._observation(), reward, done, False, info

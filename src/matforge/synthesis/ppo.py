"""Stable-Baselines3 PPO on the same environment (extra `rl`), for comparison."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from matforge.core.errors import ConfigError
from matforge.synthesis.env import ProcessingEnv
from matforge.synthesis.evaluation import Policy
from matforge.synthesis.planning import PlanningProblem


def train_ppo(
    problem: PlanningProblem, targets: Sequence[float], steps: int, *, seed: int = 0
) -> tuple[Policy, float]:
    """PPO with SB3's defaults (MlpPolicy) for `steps` environment steps; returns the
    greedy policy and the training time."""
    try:
        from stable_baselines3 import PPO
    except ImportError:
        raise ConfigError("PPO needs stable-baselines3: pip install -e '.[rl]'") from None
    env = ProcessingEnv(problem, targets_mpa=tuple(targets))
    env.reset(seed=seed)
    start = time.perf_counter()
    model = PPO("MlpPolicy", env, seed=seed, verbose=0, device="cpu")
    model.learn(total_timesteps=int(steps))
    seconds = time.perf_counter() - start

    def act(observation: np.ndarray, _env: ProcessingEnv) -> int:
        action, _ = model.predict(observation, deterministic=True)
        return int(action)

    return act, seconds

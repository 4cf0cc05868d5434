"""Scoring policies on the discrete environment: mean return over fixed evaluation seeds,
target hit rate, and the route a policy plans with its spread over process noise."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from matforge.synthesis.env import ProcessingEnv
from matforge.synthesis.exact import Solution
from matforge.synthesis.planning import PlanningProblem

Policy = Callable[[np.ndarray, ProcessingEnv], int]


def greedy_network(policy) -> Policy:
    """A trained `PolicyNetwork` as a policy of the env's observations."""

    def act(observation: np.ndarray, _env: ProcessingEnv) -> int:
        tensor = torch.tensor(observation, dtype=torch.float64)[None]
        return int(policy.act(tensor)[0])

    return act


def tabular(solutions: dict[float, Solution], problem: PlanningProblem) -> Policy:
    """The value-iteration policy (for the target of the episode)."""

    def act(_observation: np.ndarray, env: ProcessingEnv) -> int:
        index = problem.grid.flat(problem.grid.index(env.state))
        return int(solutions[env.target].policy[env.steps_left, index])

    return act


def uniform_random(seed: int, actions: int) -> Policy:
    rng = np.random.default_rng(seed)
    return lambda _observation, _env: int(rng.integers(actions))


@dataclass
class Score:
    mean_return: float
    standard_error: float
    hit_rate: float  # final strength within the target window
    seconds: float


def evaluate(
    policy: Policy, problem: PlanningProblem, targets: Sequence[float], seeds: Sequence[int]
) -> Score:
    """Episodes for every (target, seed) pair on a fresh env; returns their statistics."""
    start = time.perf_counter()
    env = ProcessingEnv(problem, targets_mpa=tuple(targets))
    returns, hits = [], []
    for target in targets:
        for seed in seeds:
            observation, _ = env.reset(seed=int(seed), options={"target_mpa": target})
            total, done, _info = 0.0, False, {}
            while not done:
                observation, reward, done, _, _info = env.step(policy(observation, env))
                total += reward
            returns.append(total)
            strength = float(problem.model.properties(env.state)["yield_strength_MPa"][0])
            hits.append(abs(strength - target) <= problem.window_mpa)
    values = np.array(returns)
    return Score(
        float(values.mean()),
        float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0,
        float(np.mean(hits)),
        time.perf_counter() - start,
    )

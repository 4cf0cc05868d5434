"""The Gymnasium environment, the exact tabular solution, and the agents' rollouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from matforge.core.errors import ConfigError
from matforge.synthesis.env import START_STATE, ProcessingEnv
from matforge.synthesis.exact import bellman_residual, solve, tabulate
from matforge.synthesis.planning import Operation, PlanningProblem


@pytest.mark.parametrize("discrete", [True, False])
def test_env_passes_gymnasium_and_sb3_checks(discrete):
    env = ProcessingEnv(PlanningProblem(discrete=discrete))
    check_env(env, skip_render_check=True)
    sb3 = pytest.importorskip("stable_baselines3.common.env_checker", reason="extra 'rl'")
    sb3.check_env(ProcessingEnv(PlanningProblem(discrete=discrete)), warn=True)


def _episode(env: ProcessingEnv, seed: int, actions: list) -> list:
    observation, _ = env.reset(seed=seed)
    trace = [observation.tolist()]
    for action in actions:
        observation, reward, done, _, _ = env.step(action)
        trace.append((observation.tolist(), reward))
        if done:
            break
    return trace


def test_same_seed_same_episode_and_noise_matters():
    env = ProcessingEnv()
    plan = [1, 5, 6, 0]
    assert _episode(env, 7, plan) == _episode(ProcessingEnv(), 7, plan)
    outcomes = {str(_episode(env, seed, plan)) for seed in range(12)}
    assert len(outcomes) > 1  # the furnace noise changes the result


@pytest.fixture(scope="module")
def exact():
    problem = PlanningProblem()
    model = tabulate(problem)
    return problem, model, solve(model, 300.0)


def test_value_iteration_bellman_residual(exact):
    _, model, solution = exact
    assert bellman_residual(model, solution) < 1e-10


def test_optimal_policy_return_by_simulation_equals_its_value(exact):
    problem, _model, solution = exact
    env = ProcessingEnv(problem, targets_mpa=(300.0,))
    start = problem.grid.flat(problem.grid.index(torch.tensor([START_STATE], dtype=torch.float64)))
    value = float(solution.values[problem.horizon, start])
    returns = []
    for seed in range(300):
        env.reset(seed=seed)
        total, done, left = 0.0, False, problem.horizon
        while not done:
            index = problem.grid.flat(problem.grid.index(env.state))
            action = int(solution.policy[left, index])
            _, reward, done, _, _ = env.step(action)
            total += reward
            left -= 1
        returns.append(total)
    error = np.std(returns) / np.sqrt(len(returns))
    assert abs(np.mean(returns) - value) < 3 * error + 1e-9
    # and a wrong policy (always stop at once) is far worse than the optimum
    assert float(solution.terminal[start]) < value - 0.5


def test_bad_operations_are_named():
    with pytest.raises(ConfigError, match=r"operation 'hot'.*temperature_k 900 is outside"):
        Operation("hot", "heat", 900.0, 1.0)
    with pytest.raises(ConfigError, match=r"operation 'short'.*hours"):
        Operation("short", "heat", 500.0, -1.0)
    with pytest.raises(ConfigError, match="kind must be"):
        Operation("x", "forge")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="exactly one operation of kind 'stop'"):
        PlanningProblem(operations=(Operation("a", "heat", 500.0, 1.0),))

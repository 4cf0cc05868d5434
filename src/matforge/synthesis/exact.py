"""The exact reference: the discrete environment as a finite MDP, solved by backward
induction (value iteration over the remaining operations).

States are the grid points of `PlanningProblem.grid` x the operations left. The process
noise takes 9 values with known probabilities, so every transition probability is exact
(no sampling): P(s' | s, a) = sum of the weights of the noise outcomes that land on s'.
V_0(s) = R_T(s); V_k(s) = max(R_T(s) [stop], max_a -c(a) + sum_o w_o V_{k-1}(s'_o)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from matforge.synthesis.planning import PlanningProblem


@dataclass
class TabularModel:
    """Next-state indices (S, A, 9) and their probabilities (9,), action costs (A,)."""

    problem: PlanningProblem
    states: torch.Tensor  # (S, 4) grid states
    next_index: torch.Tensor
    weights: torch.Tensor
    costs: torch.Tensor


def tabulate(problem: PlanningProblem) -> TabularModel:
    if not problem.discrete:
        raise ValueError("the exact reference needs the discrete variant")
    states = problem.grid.all_states()
    count, actions = states.shape[0], len(problem.operations)
    offsets, factors, weights = problem.noise_outcomes()
    outcomes = offsets.numel()
    repeated = states.repeat_interleave(actions * outcomes, dim=0)
    action_ids = torch.arange(actions).repeat_interleave(outcomes).repeat(count)
    nxt = problem.apply(
        repeated, action_ids, offsets.repeat(count * actions), factors.repeat(count * actions)
    )
    index = problem.grid.flat(problem.grid.index(nxt)).reshape(count, actions, outcomes)
    return TabularModel(problem, states, index, weights, problem.costs(torch.arange(actions)))


@dataclass
class Solution:
    values: torch.Tensor  # (H + 1, S): V_k for k operations left
    policy: torch.Tensor  # (H + 1, S) best action index (stop where k = 0)
    terminal: torch.Tensor  # (S,)


def solve(model: TabularModel, target_mpa: float) -> Solution:
    problem = model.problem
    terminal = problem.terminal_reward(
        model.states, torch.full((model.states.shape[0],), float(target_mpa), dtype=torch.float64)
    )
    values = [terminal]
    stop = problem.stop_action
    policies = [torch.full_like(terminal, stop, dtype=torch.long)]
    for _ in range(problem.horizon):
        q = q_values(model, values[-1], terminal)
        best, action = q.max(dim=1)
        values.append(best)
        policies.append(action)
    return Solution(torch.stack(values), torch.stack(policies), terminal)


def q_values(
    model: TabularModel, next_values: torch.Tensor, terminal: torch.Tensor
) -> torch.Tensor:
    """Q_k(s, a) from V_{k-1}: (S, A); the stop column is the terminal reward."""
    expected = (next_values[model.next_index] * model.weights).sum(-1) - model.costs
    expected[:, model.problem.stop_action] = terminal
    return expected


def bellman_residual(model: TabularModel, solution: Solution) -> float:
    """max |V_k - max_a Q_k(V_{k-1})| over k and s, with Q recomputed state by state."""
    worst = 0.0
    for k in range(1, solution.values.shape[0]):
        for s in range(0, model.states.shape[0], max(1, model.states.shape[0] // 200)):
            best = float(solution.terminal[s])
            for a in range(len(model.problem.operations)):
                if a == model.problem.stop_action:
                    continue
                total = -float(model.costs[a])
                for o in range(model.weights.numel()):
                    total += float(model.weights[o]) * float(
                        solution.values[k - 1, model.next_index[s, a, o]]
                    )
                best = max(best, total)
            worst = max(worst, abs(best - float(solution.values[k, s])))
    return worst

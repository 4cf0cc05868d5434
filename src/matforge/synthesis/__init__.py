"""Synthesis planning with reinforcement learning.

kinetics: closed-form laws (grain growth, JMAK, recovery, Kocks-Mecking, LSW, strength
contributions). process: an Al-4Cu alloy through heat treatments and rolling. planning:
operations, process noise, reward and the state grid. env: the Gymnasium environment.
exact: the discrete environment as a finite MDP, solved by value iteration. reinforce:
the goal-conditioned REINFORCE planner. ppo: Stable-Baselines3 PPO on the same env.
evaluation and job: scores, routes and the `matforge plan` jobs.
"""

from matforge.synthesis.env import ProcessingEnv
from matforge.synthesis.exact import solve, tabulate
from matforge.synthesis.planning import Operation, PlanningProblem
from matforge.synthesis.process import AlloyConstants, ProcessModel
from matforge.synthesis.reinforce import ReinforceSettings, train_reinforce

__all__ = [
    "AlloyConstants",
    "Operation",
    "PlanningProblem",
    "ProcessModel",
    "ProcessingEnv",
    "ReinforceSettings",
    "solve",
    "tabulate",
    "train_reinforce",
]

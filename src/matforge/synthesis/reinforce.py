"""REINFORCE with a learned baseline and an entropy bonus, goal-conditioned.

The policy maps an observation (env.observe: state, operations left, target) to a
softmax over the discrete operations; a second small network predicts the return (the
baseline). Episodes are simulated in batches with the same transition and reward
functions the Gymnasium environment uses (`PlanningProblem.apply`, `terminal_reward`),
with process noise drawn from a seeded torch generator. Loss per episode:
-(G - b(s_t)) log pi(a_t | s_t) - beta H(pi(. | s_t)) + (G - b(s_t))^2, summed over its
steps (Williams, Mach. Learn. 8 (1992) 229; the baseline and entropy terms as in Sutton
and Barto, Reinforcement Learning, 2nd ed. 2018, ch. 13).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from matforge.core.progress import track
from matforge.synthesis.env import START_STATE, observe
from matforge.synthesis.planning import NOISE_WEIGHTS, PlanningProblem

# observation scaling: grain um, log10 rho, fraction, radius nm, strength, steps, target
_SHIFT = torch.tensor([50.0, 13.0, 0.025, 50.0, 250.0, 2.5, 300.0], dtype=torch.float64)
_SCALE = torch.tensor([50.0, 1.5, 0.025, 100.0, 150.0, 2.5, 100.0], dtype=torch.float64)


def normalize(observation: torch.Tensor) -> torch.Tensor:
    return ((observation.to(torch.float64) - _SHIFT) / _SCALE).to(torch.float32)


class PolicyNetwork(nn.Module):
    def __init__(self, actions: int, hidden: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(7, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh()
        )
        self.logits = nn.Linear(hidden, actions)
        self.value = nn.Sequential(nn.Linear(7, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = normalize(observation)
        return self.logits(self.body(x)), self.value(x)[:, 0]

    def act(
        self,
        observation: torch.Tensor,
        *,
        greedy: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        with torch.no_grad():
            logits, _ = self(observation)
            if greedy:
                return logits.argmax(dim=1)
            return torch.multinomial(logits.softmax(dim=1), 1, generator=generator)[:, 0]


@dataclass
class ReinforceSettings:
    episodes: int = 1_000_000
    batch: int = 1024
    learning_rate: float = 2e-3
    entropy: float = 0.1  # bonus weight, decayed linearly to entropy_final
    entropy_final: float = 0.001
    hidden: int = 128
    seed: int = 0
    max_seconds: float | None = None
    normalize_advantages: bool = True  # per batch, over the live steps


@dataclass
class TrainingResult:
    policy: PolicyNetwork
    curve: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    environment_steps: int = 0


def rollout(
    problem: PlanningProblem,
    choose,
    targets: torch.Tensor,
    generator: torch.Generator,
    start: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Batched episodes; `choose(observation) -> (actions, log_prob, entropy, value)`.

    Returns per step the log-probabilities, entropies, values, rewards and alive masks
    (H, n), and the total returns (n,).
    """
    n = targets.shape[0]
    state = (
        start if start is not None else torch.tensor([START_STATE], dtype=torch.float64)
    ).expand(n, 4)
    if problem.discrete:
        state = problem.grid.snap(state)
    alive = torch.ones(n, dtype=torch.bool)
    weights = torch.tensor(NOISE_WEIGHTS, dtype=torch.float64)
    records: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("log_prob", "entropy", "value", "reward", "alive")
    }
    for step in range(problem.horizon):
        steps_left = torch.full((n,), problem.horizon - step)
        actions, log_prob, entropy, value = choose(observe(problem, state, steps_left, targets))
        stopping = actions == problem.stop_action
        noise_t = torch.multinomial(weights, n, replacement=True, generator=generator)
        noise_s = torch.multinomial(weights, n, replacement=True, generator=generator)
        offsets, factors = problem.furnace_noise(noise_t, noise_s)
        nxt = problem.apply(state, actions, offsets, factors)
        state = torch.where((alive & ~stopping)[:, None], nxt, state)
        reward = -problem.costs(actions) * (~stopping)
        ending = alive & (stopping | (step == problem.horizon - 1))
        reward = reward + torch.where(
            ending, problem.terminal_reward(state, targets), torch.zeros_like(reward)
        )
        for key, item in zip(
            records, (log_prob, entropy, value, reward * alive, alive), strict=True
        ):
            records[key].append(item)
        alive = alive & ~stopping
    out = {k: torch.stack(v) for k, v in records.items()}
    out["return"] = out["reward"].sum(0)
    out["final_state"] = state
    return out


def train_reinforce(
    problem: PlanningProblem, targets: list[float], settings: ReinforceSettings | None = None
) -> TrainingResult:
    settings = settings or ReinforceSettings()
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    policy = PolicyNetwork(len(problem.operations), settings.hidden)
    optimizer = torch.optim.Adam(policy.parameters(), lr=settings.learning_rate)
    target_set = torch.tensor(targets, dtype=torch.float64)
    curve: list[dict[str, float]] = []
    start = time.perf_counter()
    batches = max(1, settings.episodes // settings.batch)
    steps = 0

    for index in track(range(batches), description="REINFORCE batches"):
        progress = index / max(1, batches - 1)
        beta = settings.entropy + (settings.entropy_final - settings.entropy) * progress
        chosen = target_set[torch.randint(len(targets), (settings.batch,), generator=generator)]

        def choose(observation: torch.Tensor):
            logits, value = policy(observation)
            distribution = torch.distributions.Categorical(logits=logits)
            actions = distribution.sample()
            return actions, distribution.log_prob(actions), distribution.entropy(), value

        episode = rollout(problem, choose, chosen, generator)
        alive = episode["alive"].to(torch.float32)
        # return-to-go from each step (rewards after a stop are zero)
        to_go = episode["reward"].flip(0).cumsum(0).flip(0).to(torch.float32)
        advantage = (to_go - episode["value"]).detach()
        if settings.normalize_advantages:
            live = alive > 0
            spread = advantage[live].std().clamp(min=1e-6)
            advantage = (advantage - advantage[live].mean()) / spread
        loss = (
            -(advantage * episode["log_prob"] * alive).sum(0).mean()
            - beta * (episode["entropy"] * alive).sum(0).mean()
            + ((to_go - episode["value"]) ** 2 * alive).sum(0).mean()
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += int(alive.sum())
        if index % 10 == 0 or index == batches - 1:
            curve.append(
                {
                    "episodes": (index + 1) * settings.batch,
                    "environment_steps": steps,
                    "mean_return": float(episode["return"].mean()),
                    "seconds": time.perf_counter() - start,
                }
            )
        if settings.max_seconds is not None and time.perf_counter() - start > settings.max_seconds:
            break
    return TrainingResult(policy, curve, time.perf_counter() - start, steps)

"""`matforge plan train|show`: train a goal-conditioned REINFORCE planner, score it
against the exact optimum, and show the route it plans for a start state and a target."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from matforge.core.config import JobConfig, StrictModel
from matforge.core.errors import ConfigError
from matforge.core.modelfile import load_record, save_record
from matforge.core.rundir import RunDirectory
from matforge.core.seeding import seed_everything
from matforge.synthesis.env import START_STATE, ProcessingEnv
from matforge.synthesis.evaluation import evaluate, greedy_network, tabular, uniform_random
from matforge.synthesis.exact import solve, tabulate
from matforge.synthesis.planning import DEFAULT_OPERATIONS, Operation, PlanningProblem
from matforge.synthesis.reinforce import PolicyNetwork, ReinforceSettings, train_reinforce

FORMAT = "matforge-synthesis-policy"
FORMAT_VERSION = 1


class OperationSpec(StrictModel):
    name: str
    kind: Literal["heat", "roll", "stop"]
    temperature_k: float = Field(293.0, description="heat: furnace temperature")
    hours: float = Field(0.0, description="heat: time at temperature")
    strain: float = Field(0.0, description="roll: true strain")

    @model_validator(mode="after")
    def _valid(self) -> OperationSpec:
        try:
            self.operation()
        except ConfigError as error:
            raise ValueError(str(error)) from None
        return self

    def operation(self) -> Operation:
        return Operation(self.name, self.kind, self.temperature_k, self.hours, self.strain)


class ProblemSpec(StrictModel):
    horizon: int = Field(5, ge=1, le=10)
    window_mpa: float = Field(15.0, gt=0)
    scale_mpa: float = Field(100.0, gt=0)
    min_ductility: float = Field(0.10, ge=0)
    ductility_penalty: float = Field(0.5, ge=0)
    overage_penalty: float = Field(0.3, ge=0)
    grain_min_m: float = Field(8e-6, gt=0)
    grain_max_m: float = Field(150e-6, gt=0)
    grain_penalty: float = Field(0.3, ge=0)
    heat_cost: float = Field(2e-5, ge=0, description="per K above 293 K and hour")
    roll_cost: float = Field(0.02, ge=0, description="per unit of true strain")
    sigma_temperature_k: float = Field(5.0, ge=0)
    sigma_time: float = Field(0.1, ge=0, lt=0.5)
    operations: list[OperationSpec] | None = Field(None, description="default: the Al-Cu set")

    def problem(self) -> PlanningProblem:
        values = self.model_dump(exclude={"operations"})
        operations = (
            tuple(spec.operation() for spec in self.operations)
            if self.operations
            else DEFAULT_OPERATIONS
        )
        return PlanningProblem(operations=operations, **values)


class TrainingSpec(StrictModel):
    targets_mpa: list[float] = Field([200, 225, 250, 275, 300, 325, 350], min_length=1)
    episodes: int = Field(1_000_000, ge=1)
    batch: int = Field(1024, ge=1)
    learning_rate: float = Field(2e-3, gt=0)
    entropy: float = Field(0.1, ge=0)
    entropy_final: float = Field(0.001, ge=0)
    hidden: int = Field(128, ge=4)
    max_seconds: float | None = Field(None, gt=0)


class EvaluationSpec(StrictModel):
    seeds: int = Field(100, ge=1, description="fixed evaluation seeds per target")
    held_out_targets_mpa: list[float] = Field([210, 240, 285, 315, 340])


class PlanConfig(JobConfig):
    problem: ProblemSpec = Field(default_factory=ProblemSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)


def train(config: PlanConfig) -> dict[str, Any]:
    seed_everything(config.seed)
    problem = config.problem.problem()
    spec = config.training
    settings = ReinforceSettings(
        episodes=spec.episodes,
        batch=spec.batch,
        learning_rate=spec.learning_rate,
        entropy=spec.entropy,
        entropy_final=spec.entropy_final,
        hidden=spec.hidden,
        seed=config.seed,
        max_seconds=spec.max_seconds,
    )
    result = train_reinforce(problem, list(spec.targets_mpa), settings)
    model = tabulate(problem)
    every = sorted(set(spec.targets_mpa) | set(config.evaluation.held_out_targets_mpa))
    solutions = {float(t): solve(model, float(t)) for t in every}
    seeds = range(10_000, 10_000 + config.evaluation.seeds)
    scores = {}
    for name, targets in (
        ("training", spec.targets_mpa),
        ("held_out", config.evaluation.held_out_targets_mpa),
    ):
        if not targets:
            continue
        scores[name] = {
            "reinforce": evaluate(greedy_network(result.policy), problem, targets, seeds),
            "optimal": evaluate(tabular(solutions, problem), problem, targets, seeds),
            "random": evaluate(
                uniform_random(config.seed, len(problem.operations)), problem, targets, seeds
            ),
        }
    return {"config": config, "problem": problem, "training": result, "scores": scores}


def gap_percent(scores: dict[str, Any]) -> float:
    """(optimal - agent) / (optimal - random), in percent."""
    optimal, agent, rand = (scores[k].mean_return for k in ("optimal", "reinforce", "random"))
    return 100.0 * (optimal - agent) / max(optimal - rand, 1e-12)


def write_train_run(result: dict[str, Any]) -> tuple[RunDirectory, dict[str, Any]]:
    from matforge.core.rundir import pyplot

    config: PlanConfig = result["config"]
    training = result["training"]
    run = RunDirectory.create(config.name, config.runs_dir)
    run.write_config(config)
    save_record(
        run.file("policy.pt"),
        FORMAT,
        FORMAT_VERSION,
        {
            "hidden": config.training.hidden,
            "actions": len(result["problem"].operations),
            "state": {k: v.detach().cpu() for k, v in training.policy.state_dict().items()},
        },
        overwrite=True,
    )
    metrics: dict[str, Any] = {
        "train_s": training.seconds,
        "environment_steps": training.environment_steps,
    }
    for name, scores in result["scores"].items():
        metrics[name] = {k: dataclasses.asdict(v) for k, v in scores.items()}
        metrics[name]["gap_to_optimal_pct"] = gap_percent(scores)
    run.write_metrics(metrics)
    import pandas as pd

    curve = pd.DataFrame(training.curve)
    run.write_table("learning_curve.csv", curve)
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5, 3.5))
    axis.plot(curve["episodes"], curve["mean_return"])
    axis.set_xlabel("episodes")
    axis.set_ylabel("mean return (batch)")
    figure.tight_layout()
    run.save_figure("learning_curve.png", figure)
    return run, metrics


def load_policy(run: str | Path) -> tuple[PolicyNetwork, PlanConfig]:
    from matforge.core.config import load_config

    run = Path(run)
    record = load_record(run / "policy.pt", FORMAT, FORMAT_VERSION, "synthesis policy")
    policy = PolicyNetwork(int(record.part("actions")), int(record.part("hidden")))
    policy.load_state_dict(record.part("state"))
    config = load_config(run / "config.yaml", PlanConfig)
    return policy, config


def parse_start(text: str | None) -> tuple[float, float, float, float]:
    """'grain_um,dislocations_m2,fraction,radius_nm' -> SI state; None: the O temper."""
    if text is None:
        return START_STATE
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or min(values) < 0 or values[0] <= 0 or values[1] <= 0 or values[3] <= 0:
        raise ConfigError(
            f"--start {text!r}: expected 4 numbers 'grain_um,dislocations_m2,fraction,radius_nm', "
            "e.g. '50,1e12,0.04,200'"
        )
    return (values[0] * 1e-6, values[1], values[2], values[3] * 1e-9)


def show(
    run: str | Path, target: float, start: str | None = None, samples: int = 200
) -> dict[str, Any]:
    """The greedy route from `start` for `target`, replayed under `samples` noise draws."""
    policy, config = load_policy(run)
    problem = config.problem.problem()
    state = parse_start(start)
    env = ProcessingEnv(problem, targets_mpa=(target,), start_state=state)
    routes, finals = [], []
    for seed in range(samples):
        observation, _ = env.reset(seed=seed, options={"target_mpa": target})
        steps, done, total = [], False, 0.0
        while not done:
            action = int(policy.act(torch.tensor(observation, dtype=torch.float64)[None])[0])
            observation, reward, done, _, info = env.step(action)
            total += reward
            steps.append(
                {
                    "operation": problem.operations[action].name,
                    "grain_um": float(env.state[0, 0]) * 1e6,
                    "dislocations_m2": float(env.state[0, 1]),
                    "precipitate_fraction": float(env.state[0, 2]),
                    "radius_nm": float(env.state[0, 3]) * 1e9,
                    "yield_strength_MPa": info["yield_strength_MPa"],
                    "ductility": info["ductility"],
                    "cost": float(problem.costs(torch.tensor([action]))[0]),
                }
            )
        routes.append(steps)
        finals.append((total, steps[-1]["yield_strength_MPa"]))
    # the most common sequence of operations, and the spread of its outcome over the noise
    names = [" > ".join(s["operation"] for s in r) for r in routes]
    common = max(set(names), key=names.count)
    chosen = [r for r, n in zip(routes, names, strict=True) if n == common]
    table = []
    for index in range(len(chosen[0])):
        rows = [r[index] for r in chosen]
        entry = {"step": index + 1, "operation": rows[0]["operation"]}
        for key in (
            "grain_um",
            "dislocations_m2",
            "precipitate_fraction",
            "radius_nm",
            "yield_strength_MPa",
            "ductility",
            "cost",
        ):
            values = np.array([row[key] for row in rows])
            entry[key] = float(values.mean())
            entry[f"{key}_std"] = float(values.std())
        table.append(entry)
    returns = np.array([f[0] for f in finals])
    strengths = np.array([f[1] for f in finals])
    return {
        "target_mpa": target,
        "route": table,
        "route_share": len(chosen) / samples,
        "mean_return": float(returns.mean()),
        "final_strength_MPa": float(strengths.mean()),
        "final_strength_std": float(strengths.std()),
        "hit_rate": float(np.mean(np.abs(strengths - target) <= problem.window_mpa)),
    }

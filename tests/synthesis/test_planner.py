"""REINFORCE learns, the job writes its run, `matforge plan` reports errors cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from matforge.cli import app
from matforge.core.config import load_config
from matforge.synthesis.evaluation import evaluate, greedy_network, tabular, uniform_random
from matforge.synthesis.exact import solve, tabulate
from matforge.synthesis.job import PlanConfig
from matforge.synthesis.planning import PlanningProblem
from matforge.synthesis.reinforce import ReinforceSettings, train_reinforce

EXAMPLE = Path(__file__).parents[2] / "examples" / "plan_alcu.yaml"
runner = CliRunner()


def test_example_config_is_valid():
    config = load_config(EXAMPLE, PlanConfig)
    assert config.problem.problem().horizon == 5


def test_reinforce_approaches_the_optimum_on_one_target():
    problem = PlanningProblem()
    torch.set_num_threads(1)
    result = train_reinforce(
        problem,
        [200.0],
        ReinforceSettings(episodes=30000, batch=256, hidden=64, learning_rate=3e-3),
    )
    solutions = {200.0: solve(tabulate(problem), 200.0)}
    seeds = range(40)
    agent = evaluate(greedy_network(result.policy), problem, [200.0], seeds).mean_return
    best = evaluate(tabular(solutions, problem), problem, [200.0], seeds).mean_return
    chance = evaluate(
        uniform_random(0, len(problem.operations)), problem, [200.0], seeds
    ).mean_return
    assert (best - agent) / (best - chance) < 0.1


def test_plan_train_and_show(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"name: tiny\nruns_dir: {tmp_path / 'runs'}\ntraining:\n  targets_mpa: [200]\n"
        "  episodes: 2048\n  batch: 512\n  hidden: 16\nevaluation:\n  seeds: 3\n"
        "  held_out_targets_mpa: [250]\n"
    )
    result = runner.invoke(app, ["plan", "train", str(config), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    run = Path(metrics["run"])
    assert {"policy.pt", "metrics.json", "learning_curve.png"} <= {p.name for p in run.iterdir()}
    assert (
        metrics["training"]["optimal"]["mean_return"]
        >= metrics["training"]["random"]["mean_return"]
    )
    result = runner.invoke(
        app, ["plan", "show", str(run), "--target", "250", "--samples", "5", "--json"]
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["route"]
    assert shown["route"][-1]["operation"]


def test_plan_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "problem:\n  operations:\n    - {name: stop, kind: stop}\n"
        "    - {name: hot, kind: heat, temperature_k: 950, hours: 1}\n"
    )
    result = runner.invoke(app, ["plan", "train", str(bad)])
    text = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "problem.operations.1" in text
    assert "temperature_k 950 is outside" in text
    negative = tmp_path / "negative.yaml"
    negative.write_text(
        "problem:\n  operations:\n    - {name: stop, kind: stop}\n"
        "    - {name: age, kind: heat, temperature_k: 450, hours: -2}\n"
    )
    assert "hours must lie in" in " ".join(
        runner.invoke(app, ["plan", "train", str(negative)]).output.split()
    )
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("problem:\n  operations:\n    - {name: x, kind: forge}\n")
    assert "kind" in runner.invoke(app, ["plan", "train", str(unknown)]).output
    result = runner.invoke(
        app, ["plan", "show", str(tmp_path), "--target", "300", "--start", "1,2"]
    )
    assert result.exit_code == 1


@pytest.mark.parametrize("text", ["50,1e12,0.04", "a,b,c,d", "-5,1e12,0.04,200"])
def test_bad_start_states(text):
    from matforge.core.errors import ConfigError
    from matforge.synthesis.job import parse_start

    with pytest.raises(ConfigError, match="expected 4 numbers"):
        parse_start(text)

"""The loop and `matforge design` on fast stand-ins (the CALPHAD path is in test_feasibility)."""

import json

import pytest
import torch
from typer.testing import CliRunner

from matforge.cli import app
from matforge.core.config import load_config
from matforge.core.errors import ConfigError
from matforge.design import (
    CallableOracle,
    DesignSpace,
    GPSurrogate,
    LoopSettings,
    TableOracle,
    run_loop,
)
from matforge.design.job import DesignJobConfig

ELEMENTS = ("Co", "Cr", "Fe", "Mn", "Ni")


class HalfSpaceFeasibility:
    """Feasible where x(Cr) <= 0.25: PoF is a steep logistic, second phase linear."""

    def probability(self, x):
        return torch.sigmoid((0.25 - x[..., 1]) * 200)

    def is_feasible(self, x):
        return x[..., 1] <= 0.25

    def second_phase_fraction(self, x):
        return (x[..., 1] - 0.25).clamp(min=0) * 4

    def soft_probability(self, x):
        return torch.exp(-(x[..., 1] - 0.25).clamp(min=0) / 0.01)

    def soft_second_phase_fraction(self, x):
        return self.second_phase_fraction(x)


def _objective(x):
    # Strongest towards Cr: the constraint binds at x(Cr) = 0.25.
    return 100 * x[:, 1] + 20 * x[:, 3] - 30 * (x[:, 0] - 0.2) ** 2, x[:, 1] <= 0.25


def _run(space, settings):
    oracle = CallableOracle(ELEMENTS, _objective)
    surrogate = lambda: GPSurrogate(ELEMENTS)  # noqa: E731
    return run_loop(space, oracle, surrogate, HalfSpaceFeasibility(), settings, show_progress=False)


@pytest.fixture(scope="module")
def space():
    return DesignSpace.from_bounds(ELEMENTS, default=(0.05, 0.35))


@pytest.mark.parametrize("strategy", ["ei-pof", "penalty", "ei", "random"])
def test_proposals_lie_on_the_simplex_within_bounds(space, strategy):
    settings = LoopSettings(
        strategy=strategy,
        budget=6,
        initial=4,
        batch_size=2,
        pool_size=200,
        local_candidates=16,
        seed=1,
    )
    history = _run(space, settings)
    x = history.inputs
    assert x.shape == (10, 5)
    assert torch.allclose(x.sum(1), torch.ones(10, dtype=torch.float64), atol=1e-9)
    assert bool(space.contains(x).all())
    assert len({tuple(r.tolist()) for r in x}) == 10


@pytest.mark.parametrize("strategy", ["ei-pof", "penalty", "ei"])
def test_refined_proposals_lie_on_the_simplex_within_bounds(space, strategy):
    settings = LoopSettings(
        strategy=strategy, budget=4, initial=4, pool_size=100, refine_iterations=15, seed=2
    )
    history = _run(space, settings)
    x = history.inputs[4:]
    assert bool(space.contains(x).all())
    assert len({tuple(r.tolist()) for r in history.inputs}) == 8
    # A pool of 100 points is coarse: the local search improves on most of its picks.
    assert sum(history.refined) >= 2, history.refined
    assert {"refined"} <= set(history.rows()[0])


def test_ei_pof_beats_random_on_a_binding_constraint(space):
    def best(strategy):
        settings = LoopSettings(strategy=strategy, budget=12, initial=4, pool_size=300, seed=0)
        h = _run(space, settings)
        return float(h.best_feasible_trace()[-1])

    # The optimum is 100*0.25 + 20*0.35 = 32 (Co at 0.2 is attainable with Cr 0.25, Mn 0.35).
    assert best("ei-pof") > best("random")
    assert best("ei-pof") > 31.0


def test_pool_based_design_only_picks_rows_of_the_table():
    g = torch.Generator().manual_seed(0)
    rows = torch.rand(60, 3, generator=g, dtype=torch.float64)
    rows = rows / rows.sum(1, keepdim=True)
    oracle = TableOracle(("Co", "Cr", "Ni"), rows, rows[:, 1] * 10)
    space = DesignSpace.from_bounds(("Co", "Cr", "Ni"))
    settings = LoopSettings(strategy="ei", budget=5, initial=4, seed=0)
    history = run_loop(
        space, oracle, lambda: GPSurrogate(("Co", "Cr", "Ni")), None, settings, show_progress=False
    )
    picked = oracle.index_of(history.inputs)
    assert len(set(picked.tolist())) == 9


def test_config_with_bounds_that_cannot_sum_to_one_is_rejected(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "elements: [Co, Cr, Fe, Mn, Ni]\n"
        "default_bounds: [0.25, 0.35]\n"
        "oracle: {kind: callable, function: 'math:fsum'}\n"
        "strategy: ei\n"
    )
    config = load_config(path, DesignJobConfig)
    with pytest.raises(ConfigError, match=r"lower bounds sum to 1\.25"):
        config.space()


def test_cli_design_with_a_table_oracle_writes_the_run(tmp_path):
    table = tmp_path / "alloys.csv"
    g = torch.Generator().manual_seed(2)
    rows = torch.rand(40, 3, generator=g, dtype=torch.float64)
    lines = ["Co,Cr,Ni,strength,label"] + [
        f"{a:.4f},{b:.4f},{c:.4f},{100 * b + 10 * a:.3f},alloy{i}"
        for i, (a, b, c) in enumerate(rows.tolist())
    ]
    table.write_text("\n".join(lines) + "\n")
    config = tmp_path / "pool.yaml"
    config.write_text(
        "name: pool\n"
        f"runs_dir: {tmp_path / 'runs'}\n"
        "elements: [Co, Cr, Ni]\n"
        f"oracle: {{kind: table, table: {table}, objective_column: strength}}\n"
        "strategy: ei\ninitial: 5\nbudget: 5\n"
    )
    result = CliRunner().invoke(app, ["design", str(config), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["evaluations"] == 10
    run = tmp_path / "runs"
    (folder,) = run.iterdir()
    for name in (
        "history.csv",
        "best_feasible.csv",
        "metrics.json",
        "convergence.png",
        "compositions.png",
        "predictions.csv",
    ):
        assert (folder / name).is_file(), name


def test_cli_rejects_bounds_that_cannot_sum_to_one(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "elements: [Co, Cr, Ni]\n"
        "bounds: {Co: [0.5, 0.6], Cr: [0.4, 0.5]}\n"
        "default_bounds: [0.2, 0.3]\n"
        f"oracle: {{kind: table, table: {tmp_path / 'none.csv'}}}\n"
        "strategy: ei\n"
    )
    result = CliRunner().invoke(app, ["design", str(config)])
    assert result.exit_code == 1
    assert "lower bounds sum to 1.1" in result.output


def test_table_with_a_missing_column_is_reported_by_file_and_column(tmp_path):
    from matforge.design.job import load_table_oracle

    table = tmp_path / "t.csv"
    table.write_text("Co,Ni,strength\n0.5,0.5,100\n")
    with pytest.raises(ConfigError, match=r"t\.csv.*missing column\(s\) \['Cr'\]"):
        load_table_oracle(table, ["Co", "Cr", "Ni"], "strength", None)
    table.write_text("Co,Cr,Ni,strength\n0.5,0.5,0,100\n0.2,0.3,0.5,abc\n")
    with pytest.raises(ConfigError, match="line 3"):
        load_table_oracle(table, ["Co", "Cr", "Ni"], "strength", None)


def test_best_feasible_lists_distinct_alloys():
    from matforge.design.job import DesignJobResult
    from matforge.design.loop import DesignHistory

    history = DesignHistory(("Co", "Ni"))
    x = torch.tensor([[0.5, 0.5], [0.501, 0.499], [0.3, 0.7], [0.1, 0.9]], dtype=torch.float64)
    values = torch.tensor([10.0, 9.9, 8.0, 20.0], dtype=torch.float64)
    feasible = torch.tensor([True, True, True, False])
    nan = torch.full((4,), float("nan"), dtype=torch.float64)
    history.add(x, values, feasible, 0, nan, nan, nan)
    config = DesignJobConfig(
        elements=["Co", "Ni"], oracle={"kind": "callable", "function": "m:f"}, strategy="ei"
    )
    best = DesignJobResult(config, history, None, None).best_feasible(3)
    assert [r["objective"] for r in best] == [10.0, 8.0]


def test_feasibility_column_is_parsed_strictly_as_booleans(tmp_path):
    from matforge.design.job import load_table_oracle

    table = tmp_path / "t.csv"
    table.write_text(
        "Co,Cr,Ni,strength,ok\n"
        "0.5,0.5,0,100,no\n"
        "0.2,0.3,0.5,110,False\n"
        "0.4,0.3,0.3,120,yes\n"
        "0.1,0.1,0.8,130,1\n"
    )
    oracle = load_table_oracle(table, ["Co", "Cr", "Ni"], "strength", "ok")
    # "no" and "False" are not True (a plain astype(bool) calls every non-empty string True).
    assert oracle.feasible.tolist() == [False, False, True, True]
    table.write_text(
        "Co,Cr,Ni,strength,ok\n0.5,0.5,0,100,no\n\n0.2,0.3,0.5,110,\n0.4,0.3,0.3,120,maybe\n"
    )
    # The blank line 3 counts: the empty cell is on line 4, "maybe" on line 5.
    with pytest.raises(ConfigError, match=r"t\.csv, lines 4, 5: column 'ok' must hold true/false"):
        load_table_oracle(table, ["Co", "Cr", "Ni"], "strength", "ok")
    table.write_text("Co,Cr,Ni,strength,ok\n0.5,0.5,0,100,no\n0.5,0.5,0,NaN,yes\n")
    with pytest.raises(ConfigError, match=r"line 3: column 'strength'"):
        load_table_oracle(table, ["Co", "Cr", "Ni"], "strength", "ok")


def test_loop_stops_early_when_the_best_feasible_stalls_and_says_why(space):
    settings = LoopSettings(
        strategy="ei-pof", budget=40, initial=4, pool_size=200, seed=0, stop_patience=4
    )
    history = _run(space, settings)
    n = len(history.x)
    assert n < 44, "the loop used the whole budget"
    assert history.stop_reason.startswith("stopped early")
    assert "last 4 evaluations" in history.stop_reason
    trace = history.best_feasible_trace()
    # The last 4 evaluations gained at most 0.1% over the best before them...
    assert float(trace[-1] - trace[-5]) <= 1e-3 * abs(float(trace[-5]))
    assert history.evaluations_without_improvement(1e-3) == 4
    # ...and with patience off the same run goes on to the budget.
    full = _run(space, LoopSettings(strategy="ei-pof", budget=12, initial=4, pool_size=200))
    assert len(full.x) == 16
    assert full.stop_reason == "budget of 12 evaluations used"

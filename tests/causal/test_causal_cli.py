"""`matforge causal fit|query|counterfactual` end to end, and its errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from matforge.causal.generator import ConfoundedAlloyGenerator
from matforge.causal.job import CausalConfig
from matforge.cli import app
from matforge.core.config import load_config

EXAMPLE = Path(__file__).parents[2] / "examples" / "causal_alloy.yaml"
runner = CliRunner()

GRAPH = """\
name: tiny
runs_dir: {runs}
nodes:
  Ni: {{mechanism: empirical}}
  anneal_K: {{mechanism: empirical}}
  fraction_beta: {{parents: [Ni], mechanism: polynomial, degree: 4, log: true}}
  grain_um: {{parents: [anneal_K], mechanism: polynomial, degree: 3, log: true}}
  strength_MPa:
    parents: [fraction_beta, grain_um]
    mechanism: hall-petch
    grain_size: grain_um
    balance_phase: matrix
confounded: [[Ni, anneal_K]]
effect: {{treatment: Ni, outcome: strength_MPa, range: [0.1, 0.4], points: 5}}
samples: 2000
"""


def _text(result) -> str:
    return " ".join(result.output.split())


def test_example_config_is_valid() -> None:
    config = load_config(EXAMPLE, CausalConfig)
    assert config.graph().observed == sorted(config.nodes, key=config.graph().nodes.index)


def test_fit_query_counterfactual(tmp_path: Path) -> None:
    data = ConfoundedAlloyGenerator().sample(400, seed=0)
    data.to_csv(tmp_path / "alloys.csv", index=False)
    (tmp_path / "graph.yaml").write_text(GRAPH.format(runs=tmp_path / "runs"))
    result = runner.invoke(
        app, ["causal", "fit", str(tmp_path / "graph.yaml"), str(tmp_path / "alloys.csv"), "--json"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    run = Path(metrics["run"])
    assert {"model.pt", "graph.png", "curve.png", "data.csv", "metrics.json"} <= {
        p.name for p in run.iterdir()
    }
    assert metrics["effect"]["backdoor_set"] in (["grain_um"], ["anneal_K"])
    assert metrics["nodes"]["strength_MPa"]["r2"] > 0.8
    result = runner.invoke(app, ["causal", "query", str(run), "--do", "Ni=0.3", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["node"]: r for r in json.loads(result.stdout)["nodes"]}
    assert rows["Ni"]["interventional_mean"] == 0.3
    # do(Ni) leaves the anneal temperature alone (exactly: its mean is the data's)
    assert rows["anneal_K"]["interventional_mean"] == rows["anneal_K"]["observational_mean"]
    result = runner.invoke(
        app, ["causal", "counterfactual", str(run), "--unit", "17", "--set", "Ni=0.25", "--json"]
    )
    assert result.exit_code == 0, result.output
    nodes = {r["node"]: r for r in json.loads(result.stdout)["nodes"]}
    assert nodes["Ni"]["counterfactual"] == 0.25
    assert nodes["grain_um"]["counterfactual"] == nodes["grain_um"]["factual"]
    assert nodes["strength_MPa"]["counterfactual"] != nodes["strength_MPa"]["factual"]
    # the same unit with the same Ni reproduces its observed values (abduction is exact)
    same = runner.invoke(
        app,
        [
            "causal",
            "counterfactual",
            str(run),
            "--unit",
            "17",
            "--set",
            f"Ni={float(data['Ni'].iloc[17])!r}",
            "--json",
        ],
    )
    for row in json.loads(same.stdout)["nodes"]:
        assert np.isclose(row["counterfactual"], row["factual"], rtol=1e-10)
    for args, message in (
        (["query", str(run), "--do", "Q=1"], "unknown node 'Q'"),
        (["counterfactual", str(run), "--unit", "999", "--set", "Ni=0.2"], "rows 0 to 399"),
        (["query", str(tmp_path), "--do", "Ni=1"], "not a run directory"),
    ):
        bad = runner.invoke(app, ["causal", *args])
        assert bad.exit_code == 1, bad.output
        assert message in _text(bad), bad.output


def test_bad_graphs_and_data_name_node_column_and_line(tmp_path: Path) -> None:
    data = ConfoundedAlloyGenerator().sample(50, seed=0)
    data.to_csv(tmp_path / "alloys.csv", index=False)
    good = GRAPH.format(runs=tmp_path / "runs")
    cases = {
        "cycle": (
            good.replace("Ni: {mechanism: empirical}", "Ni: {parents: [strength_MPa]}"),
            "cycle",
        ),
        "unknown parent": (
            good.replace("parents: [anneal_K]", "parents: [anneal_C]"),
            "node 'grain_um': parent 'anneal_C'",
        ),
        "missing column": (
            good.replace(
                "  Ni: {mechanism: empirical}\n",
                "  Ni: {mechanism: empirical}\n  Cr: {mechanism: empirical}\n",
            ),
            "no column for graph node(s) ['Cr']",
        ),
        "bad mechanism": (
            good.replace("grain_size: grain_um", "grain_size: d"),
            "grain_size",
        ),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.yaml"
        path.write_text(text)
        result = runner.invoke(app, ["causal", "fit", str(path), str(tmp_path / "alloys.csv")])
        assert result.exit_code == 1, (name, result.output)
        assert message in _text(result), (name, result.output)
    lines = (tmp_path / "alloys.csv").read_text().splitlines()
    lines[7] = lines[7].replace(lines[7].split(",")[1], "hot", 1)
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "graph.yaml").write_text(good)
    result = runner.invoke(
        app, ["causal", "fit", str(tmp_path / "graph.yaml"), str(tmp_path / "bad.csv")]
    )
    assert result.exit_code == 1
    assert "line 8" in _text(result), result.output
    assert "'anneal_K'" in _text(result), result.output

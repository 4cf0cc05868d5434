"""`matforge causal fit|query|counterfactual`: a graph file, a data file, a run directory.

The graph file (YAML) names each observed node with its parents and mechanism, the pairs
of nodes that share a hidden cause, and optionally a treatment/outcome pair to report on
(examples/causal_alloy.yaml). `fit` checks the graph against the data, fits the SCM node
by node and writes the run: config.yaml, model.pt, data.csv (the rows fitted, so units can
be named later), graph.png, metrics.json (per-node fit, the identification of the effect,
observational vs interventional curve) and curve.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from matforge.causal.estimation import adjusted_means, naive_means, polynomial
from matforge.causal.graph import CausalGraph
from matforge.causal.identification import find_backdoor_set, frontdoor_sets
from matforge.causal.mechanisms import (
    EmpiricalRoot,
    HallPetchMechanism,
    LogisticMechanism,
    Mechanism,
    MLPMechanism,
    PolynomialMechanism,
    mechanism_from_state,
)
from matforge.causal.scm import StructuralCausalModel, parse_intervention
from matforge.core.config import JobConfig, StrictModel
from matforge.core.errors import ConfigError
from matforge.core.modelfile import load_record, save_record
from matforge.core.rundir import RunDirectory
from matforge.core.seeding import seed_everything
from matforge.core.table import read_table

FORMAT, FORMAT_VERSION = "matforge.causal.scm", 1

__all__ = ["CausalConfig", "NodeSpec", "counterfactual", "fit", "load_run", "query"]


class NodeSpec(StrictModel):
    parents: list[str] = Field(default_factory=list)
    mechanism: Literal["empirical", "polynomial", "mlp", "hall-petch", "logistic"] = "polynomial"
    degree: int = Field(1, ge=1, le=5, description="polynomial degree (1: linear)")
    noise: Literal["gaussian", "empirical"] = "empirical"
    log: bool = Field(False, description="regress log(value): positive, multiplicative noise")
    hidden: list[int] = Field(default_factory=lambda: [16, 16])
    grain_size: str | None = Field(None, description="hall-petch: the grain-size parent (um)")
    balance_phase: str | None = Field(None, description="hall-petch: 1 - sum of fractions")

    @model_validator(mode="after")
    def _consistent(self) -> NodeSpec:
        if self.mechanism == "empirical" and self.parents:
            raise ValueError("an empirical mechanism is for root nodes (no parents)")
        if self.mechanism in ("mlp", "hall-petch", "logistic") and not self.parents:
            raise ValueError(f"a {self.mechanism} mechanism needs parents")
        if self.mechanism == "hall-petch" and self.grain_size not in self.parents:
            raise ValueError("hall-petch needs grain_size: the name of one of its parents")
        return self

    def build(self, node: str, seed: int) -> Mechanism:
        parents = tuple(self.parents)
        if self.mechanism == "empirical":
            return EmpiricalRoot(node)
        if self.mechanism == "polynomial":
            return PolynomialMechanism(
                node, parents, degree=self.degree, noise=self.noise, log=self.log
            )
        if self.mechanism == "mlp":
            return MLPMechanism(
                node, parents, hidden=tuple(self.hidden), noise=self.noise, log=self.log, seed=seed
            )
        if self.mechanism == "hall-petch":
            return HallPetchMechanism(
                node,
                parents,
                grain_size=self.grain_size or "",
                balance_phase=self.balance_phase,
                noise=self.noise,
            )
        return LogisticMechanism(node, parents)


class EffectSpec(StrictModel):
    treatment: str
    outcome: str
    range: tuple[float, float] = Field(description="treatment values to plot and compare")
    points: int = Field(21, ge=3, le=401)


class CausalConfig(JobConfig):
    name: str = "causal"
    nodes: dict[str, NodeSpec]
    confounded: list[tuple[str, str]] = Field(
        default_factory=list, description="pairs of root nodes that share a hidden cause"
    )
    latent: list[str] = Field(default_factory=list, description="named hidden nodes")
    effect: EffectSpec | None = None
    samples: int = Field(20000, ge=100, description="Monte-Carlo draws per interventional mean")

    def graph(self) -> CausalGraph:
        return CausalGraph.from_parents(
            {name: spec.parents for name, spec in self.nodes.items()},
            confounded=self.confounded,
            latent=self.latent,
        )

    def model(self) -> StructuralCausalModel:
        graph = self.graph()
        mechanisms = {name: spec.build(name, self.seed) for name, spec in self.nodes.items()}
        return StructuralCausalModel(graph, mechanisms)


def read_data(path: str | Path, config: CausalConfig) -> pd.DataFrame:
    """The graph's columns of a CSV file as floats; errors name the file, node and line."""
    table = read_table(path, min_rows=5)
    absent = [node for node in config.nodes if node not in table.columns]
    if absent:
        raise ConfigError(
            f"{path}: no column for graph node(s) {absent} (the graph's nodes must be columns "
            f"of the data); the file has {table.columns}"
        )
    return pd.DataFrame({node: table.numeric(node) for node in config.nodes})


def _fit_metrics(scm: StructuralCausalModel, data: pd.DataFrame) -> dict[str, Any]:
    rows = {}
    columns = scm._columns(data)
    for node in scm.graph.observed:
        mechanism = scm.mechanisms[node]
        entry: dict[str, Any] = {"mechanism": mechanism.kind, "parents": list(mechanism.parents)}
        if mechanism.parents and mechanism.invertible:
            predicted = mechanism.predict(scm._parents(node, columns, len(data))).detach()
            residual = columns[node] - predicted
            entry["residual_std"] = float(residual.std())
            entry["r2"] = float(1 - residual.var() / columns[node].var())
        if isinstance(mechanism, HallPetchMechanism):
            entry["constants"] = mechanism.constants()
        rows[node] = entry
    return rows


def _effect_report(
    config: CausalConfig, scm: StructuralCausalModel, data: pd.DataFrame
) -> dict[str, Any]:
    spec = config.effect
    assert spec is not None
    graph = scm.graph
    graph.check(spec.treatment, spec.outcome)
    adjustment = find_backdoor_set(graph, spec.treatment, spec.outcome)
    grid = np.linspace(*spec.range, spec.points)
    interventional = [
        scm.interventional_mean(spec.outcome, [f"{spec.treatment}={v}"], samples=config.samples)
        for v in grid
    ]
    report: dict[str, Any] = {
        "treatment": spec.treatment,
        "outcome": spec.outcome,
        "backdoor_set": sorted(adjustment) if adjustment is not None else None,
        "frontdoor_sets": [sorted(s) for s in frontdoor_sets(graph, spec.treatment, spec.outcome)],
        "grid": grid.tolist(),
        "interventional": [e.mean for e in interventional],
        "interventional_se": [e.standard_error for e in interventional],
        "observational": naive_means(
            data, spec.treatment, spec.outcome, grid, regressor=polynomial(3)
        ).tolist(),
    }
    if adjustment is not None:
        report["adjusted"] = adjusted_means(
            data, spec.treatment, spec.outcome, sorted(adjustment), grid, regressor=polynomial(3)
        ).tolist()
    return report


def fit(config: CausalConfig, data_path: str | Path) -> tuple[RunDirectory, dict[str, Any]]:
    """Fit the SCM of `config` to the CSV file and write the run directory."""
    seed_everything(config.seed)
    data = read_data(data_path, config)
    scm = config.model().fit(data)
    metrics: dict[str, Any] = {"rows": len(data), "nodes": _fit_metrics(scm, data)}
    if config.effect is not None:
        metrics["effect"] = _effect_report(config, scm, data)
    run = RunDirectory.create(config.name, config.runs_dir)
    run.write_config(config)
    states = {node: m.state() for node, m in scm.mechanisms.items()}
    save_record(run.file("model.pt"), FORMAT, FORMAT_VERSION, {"mechanisms": states})
    run.write_table("data.csv", data)
    run.write_metrics(metrics)
    scm.graph.draw(run.file("graph.png"), title=config.name)
    if config.effect is not None:
        _plot_curves(run, metrics["effect"])
    return run, metrics


def _plot_curves(run: RunDirectory, effect: dict[str, Any]) -> None:
    from matforge.core.rundir import pyplot

    plt = pyplot()
    figure, axes = plt.subplots(figsize=(5.5, 4))
    grid = effect["grid"]
    axes.plot(grid, effect["observational"], label="observational E[Y | X] (regression)")
    axes.plot(grid, effect["interventional"], label="interventional E[Y | do(X)] (SCM)")
    if "adjusted" in effect:
        adjusted = effect["adjusted"]
        label = f"backdoor adjustment on {effect['backdoor_set']}"
        axes.plot(grid, adjusted, linestyle="--", label=label)
    axes.set_xlabel(effect["treatment"])
    axes.set_ylabel(effect["outcome"])
    axes.legend(fontsize=7)
    figure.tight_layout()
    run.save_figure("curve.png", figure)


def load_run(run: str | Path) -> tuple[StructuralCausalModel, CausalConfig, pd.DataFrame]:
    from matforge.core.config import load_config

    run = Path(run)
    if not (run / "config.yaml").is_file() or not (run / "model.pt").is_file():
        raise ConfigError(
            f"{run}: not a run directory of 'causal fit' (it needs config.yaml and model.pt)"
        )
    config = load_config(run / "config.yaml", CausalConfig)
    record = load_record(run / "model.pt", FORMAT, FORMAT_VERSION, "causal model")
    states = record.part("mechanisms")
    mechanisms = {node: mechanism_from_state(states[node]) for node in config.nodes}
    scm = StructuralCausalModel(config.graph(), mechanisms)
    data = pd.read_csv(run / "data.csv")
    return scm, config, data


def query(
    run: str | Path, interventions: list[str], *, samples: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """Interventional means of every node beside the observational ones."""
    scm, config, data = load_run(run)
    actions = [parse_intervention(text) for text in interventions]
    if not actions:
        raise ConfigError("give at least one intervention, e.g. --do Ni=0.3")
    rows = []
    for node in scm.graph.observed:
        estimate = scm.interventional_mean(
            node, actions, samples=samples or config.samples, seed=seed
        )
        rows.append(
            {
                "node": node,
                "observational_mean": float(data[node].mean()),
                "interventional_mean": estimate.mean,
                "standard_error": estimate.standard_error,
                "exact": estimate.exact,
            }
        )
    return {"interventions": [str(a) for a in actions], "nodes": rows}


def counterfactual(run: str | Path, unit: int, interventions: list[str]) -> dict[str, Any]:
    """Unit `unit` (0-based row of the fitted data) as observed and under the interventions."""
    scm, _, data = load_run(run)
    if not 0 <= unit < len(data):
        raise ConfigError(f"--unit {unit}: the fitted data has rows 0 to {len(data) - 1}")
    row = data.iloc[[unit]]
    result = scm.counterfactual(row, [parse_intervention(t) for t in interventions])
    return {
        "unit": unit,
        "interventions": interventions,
        "nodes": [
            {
                "node": node,
                "factual": float(row[node].iloc[0]),
                "counterfactual": float(result[node].iloc[0]),
            }
            for node in scm.graph.observed
        ],
    }

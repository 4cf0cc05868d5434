"""`matforge design CONFIG.yaml`: settings, assembly of the pieces, and the run directory.

`DesignJobConfig` is the YAML schema (see examples/design_cantor.yaml); `run_design_job`
builds the design space, oracle, feasibility model and surrogate from it, runs the loop and
returns a `DesignJobResult`; `write_design_run` writes history.csv, best_feasible.csv,
predictions.csv, metrics.json and the plots (convergence, chosen compositions,
feasibility map on a 2D slice).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from matforge.core.config import JobConfig, StrictModel
from matforge.core.errors import ConfigError
from matforge.design.closed_loop import AtomisticOracle, AtomisticSettings
from matforge.design.feasibility import CalphadFeasibility
from matforge.design.loop import DesignHistory, LoopSettings, run_loop
from matforge.design.oracles import CallableOracle, SyntheticHEAOracle, TableOracle
from matforge.design.space import DesignSpace
from matforge.design.strength import VarvenneCurtin
from matforge.design.surrogates import Calibration, cross_validate, make_surrogate

Bounds = tuple[float, float]


class OracleConfig(StrictModel):
    kind: Literal["synthetic-hea", "table", "callable", "atomistic"] = "synthetic-hea"
    temperature: float = Field(300.0, gt=0, description="strength test temperature, K")
    strain_rate: float = Field(1e-3, gt=0, description="1/s")
    table: Path | None = Field(
        None, description="CSV (one column per element + objective), or 'mpea' (bundled)"
    )
    objective_column: str = "objective"
    feasible_column: str | None = None
    function: str | None = Field(None, description="'module:function' for kind callable")
    atomistic: AtomisticSettings | None = Field(
        None, description="kind atomistic: the learned potential, supercells and labeller"
    )


class FeasibilityConfig(StrictModel):
    database: str = Field(description="TDB file or bundled data set name")
    phases: list[str] | None = None
    phase: str = "FCC_A1"
    temperature: float = Field(1000.0, gt=0, description="K")
    temperature_sigma: float = Field(25.0, ge=0, description="K, spread for PoF")
    nodes: int = Field(3, ge=1, le=20, description="Gauss-Hermite nodes over T")


class SurrogateConfig(StrictModel):
    kind: Literal["gp", "ensemble"] = "gp"
    descriptors: list[str] = Field(default_factory=lambda: ["delta"])


class DesignJobConfig(JobConfig):
    elements: list[str] = Field(min_length=2)
    bounds: dict[str, Bounds] = Field(default_factory=dict, description="per element")
    default_bounds: Bounds = (0.0, 1.0)
    fixed: dict[str, float] = Field(default_factory=dict)
    oracle: OracleConfig = Field(default_factory=OracleConfig)
    feasibility: FeasibilityConfig | None = None
    surrogate: SurrogateConfig = Field(default_factory=SurrogateConfig)
    strategy: Literal["ei-pof", "penalty", "ei", "random"] = "ei-pof"
    budget: int = Field(40, ge=1, le=10_000)
    initial: int = Field(8, ge=2, le=10_000)
    batch_size: int = Field(1, ge=1, le=100)
    pool_size: int = Field(1000, ge=10, le=1_000_000)
    local_candidates: int = Field(48, ge=0, le=100_000)
    local_scale: float = Field(0.02, gt=0, le=0.5)
    beta: float = Field(4.0, ge=0)
    penalty_weight: float = Field(5.0, ge=0)
    refine_iterations: int = Field(
        0, ge=0, le=1000, description="SLSQP steps polishing each proposal; 0 = off"
    )
    stop_patience: int = Field(
        0,
        ge=0,
        le=10_000,
        description="stop after this many evaluations without improvement; 0 = use the budget",
    )
    stop_tolerance: float = Field(
        1e-3, ge=0, le=1, description="relative improvement of the best feasible that counts"
    )
    calibration_folds: int = Field(5, ge=2, le=50)
    top: int = Field(5, ge=1, le=1000, description="best feasible alloys to report")

    @model_validator(mode="after")
    def _consistent(self) -> DesignJobConfig:
        needs_feasibility = self.strategy in ("ei-pof", "penalty", "random")
        if needs_feasibility and self.feasibility is None:
            raise ValueError(f"strategy {self.strategy!r} needs a 'feasibility' section")
        if self.oracle.kind == "table" and self.oracle.table is None:
            raise ValueError("oracle.kind 'table' needs oracle.table (a CSV file)")
        if self.oracle.kind == "atomistic" and self.oracle.atomistic is None:
            raise ValueError("oracle.kind 'atomistic' needs an oracle.atomistic section")
        if self.oracle.kind == "callable" and not self.oracle.function:
            raise ValueError("oracle.kind 'callable' needs oracle.function ('module:function')")
        return self

    def space(self) -> DesignSpace:
        bounds = {
            e: self.bounds.get(e, self.default_bounds) for e in self.elements if e not in self.fixed
        }
        return DesignSpace.from_bounds(self.elements, bounds, self.fixed)

    def settings(self) -> LoopSettings:
        return LoopSettings(
            strategy=self.strategy,
            budget=self.budget,
            initial=self.initial,
            batch_size=self.batch_size,
            pool_size=self.pool_size,
            local_candidates=self.local_candidates,
            local_scale=self.local_scale,
            beta=self.beta,
            penalty_weight=self.penalty_weight,
            refine_iterations=self.refine_iterations,
            stop_patience=self.stop_patience,
            stop_tolerance=self.stop_tolerance,
            seed=self.seed,
        )


def feasibility_model(config: DesignJobConfig) -> CalphadFeasibility | None:
    """The CALPHAD feasibility model of a design job's `feasibility` section (None
    without one): what the job's loop uses, for a notebook or a benchmark to reuse."""
    if config.feasibility is None:
        return None
    f = config.feasibility
    return CalphadFeasibility.from_database(
        f.database,
        config.elements,
        f.phase,
        f.temperature,
        phases=f.phases,
        temperature_sigma=f.temperature_sigma,
        nodes=f.nodes,
    )


def load_table_oracle(
    path: Path, elements: list[str], objective: str, feasible: str | None
) -> TableOracle:
    """A CSV with one column per element (amounts, normalized per row), the objective and,
    optionally, a feasibility column of true/false (yes/no, 1/0) values."""
    from matforge.core.table import read_table

    if not path.is_file():
        raise ConfigError(f"oracle.table: {str(path)!r} does not exist")
    table = read_table(path)
    table.require([*elements, objective, *([feasible] if feasible else [])])
    amounts = np.stack([table.numeric(e, non_negative=True) for e in elements], axis=1)
    empty = np.flatnonzero(amounts.sum(axis=1) <= 0)
    if len(empty):
        raise table.error(f"element amounts {elements} sum to 0", empty)
    values = torch.tensor(table.numeric(objective), dtype=torch.float64)
    flags = torch.tensor(table.boolean(feasible)) if feasible else None
    labels = table.text("label") if "label" in table.columns else None
    compositions = torch.tensor(amounts / amounts.sum(axis=1, keepdims=True), dtype=torch.float64)
    return TableOracle(elements, compositions, values, flags, labels)


def build_oracle(config: DesignJobConfig, feasibility: CalphadFeasibility | None):  # type: ignore[no-untyped-def]
    o = config.oracle
    if o.kind == "atomistic":
        raise ConfigError(
            "oracle.kind 'atomistic' holds an executor for the whole run: use run_design_job"
        )
    if o.kind == "synthetic-hea":
        if feasibility is None:
            raise ConfigError("the synthetic-hea oracle needs a 'feasibility' section")
        strength = VarvenneCurtin(
            tuple(config.elements), temperature=o.temperature, strain_rate=o.strain_rate
        )
        return SyntheticHEAOracle(strength, feasibility)
    if o.kind == "table" and str(o.table) == "mpea":
        from matforge.design.mpea import mpea_pool

        return mpea_pool(config.elements)
    if o.kind == "table":
        return load_table_oracle(
            Path(o.table), config.elements, o.objective_column, o.feasible_column
        )
    module_name, _, name = (o.function or "").partition(":")
    try:
        function = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"oracle.function {o.function!r}: cannot import ({exc})") from None
    return CallableOracle(tuple(config.elements), function, feasibility)


@dataclass
class DesignJobResult:
    config: DesignJobConfig
    history: DesignHistory
    calibration: Calibration | None
    feasibility: CalphadFeasibility | None
    oracle: object | None = None  # the oracle the loop asked (AtomisticOracle: its answers)

    def best_feasible(self, top: int | None = None, *, separation: float = 0.005) -> list[dict]:
        """The best feasible evaluations, each differing from every better one listed by more
        than `separation` in some mole fraction (a converged loop evaluates many near-copies
        of its best alloy; listing them all would hide the runners-up)."""
        rows = [r for r in self.history.rows() if r["feasible"]]
        rows.sort(key=lambda r: r["objective"], reverse=True)
        keys = [f"x_{e}" for e in self.history.elements]
        chosen: list[dict] = []
        for row in rows:
            if all(max(abs(row[k] - c[k]) for k in keys) > separation for c in chosen):
                chosen.append(row)
            if len(chosen) == (top or self.config.top):
                break
        return chosen


def run_design_job(config: DesignJobConfig, *, show_progress: bool = True) -> DesignJobResult:
    space = config.space()
    feasibility = feasibility_model(config)
    surrogate = config.surrogate

    def factory():  # type: ignore[no-untyped-def]
        return make_surrogate(surrogate.kind, config.elements, surrogate.descriptors, config.seed)

    loop_feasibility = feasibility
    if feasibility is None and config.strategy != "ei":
        raise ConfigError(f"strategy {config.strategy!r} needs a 'feasibility' section")
    if config.oracle.kind == "atomistic":  # the validator made sure its section is there
        settings = config.oracle.atomistic
        history, oracle = _run_atomistic(
            config, space, settings, factory, feasibility, show_progress
        )
    else:
        oracle = build_oracle(config, feasibility)
        history = run_loop(
            space, oracle, factory, loop_feasibility, config.settings(), show_progress=show_progress
        )
    calibration = None
    if len(history.x) >= 2 * config.calibration_folds:
        calibration = cross_validate(
            factory,
            history.inputs,
            history.outputs,
            folds=config.calibration_folds,
            seed=config.seed,
        )
    return DesignJobResult(config, history, calibration, feasibility, oracle)


def _run_atomistic(  # type: ignore[no-untyped-def]
    config: DesignJobConfig, space, settings: AtomisticSettings, factory, feasibility, progress
) -> tuple[DesignHistory, AtomisticOracle]:
    """The closed loop: the design loop asks an `AtomisticOracle` whose potential learns
    (labels through the executor, kept in the database, resumable)."""
    from matforge.design.closed_loop import (
        composition_grid,
        database_path,
        label_oracle,
        learned_properties,
        verify_best,
    )

    o = config.oracle
    database = database_path(settings, config.name, config.runs_dir)
    with settings.executor.runner(label_oracle(settings)) as runner:
        oracle = AtomisticOracle(
            tuple(config.elements),
            learned_properties(settings, database, runner, config.seed),
            VarvenneCurtin((), temperature=o.temperature, strain_rate=o.strain_rate),
            feasibility,
            candidates=(
                composition_grid(space, settings.grid_step) if settings.grid_step else None
            ),
        )
        history = run_loop(
            space, oracle, factory, feasibility, config.settings(), show_progress=progress
        )
        verify_best(oracle, history, settings.verify)
    return history, oracle

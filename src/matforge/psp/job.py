"""`matforge psp fit | design CONFIG.yaml`: data, chain, training, design, in one config.

The data come from the bundled generator (`generator.DualPhaseSteel`) or from a CSV file
whose columns are mapped onto the chain's quantity names. Rows are split into train and
test sets; the process -> structure network and the Hall-Petch (or neural) property link
are trained on their own columns ("separate", the default when the table holds structure
columns) or the chain end to end on the property ("joint"); an ensemble of chains on
bootstrap resamples gives the uncertainty. `design` then searches the process box by
gradient descent through the ensemble.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator

from matforge.core.config import JobConfig, StrictModel
from matforge.core.errors import ConfigError
from matforge.psp.design import Bound, DesignResult, design_process, grid_search
from matforge.psp.generator import PROCESS as GENERATOR_PROCESS
from matforge.psp.generator import PROPERTY, DualPhaseSteel
from matforge.psp.links import (
    Chain,
    HallPetchLink,
    NeuralPropertyLink,
    ProcessStructureNet,
    Quantity,
)
from matforge.psp.training import ChainEnsemble, TrainSettings, fit_chain, fit_link, link_errors

FORMAT = "matforge-psp-chain"
FORMAT_VERSION = 1


class ProcessVariable(StrictModel):
    name: str
    unit: str = ""
    low: float
    high: float
    log: bool = Field(False, description="log-scaled (e.g. times spanning decades)")

    @model_validator(mode="after")
    def _ordered(self) -> ProcessVariable:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scaled variable needs low > 0")
        return self

    def bound(self) -> Bound:
        return Bound(self.name, self.low, self.high, self.log)


class DataSpec(StrictModel):
    source: Literal["generator", "csv"] = "generator"
    samples: int = Field(2000, ge=10, description="generator: number of experiments")
    noise: bool = True
    martensite_carbon_exponent: float = Field(
        0.0,
        ge=0.0,
        le=2.0,
        description="generator: carbon dependence of martensite strength (0: off), an "
        "effect the Hall-Petch link lacks",
    )
    margin: float = Field(
        0.1,
        ge=0,
        le=0.5,
        description="generator: sample this fraction of each range beyond the process bounds, "
        "so that designs on a bound are not extrapolations",
    )
    path: Path | None = Field(None, description="csv: the table")
    columns: dict[str, str] = Field(
        default_factory=dict, description="chain quantity -> CSV column, where they differ"
    )
    test_fraction: float = Field(0.2, ge=0, lt=1)


class StructureLinkSpec(StrictModel):
    hidden: list[int] = Field(default_factory=lambda: [16, 16], min_length=1)


class PropertyLinkSpec(StrictModel):
    kind: Literal["hall-petch", "neural"] = "hall-petch"
    sigma0: list[float] | None = Field(None, description="MPa, per phase (start values)")
    k: list[float] | None = Field(None, description="MPa m^1/2, per phase (start values)")
    learnable: bool = True
    hidden: list[int] = Field(default_factory=lambda: [32, 32])


class TrainingSpec(StrictModel):
    mode: Literal["auto", "separate", "joint"] = "auto"
    adam_steps: int = Field(1000, ge=0)
    lbfgs_steps: int = Field(2000, ge=0)
    learning_rate: float = Field(1e-2, gt=0)
    weight_decay: float = Field(1e-6, ge=0)


class EnsembleSpec(StrictModel):
    members: int = Field(3, ge=1)
    bootstrap: bool = True


class DesignSpec(StrictModel):
    chain: Path | None = Field(None, description="chain.pt of a 'psp fit' run (else fit first)")
    target: float | None = Field(None, description="property value to reach")
    maximize: bool = False
    fixed: dict[str, float] = Field(default_factory=dict, description="process values held")
    starts: int = Field(16, ge=1)
    steps: int = Field(100, ge=1)
    learning_rate: float = Field(0.2, gt=0)
    risk: float = Field(1.0, ge=0, description="weight of the ensemble spread")
    tolerance: dict[str, float] = Field(
        default_factory=dict,
        description="process tolerances (absolute; relative for log-scaled) for a robust route",
    )
    grid_points: int = Field(100, ge=2, description="per axis, for the truth check")
    map_axes: tuple[str, str] = ("temperature_C", "time_h")

    @model_validator(mode="after")
    def _one_goal(self) -> DesignSpec:
        if (self.target is None) == (not self.maximize):
            raise ValueError("set either design.target or design.maximize: true")
        return self


class PspConfig(JobConfig):
    data: DataSpec = Field(default_factory=DataSpec)
    process: list[ProcessVariable] = Field(min_length=1)
    phases: list[str] = Field(default_factory=lambda: ["ferrite", "martensite"], min_length=1)
    property: str = PROPERTY
    structure_link: StructureLinkSpec = Field(default_factory=StructureLinkSpec)
    property_link: PropertyLinkSpec = Field(default_factory=PropertyLinkSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    ensemble: EnsembleSpec = Field(default_factory=EnsembleSpec)
    design: DesignSpec | None = None

    @model_validator(mode="after")
    def _names(self) -> PspConfig:
        names = [p.name for p in self.process]
        if len(set(names)) != len(names):
            raise ValueError(f"process variable names repeat: {names}")
        return self

    @builtins.property  # the field 'property' shadows the builtin in this class body
    def structure_names(self) -> list[str]:
        return ["grain_size_um", *(f"fraction_{p}" for p in self.phases)]


def build_chain(config: PspConfig) -> Chain:
    process = [Quantity(p.name, p.unit, log_scale=p.log) for p in config.process]
    structure = ProcessStructureNet(process, config.phases, hidden=config.structure_link.hidden)
    spec = config.property_link
    if spec.kind == "hall-petch":
        prop = HallPetchLink(
            config.phases,
            sigma0=spec.sigma0,
            k=spec.k,
            learnable=spec.learnable,
            output=config.property,
        )
    else:
        prop = NeuralPropertyLink(config.phases, hidden=spec.hidden, output=config.property)
    return Chain([structure, prop])


def load_table(config: PspConfig) -> pd.DataFrame:
    spec = config.data
    if spec.source == "generator":
        bounds = {p.name: _widened(p, spec.margin) for p in config.process}
        unknown = set(bounds) - set(GENERATOR_PROCESS)
        if unknown or not {"temperature_C", "time_h"} <= set(bounds):
            raise ConfigError(
                f"the generator's process variables are {list(GENERATOR_PROCESS)} (temperature_C "
                f"and time_h required); the config names {sorted(bounds)}"
            )
        rng = np.random.default_rng(config.seed)
        steel = DualPhaseSteel(martensite_carbon_exponent=spec.martensite_carbon_exponent)
        return steel.sample(spec.samples, rng, bounds, noise=spec.noise)
    if spec.path is None:
        raise ConfigError("data.source 'csv' needs data.path")
    return read_table(spec.path, config)


def _widened(variable: ProcessVariable, margin: float) -> tuple[float, float]:
    if variable.log:
        low, high = np.log10(variable.low), np.log10(variable.high)
        pad = margin * (high - low)
        return float(10 ** (low - pad)), float(10 ** (high + pad))
    pad = margin * (variable.high - variable.low)
    return variable.low - pad, variable.high + pad


def read_table(path: Path, config: PspConfig) -> pd.DataFrame:
    """A CSV of experiments; mapped columns renamed; problems reported by column and line."""
    from matforge.core import table as tables

    table = tables.read_table(path)
    table.rename({csv: name for name, csv in config.data.columns.items()})
    needed = [p.name for p in config.process] + [config.property]
    table.require(needed, " (map them with data.columns: {name: 'CSV column'})")
    wanted = needed + [n for n in config.structure_names if n in table.columns]
    log_scaled = {p.name for p in config.process if p.log}
    return pd.DataFrame({name: table.numeric(name, positive=name in log_scaled) for name in wanted})


@dataclass
class FitResult:
    config: PspConfig
    ensemble: ChainEnsemble
    train: pd.DataFrame
    test: pd.DataFrame
    errors: list[dict[str, Any]]
    mode: str
    histories: list[list[float]] = field(default_factory=list)


def fit_ensemble(config: PspConfig, table: pd.DataFrame | None = None) -> FitResult:
    table = load_table(config) if table is None else table
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(table))
    n_test = round(config.data.test_fraction * len(table))
    test, train = table.iloc[order[:n_test]], table.iloc[order[n_test:]]
    has_structure = all(n in table.columns for n in config.structure_names)
    mode = config.training.mode
    if mode == "auto":
        mode = "separate" if has_structure else "joint"
    if mode == "separate" and not has_structure:
        raise ConfigError(f"training.mode 'separate' needs the columns {config.structure_names}")
    t = config.training
    chains, histories = [], []
    for member in range(config.ensemble.members):
        settings = TrainSettings(
            t.adam_steps, t.learning_rate, t.lbfgs_steps, t.weight_decay, seed=config.seed + member
        )
        data = train
        if config.ensemble.bootstrap and config.ensemble.members > 1:
            data = train.sample(len(train), replace=True, random_state=config.seed + member)
        chain = build_chain(config)
        if mode == "separate":
            history = fit_link(chain.links[0], data, settings)
            history += fit_link(chain.links[1], data, settings)
        else:
            history = fit_chain(chain, data, settings, targets=[config.property])
        chains.append(chain)
        histories.append(history)
    ensemble = ChainEnsemble(chains)
    evaluated = test if len(test) else train
    split = "test" if len(test) else "train"
    errors = []
    first, second = chains[0].links
    if has_structure:
        for row in link_errors(
            _Members(ensemble, 0), evaluated, first.input_names(), first.output_names()
        ):
            errors.append({"link": "process->structure", "split": split, **row})
        for row in link_errors(
            _Members(ensemble, 1), evaluated, second.input_names(), second.output_names()
        ):
            errors.append({"link": "structure->property", "split": split, **row})
    for row in link_errors(ensemble, evaluated, list(ensemble.inputs), [config.property]):
        errors.append({"link": "chain", "split": split, **row})
    return FitResult(config, ensemble, train, test, errors, mode, histories)


class _Members(torch.nn.Module):
    """The ensemble mean of one link (for per-link errors)."""

    def __init__(self, ensemble: ChainEnsemble, index: int) -> None:
        super().__init__()
        self.links = [chain.links[index] for chain in ensemble.chains]

    def forward(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        outs = [link(values) for link in self.links]
        return {k: torch.stack([o[k] for o in outs]).mean(dim=0) for k in outs[0]}


def save_ensemble(ensemble: ChainEnsemble, config: PspConfig, path: Path) -> Path:
    from matforge.core.modelfile import save_record

    content = {
        "config": config.model_dump(mode="json"),
        "members": [chain.state_dict() for chain in ensemble.chains],
    }
    return save_record(path, FORMAT, FORMAT_VERSION, content)


def load_ensemble(path: Path) -> tuple[ChainEnsemble, PspConfig]:
    """Read a chain file; a bad file is one ConfigError that names it."""
    from pydantic import ValidationError

    from matforge.core.modelfile import load_record

    record = load_record(path, FORMAT, FORMAT_VERSION, "matforge PSP chain")
    try:
        config = PspConfig.model_validate(record.part("config"))
    except ValidationError as error:
        raise ConfigError(f"{record.path}: damaged chain file (config: {error})") from None
    chains = []
    for state in record.part("members"):
        chain = build_chain(config)
        try:
            chain.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as error:
            raise ConfigError(f"{record.path}: damaged chain file ({error})") from None
        chains.append(chain)
    if not chains:
        raise ConfigError(f"{record.path}: damaged chain file (no members)")
    return ChainEnsemble(chains), config


@dataclass
class DesignOutcome:
    result: DesignResult
    truth: float | None  # generator, noise-free, at the design
    grid_process: dict[str, float] | None
    grid_value: float | None
    grid_points: int
    grid_seconds: float


def run_design(config: PspConfig, ensemble: ChainEnsemble) -> DesignOutcome:
    import time

    spec = config.design
    if spec is None:
        raise ConfigError("the config has no 'design' section")
    free = [p.bound() for p in config.process if p.name not in spec.fixed]
    unknown = set(spec.fixed) - {p.name for p in config.process}
    if unknown:
        raise ConfigError(f"design.fixed names unknown process variables {sorted(unknown)}")
    result = design_process(
        ensemble,
        free,
        config.property,
        target=spec.target,
        maximize=spec.maximize,
        fixed=spec.fixed,
        starts=spec.starts,
        steps=spec.steps,
        learning_rate=spec.learning_rate,
        risk=spec.risk,
        tolerance=spec.tolerance,
        seed=config.seed,
    )
    truth = grid_process = grid_value = None
    seconds, count = 0.0, 0
    if config.data.source == "generator":
        true_property = DualPhaseSteel(
            martensite_carbon_exponent=config.data.martensite_carbon_exponent
        ).truth_of

        at = {k: torch.tensor([v], dtype=torch.float64) for k, v in result.process.items()}
        truth = float(true_property(at)[0])
        begin = time.perf_counter()
        grid_process, grid_value, count = grid_search(
            true_property, free, spec.grid_points, target=spec.target, fixed=spec.fixed
        )
        seconds = time.perf_counter() - begin
    return DesignOutcome(result, truth, grid_process, grid_value, count, seconds)

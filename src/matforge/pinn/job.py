"""`matforge pinn identify CONFIG.yaml`: layer moduli and interfaces from displacements.

The observations come from a CSV file (bar: x, u; plate: x, y, ux, uy; other column names
mapped with data.columns) or are made up from a known truth (`synthetic`: the closed form
for the bar, scikit-fem finite elements for the plate, plus Gaussian noise). An ensemble of
identifications on bootstrap resamples gives each parameter's uncertainty; where the truth
is known the errors are reported, and for the bar the closed-form nonlinear least-squares
fit (with its Laplace spread) stands beside the PINN.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator

from matforge.core.config import JobConfig, StrictModel
from matforge.core.errors import ConfigError
from matforge.core.progress import track
from matforge.pinn.bar import BarSettings, ClosedFormFit, fit_closed_form, identify_bar
from matforge.pinn.layered import LayeredBar, check_layers
from matforge.pinn.plate import PlateLoading, PlateSettings, identify_plate
from matforge.pinn.training import TrainingHistory
from matforge.pinn.uncertainty import EnsembleEstimate, ensemble_identify

COLUMNS = {"bar": ("x", "u"), "plate": ("x", "y", "ux", "uy")}


class BarSpec(StrictModel):
    length: float = Field(1.0, gt=0, description="m")
    area: float = Field(1e-4, gt=0, description="m^2")
    end_force: float = Field(1e3, description="N, at x = L (non-zero)")
    body_force: float = Field(0.0, description="N/m along +x")
    reference_modulus: float = Field(1e9, gt=0, description="Pa; the modulus bounds scale")

    @model_validator(mode="after")
    def _loaded(self) -> BarSpec:
        if self.end_force == 0:
            raise ValueError("end_force must be non-zero")
        return self

    def geometry(self) -> dict[str, float]:
        """The keyword arguments of `identify_bar` and `fit_closed_form`."""
        return self.model_dump()


class PlateSpec(StrictModel):
    width: float = Field(2.0, gt=0)
    height: float = Field(1.0, gt=0)
    traction: float = Field(-1.0, description="mean t_y on the top face (non-zero)")
    poisson: float = Field(0.3, ge=0, lt=0.5)
    load_variation: float = Field(0.0, description="t_y(x) = t (1 + a cos(pi x / W))")
    right_edge: Literal["free", "roller"] = "free"
    reference_modulus: float | None = Field(
        None, gt=0, description="the modulus bounds scale (default: |t| H / max |u|)"
    )

    def loading(self) -> PlateLoading:
        return PlateLoading(
            self.width,
            self.height,
            self.traction,
            self.poisson,
            self.load_variation,
            self.right_edge,
        )


class TruthSpec(StrictModel):
    moduli: list[float] = Field(min_length=1)
    interfaces: list[float] = Field(default_factory=list)


class DataSpec(StrictModel):
    source: Literal["csv", "synthetic"] = "csv"
    path: Path | None = Field(None, description="csv: the observations")
    columns: dict[str, str] = Field(
        default_factory=dict, description="x/u (bar) or x/y/ux/uy (plate) -> CSV column"
    )
    sensors: int = Field(50, ge=2, description="synthetic: number of sensors")
    noise: float = Field(0.0, ge=0, description="synthetic: std relative to max |u|")


class UncertaintySpec(StrictModel):
    members: int = Field(3, ge=1, description="identifications in the ensemble")
    bootstrap: bool = True


class PinnConfig(JobConfig):
    problem: Literal["bar", "plate"] = "bar"
    layers: int = Field(3, ge=1)
    data: DataSpec = Field(default_factory=DataSpec)
    bar: BarSpec = Field(default_factory=BarSpec)
    plate: PlateSpec = Field(default_factory=PlateSpec)
    truth: TruthSpec | None = None
    training: dict[str, Any] = Field(
        default_factory=dict,
        description="BarSettings / PlateSettings fields, e.g. adam_steps, starts, min_thickness",
    )
    uncertainty: UncertaintySpec = Field(default_factory=UncertaintySpec)

    @model_validator(mode="after")
    def _consistent(self) -> PinnConfig:
        if self.truth is not None:
            extent = self.bar.length if self.problem == "bar" else self.plate.height
            if len(self.truth.moduli) != self.layers:
                raise ValueError(f"truth.moduli needs {self.layers} values (layers)")
            check_layers(self.truth.moduli, self.truth.interfaces, extent)
        if self.data.source == "csv" and self.data.path is None:
            raise ValueError("data.source 'csv' needs data.path")
        if self.data.source == "synthetic" and self.truth is None:
            raise ValueError("data.source 'synthetic' needs a truth section")
        settings = BarSettings if self.problem == "bar" else PlateSettings
        if {"n_layers", "seed"} & set(self.training):
            raise ValueError(
                "training: set the number of layers with 'layers' and the seed with 'seed'"
            )
        unknown = set(self.training) - set(settings.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"training: unknown settings {sorted(unknown)}; known: "
                f"{sorted(settings.__dataclass_fields__)}"
            )
        self.settings()  # range checks now, so that the error names the config file
        return self

    def settings(self) -> BarSettings | PlateSettings:
        kind = BarSettings if self.problem == "bar" else PlateSettings
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in self.training.items()}
        try:
            return kind(**{**values, "n_layers": self.layers, "seed": self.seed})
        except (TypeError, ValueError) as error:
            raise ValueError(f"training.{error}") from None


def read_observations(path: Path, config: PinnConfig) -> pd.DataFrame:
    """The CSV of sensor positions and displacements; problems named by column and line."""
    from matforge.core.table import read_table

    table = read_table(path)
    table.rename({csv: name for name, csv in config.data.columns.items()})
    needed = list(COLUMNS[config.problem])
    table.require(needed, f" for the {config.problem} problem (map them with data.columns)")
    values = {name: table.numeric(name) for name in needed}
    if config.problem == "bar":
        bounds = {"x": (0.0, config.bar.length)}
    else:
        bounds = {"x": (0.0, config.plate.width), "y": (0.0, config.plate.height)}
    for name, (low, high) in bounds.items():
        outside = np.flatnonzero((values[name] < low) | (values[name] > high))
        if len(outside):
            raise table.error(
                f"{name} = {values[name][outside[0]]} lies outside the {config.problem} "
                f"[{low}, {high}]",
                outside[:1],
            )
    if len(table) < config.layers * 2:
        raise ConfigError(
            f"{path}: {len(table)} rows cannot identify {2 * config.layers - 1} parameters"
        )
    return pd.DataFrame(values)


def synthetic_observations(config: PinnConfig) -> pd.DataFrame:
    """Sensors drawn at random (bar: evenly spaced), displacements from the real solver."""
    assert config.truth is not None
    rng = np.random.default_rng(config.seed)
    spec = config.data
    if config.problem == "bar":
        b = config.bar
        bar = LayeredBar(
            tuple(config.truth.moduli),
            tuple(config.truth.interfaces),
            b.length,
            b.area,
            b.end_force,
            b.body_force,
        )
        x = np.linspace(0.0, b.length, spec.sensors + 1)[1:]
        u = bar.displacement(torch.as_tensor(x)).numpy()
        u = u + spec.noise * np.abs(u).max() * rng.standard_normal(u.shape)
        return pd.DataFrame({"x": x, "u": u})
    from matforge.pinn.fem import LayeredPlate, solve_plate

    p = config.plate
    plate = LayeredPlate(
        tuple(config.truth.moduli),
        tuple(config.truth.interfaces),
        p.width,
        p.height,
        p.poisson,
        p.traction,
        p.load_variation,
        p.right_edge,
    )
    points = np.column_stack(
        [rng.uniform(0, p.width, spec.sensors), rng.uniform(0, p.height, spec.sensors)]
    )
    u = solve_plate(plate).at(points)
    u = u + spec.noise * np.abs(u).max() * rng.standard_normal(u.shape)
    return pd.DataFrame({"x": points[:, 0], "y": points[:, 1], "ux": u[:, 0], "uy": u[:, 1]})


@dataclass
class IdentifyResult:
    config: PinnConfig
    observations: pd.DataFrame
    estimate: EnsembleEstimate
    histories: list[TrainingHistory] = field(default_factory=list)
    reference: ClosedFormFit | None = None
    seconds: float = 0.0


def identify(config: PinnConfig, observations: pd.DataFrame | None = None) -> IdentifyResult:
    """The whole job as a library call: data, ensemble of identifications, reference."""
    import time

    if observations is None:
        if config.data.source == "csv":
            assert config.data.path is not None
            observations = read_observations(config.data.path, config)
        else:
            observations = synthetic_observations(config)
    settings = config.settings()
    histories: list[TrainingHistory] = []

    def one(indices: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
        rows = observations.iloc[indices]
        member = replace(settings, seed=seed)
        if config.problem == "bar":
            found = identify_bar(
                rows["x"].to_numpy(), rows["u"].to_numpy(), **config.bar.geometry(), settings=member
            )
        else:
            found = identify_plate(
                rows[["x", "y"]].to_numpy(),
                rows[["ux", "uy"]].to_numpy(),
                config.plate.loading(),
                reference_modulus=config.plate.reference_modulus,
                settings=member,
            )
        if found.history is not None:
            histories.append(found.history)
        return found.moduli, found.interfaces, found.loss

    members = config.uncertainty.members
    # track() advances its bar as its iterator is pulled: pull once to show the bar, then
    # once per finished member.
    ticks = iter(track(range(members), description=f"PINN {config.problem} identification"))
    begin = time.perf_counter()
    next(ticks, None)
    estimate = ensemble_identify(
        one,
        len(observations),
        members=members,
        bootstrap=config.uncertainty.bootstrap,
        seed=config.seed,
        progress=lambda _: next(ticks, None),
    )
    seconds = time.perf_counter() - begin
    reference = None
    if config.problem == "bar":
        reference = fit_closed_form(
            observations["x"].to_numpy(),
            observations["u"].to_numpy(),
            n_layers=config.layers,
            **config.bar.geometry(),
            seed=config.seed,
        )
    return IdentifyResult(config, observations, estimate, histories, reference, seconds)

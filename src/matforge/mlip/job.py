"""`matforge mlip fit CONFIG.yaml`: settings, the fit, and its run directory.

The fit splits configurations (not rows) into train and test sets, per group, with a
seeded shuffle; assembles the SNAP linear system once; solves it with FitSNAP's SVD or with
ridge regression; and, when several ridge strengths or weight multipliers (per kind of row,
applied to every group) are given, picks the combination with the lowest validation score
(energy RMSE / std of the energies + force RMSE / std of the force components, on a
validation part of the training set), then refits on the whole training set. The run
directory holds model.pt (matforge), model.snapcoeff/.snapparam (LAMMPS), errors.csv (per
group, kind, split), metrics.json and parity plots for energies and forces.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Discriminator, Field, Tag, model_validator

from matforge.core.config import JobConfig, StrictModel
from matforge.core.errors import ConfigError
from matforge.mlip.data import read_fitsnap_groups, read_structures
from matforge.mlip.linear import GroupWeights, LinearSystem, assemble, error_table, solve
from matforge.mlip.potential import LinearModel, Potential
from matforge.mlip.snap import Bispectrum, SnapParameters
from matforge.mlip.zbl import ZBL


class DataConfig(StrictModel):
    format: Literal["fitsnap-json", "ase", "mlearn-json", "gpumd-xyz"] = "fitsnap-json"
    path: Path = Field(
        description="folder of FitSNAP group folders, a file ASE reads, or mlearn's JSON"
    )
    groups: list[str] | None = Field(None, description="FitSNAP groups to read (default all)")


class SnapConfig(StrictModel):
    kind: Literal["snap"] = "snap"
    twojmax: int = Field(6, ge=0, le=16)
    rcutfac: float = Field(gt=0)
    rfac0: float = Field(0.99363, gt=0, le=1)
    rmin0: float = Field(0.0, ge=0)
    radius: dict[str, float]
    weight: dict[str, float]
    bzeroflag: bool = False
    quadraticflag: bool = False


class SoapConfig(StrictModel):
    kind: Literal["soap"] = "soap"
    elements: list[str] = Field(min_length=1)
    cutoff: float = Field(gt=0)
    cutoff_transition_width: float = Field(0.5, ge=0)
    n_max: int = Field(8, ge=1, le=20)
    l_max: int = Field(8, ge=0, le=16)
    atom_sigma: float = Field(0.5, gt=0)
    radial_basis: Literal["gto", "polynomial"] = "gto"
    center_atom_weight: float = Field(1.0, ge=0)
    normalize: bool = True


class TwoBodyConfig(StrictModel):
    """gap_fit's distance_2b term (ard_se kernel, uniform sparse distances per pair type)."""

    cutoff: float = Field(gt=0, description="A")
    cutoff_transition_width: float = Field(0.5, ge=0, description="A")
    delta: float = Field(1.0, gt=0, description="signal standard deviation, eV")
    theta: float = Field(1.0, gt=0, description="length scale (gap_fit's theta_uniform), A")
    n_sparse: int = Field(15, ge=1, description="sparse distances per pair type")

    @model_validator(mode="after")
    def _width(self) -> TwoBodyConfig:
        if self.cutoff_transition_width >= self.cutoff:
            raise ValueError("cutoff_transition_width must be smaller than cutoff")
        return self


class NepConfig(StrictModel):
    """A NEP4 architecture (GPUMD's nep.in names and defaults)."""

    kind: Literal["nep"] = "nep"
    elements: list[str] = Field(min_length=1)
    cutoff: tuple[float, float] = Field((8.0, 4.0), description="radial, angular (A)")
    n_max: tuple[int, int] = (6, 6)
    basis_size: tuple[int, int] = (6, 6)
    l_max: tuple[int, int, int] = Field((4, 2, 0), description="3-body, 4-body (0/2), 5-body (0/1)")
    neuron: int = Field(30, ge=1)
    zbl: float | None = Field(None, gt=0, description="outer ZBL cutoff (inner = outer / 2)")


class NepTrainConfig(StrictModel):
    """How to train a NEP: GPUMD's SNES or gradients, and nep.in's loss settings."""

    method: Literal["snes", "gradient"] = "snes"
    generation: int = Field(100000, ge=1, description="SNES generations")
    population: int = Field(50, ge=2)
    batch: int = Field(1000, ge=1, description="structures per SNES batch / gradient step")
    adam_steps: int = Field(2000, ge=0)
    lbfgs_steps: int = Field(200, ge=0)
    learning_rate: float = Field(1e-2, gt=0)
    seconds: float | None = Field(None, gt=0, description="wall-time budget of the training")
    lambda_1: float | None = Field(None, ge=0, description="default: GPUMD's automatic value")
    lambda_2: float | None = Field(None, ge=0)
    lambda_e: float = Field(1.0, ge=0)
    lambda_f: float = Field(1.0, ge=0)
    lambda_v: float = Field(0.1, ge=0)


class GapConfig(StrictModel):
    """gap_fit's settings (its names); sigmas are [energy, force, virial]."""

    zeta: float = Field(4.0, gt=0)
    delta: float = Field(1.0, gt=0)
    n_sparse: int = Field(1000, ge=1)
    sparse_method: Literal["cur", "cur_top", "fps", "random"] = "cur"
    sparse_jitter: float = Field(1e-10, ge=0)
    default_sigma: tuple[float, float, float] = (0.01, 0.05, 0.01)
    group_sigma: dict[str, tuple[float, float, float]] = Field(default_factory=dict)
    sigma_per_atom: bool = True
    e0: dict[str, float] | Literal["average"] = "average"
    fit_forces: bool = True
    fit_virials: bool = True
    two_body: TwoBodyConfig | None = Field(None, description="optional 2-body GP term")


class ZBLConfig(StrictModel):
    kind: Literal["zbl"] = "zbl"
    inner: float = Field(gt=0)
    outer: float = Field(gt=0)
    charges: dict[str, float]


class FitConfig(StrictModel):
    solver: Literal["svd", "ridge"] = "svd"
    alphas: list[float] = Field(default_factory=lambda: [0.0], min_length=1)
    weight_scales: dict[Literal["energy", "force", "stress"], list[float]] = Field(
        default_factory=dict,
        description="multipliers of every group's energy/force/stress weight to choose from",
    )
    test_fraction: float = Field(0.0, ge=0, lt=1)
    validation_fraction: float = Field(0.2, gt=0, lt=1)


def _descriptor_kind(value: Any) -> str:
    """`kind` of a descriptor section; SNAP when left out (configs written before GAP)."""
    if isinstance(value, dict):
        return str(value.get("kind", "snap"))
    return str(getattr(value, "kind", "snap"))


class MlipFitConfig(JobConfig):
    model: Literal["snap", "gap", "nep"] = "snap"
    data: DataConfig
    descriptor: Annotated[
        Annotated[SnapConfig, Tag("snap")]
        | Annotated[SoapConfig, Tag("soap")]
        | Annotated[NepConfig, Tag("nep")],
        Discriminator(_descriptor_kind),
    ]
    gap: GapConfig = Field(default_factory=GapConfig)
    nep: NepTrainConfig = Field(default_factory=NepTrainConfig)
    reference: ZBLConfig | None = None
    weights: dict[str, tuple[float, float, float]] = Field(
        default_factory=dict, description="group: [energy, force, stress (bar)] weights"
    )
    default_weights: tuple[float, float, float] = (1.0, 1.0, 0.0)
    fit: FitConfig = Field(default_factory=FitConfig)

    @property
    def elements(self) -> list[str]:
        d = self.descriptor
        return list(d.radius) if isinstance(d, SnapConfig) else list(d.elements)

    @model_validator(mode="after")
    def _consistent(self) -> MlipFitConfig:
        wanted = {"gap": "soap", "nep": "nep"}.get(self.model, "snap")
        if self.descriptor.kind != wanted:
            raise ValueError(f"model {self.model!r} needs descriptor.kind {wanted!r}")
        if isinstance(self.descriptor, SnapConfig) and set(self.descriptor.radius) != set(
            self.descriptor.weight
        ):
            raise ValueError("descriptor.radius and descriptor.weight must name the same elements")
        if self.reference is not None and self.model == "nep":
            raise ValueError("a NEP takes GPUMD's ZBL as descriptor.zbl, not a reference section")
        if self.reference is not None:
            if set(self.reference.charges) != set(self.elements):
                raise ValueError("reference.charges must name the descriptor's elements")
            if self.reference.inner >= self.reference.outer:
                raise ValueError("reference.inner must be smaller than reference.outer")
        if self.fit.solver == "svd" and self.fit.alphas != [0.0]:
            raise ValueError("fit.alphas applies to solver 'ridge' only")
        return self


@dataclass
class FitResult:
    config: MlipFitConfig
    potential: Potential
    system: LinearSystem
    train: np.ndarray  # structure indices
    test: np.ndarray
    alpha: float
    scales: dict[str, float]
    errors: pd.DataFrame
    structures: list


def snap_potential(d: SnapConfig, reference_config: ZBLConfig | None = None) -> Potential:
    """A linear SNAP potential (zero coefficients) from its settings, with optional ZBL."""
    parameters = SnapParameters(
        twojmax=d.twojmax,
        rcutfac=d.rcutfac,
        radius=d.radius,
        weight=d.weight,
        rfac0=d.rfac0,
        rmin0=d.rmin0,
        bzeroflag=d.bzeroflag,
        quadraticflag=d.quadraticflag,
    )
    descriptor = Bispectrum(parameters)
    reference = _zbl(reference_config, parameters.elements)
    return Potential(
        descriptor, LinearModel(len(parameters.elements), descriptor.n_features), reference
    )


def build_potential(config: MlipFitConfig) -> Potential:
    if isinstance(config.descriptor, SoapConfig):
        return soap_potential(config.descriptor, config.reference)
    return snap_potential(config.descriptor, config.reference)


def soap_potential(d: SoapConfig, reference_config: ZBLConfig | None = None) -> Potential:
    """An unfitted SOAP GAP from its settings, with optional ZBL."""
    from matforge.mlip.gap import gap_potential
    from matforge.mlip.soap import SoapParameters

    settings = d.model_dump(exclude={"kind"})
    parameters = SoapParameters(**{**settings, "elements": tuple(settings["elements"])})
    return gap_potential(parameters, _zbl(reference_config, parameters.elements))


def _zbl(reference_config: ZBLConfig | None, elements) -> ZBL | None:
    if reference_config is None:
        return None
    r = reference_config
    return ZBL({e: r.charges[e] for e in elements}, r.inner, r.outer)


def load_training_data(config: DataConfig) -> list:
    if config.format == "fitsnap-json":
        return read_fitsnap_groups(config.path, config.groups)
    if config.format == "mlearn-json":
        from matforge.mlip.data import read_mlearn_json

        structures = read_mlearn_json(config.path)
    elif config.format == "gpumd-xyz":
        from matforge.mlip.nep_io import read_gpumd_xyz

        structures = read_gpumd_xyz(config.path)
    else:
        structures = read_structures(config.path)
    if config.groups is not None:
        structures = [a for a in structures if str(a.info.get("group", "all")) in config.groups]
    return structures


def split_by_group(groups: list[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Structure indices (train, test): `fraction` of each group's structures held out."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for group in sorted(set(groups)):
        members = np.array([i for i, g in enumerate(groups) if g == group])
        rng.shuffle(members)
        n_test = round(fraction * len(members))
        test.extend(members[:n_test])
        train.extend(members[n_test:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64))


def _score(system: LinearSystem, coefficients: np.ndarray) -> float:
    residual = system.a @ coefficients - system.b
    score = 0.0
    for kind in (0, 1):
        rows = system.kind == kind
        if rows.any():
            score += np.sqrt((residual[rows] ** 2).mean()) / max(system.b[rows].std(), 1e-12)
    return float(score)


def run_fit(config: MlipFitConfig) -> FitResult:
    """Fit the configured potential (SNAP by linear least squares, GAP as gap_fit does)."""
    structures = load_training_data(config.data)
    if not structures:
        raise ConfigError(f"{config.data.path}: no configurations found")
    if config.model == "gap":
        from matforge.mlip.gap_job import run_gap_fit

        return run_gap_fit(config, structures)
    if config.model == "nep":
        from matforge.mlip.nep_job import run_nep_fit

        return run_nep_fit(config, structures)
    potential = build_potential(config)
    groups = [str(a.info.get("group", "all")) for a in structures]
    weights = {g: GroupWeights(*config.weights.get(g, config.default_weights)) for g in set(groups)}
    train, test = split_by_group(groups, config.fit.test_fraction, config.seed)
    system = assemble(potential, structures)
    training = system.subset(train)
    grid = [
        (alpha, dict(zip(("energy", "force", "stress"), scales, strict=True)))
        for alpha in config.fit.alphas
        for scales in itertools.product(
            *(config.fit.weight_scales.get(k, [1.0]) for k in ("energy", "force", "stress"))
        )
    ]
    alpha, scales = grid[0]
    if len(grid) > 1:
        fit_part, validation = split_by_group(
            [groups[i] for i in train], config.fit.validation_fraction, config.seed + 1
        )
        inner, outer = training.subset(train[fit_part]), training.subset(train[validation])
        scores = [
            _score(outer, solve(inner, _scaled(weights, s), solver=config.fit.solver, alpha=a))
            for a, s in grid
        ]
        alpha, scales = grid[int(np.argmin(scores))]
    weights = _scaled(weights, scales)
    coefficients = solve(training, weights, solver=config.fit.solver, alpha=alpha)
    with torch.no_grad():
        potential.model.coefficients.copy_(
            torch.from_numpy(coefficients.reshape(potential.model.coefficients.shape))
        )
    tables = [error_table(training, coefficients, weights).assign(split="train")]
    if len(test):
        tables.append(error_table(system.subset(test), coefficients, weights).assign(split="test"))
    errors = pd.concat(tables, ignore_index=True)
    return FitResult(config, potential, system, train, test, alpha, scales, errors, structures)


def _scaled(weights: dict[str, GroupWeights], scales: dict[str, float]) -> dict[str, GroupWeights]:
    return {
        g: GroupWeights(
            w.energy * scales["energy"], w.force * scales["force"], w.stress * scales["stress"]
        )
        for g, w in weights.items()
    }

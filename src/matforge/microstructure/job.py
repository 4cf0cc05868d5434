"""`matforge micro train|generate|design`: the jobs behind the CLI, callable from Python.

train: make or load the training microstructures, fit a conditional VAE or WGAN-GP (with
the projection layer or the penalty), compare the generated statistics with the
training set's per volume fraction, and write a run directory (model.pt, metrics.json,
sample grids, two-point-correlation plots). generate / design read that run back.
"""

from __future__ import annotations

import time
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
from matforge.microstructure.models import Decoder
from matforge.microstructure.sources import (
    cahn_hilliard,
    gaussian_random_field,
    load_images,
    threshold_fraction,
)
from matforge.microstructure.statistics import two_point_correlation
from matforge.microstructure.training import (
    GenerativeModel,
    MicrostructureSet,
    TrainSettings,
    train_vae,
    train_wgan,
)

FORMAT = "matforge-microstructure"
FORMAT_VERSION = 1


class CahnHilliardSpec(StrictModel):
    mobility: float = Field(1.0, gt=0)
    gradient_energy: float = Field(1.0, gt=0)
    times: list[float] = Field([100.0, 400.0], min_length=1, description="one data group each")
    dt: float = Field(0.5, gt=0)


class ImagesSpec(StrictModel):
    paths: list[Path] = Field(min_length=1)
    threshold: float | None = Field(None, description="grey level above which a voxel is phase 1")


class DataSpec(StrictModel):
    source: Literal["gaussian_random_field", "cahn_hilliard", "images"] = "gaussian_random_field"
    size: int = Field(64, ge=8, description="voxels per side (power of two)")
    dims: Literal[2, 3] = 2
    fractions: list[float] = Field([0.2, 0.35, 0.5], min_length=1)
    length_scales: list[float] = Field(
        [2.5, 4.0], min_length=1, description="GRF correlation lengths (voxels)"
    )
    samples_per_condition: int = Field(64, ge=1)
    cahn_hilliard: CahnHilliardSpec = Field(default_factory=CahnHilliardSpec)
    images: ImagesSpec | None = None

    @model_validator(mode="after")
    def _valid(self) -> DataSpec:
        if any(not 0 < phi < 1 for phi in self.fractions):
            raise ValueError("fractions must lie in (0, 1)")
        if any(length <= 0 for length in self.length_scales):
            raise ValueError("length_scales must be positive")
        if self.size & (self.size - 1):
            raise ValueError(f"size must be a power of two, got {self.size}")
        if self.source == "images" and self.images is None:
            raise ValueError("source 'images' needs an images section with paths")
        return self


class ModelSpec(StrictModel):
    kind: Literal["vae", "wgan"] = "vae"
    constraint: Literal["projection", "penalty"] = "projection"
    latent: int = Field(8, ge=1, description="channels of the latent field")
    width: int = Field(32, ge=8, description="channels of the widest layers (multiple of 8)")
    epochs: int = Field(40, ge=1)
    max_seconds: float | None = Field(None, gt=0, description="wall-time budget of training")
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    beta: float = Field(1.0, ge=0, description="VAE: weight of the KL term")
    penalty: float = Field(10.0, ge=0, description="weight of the fraction penalty")
    critic_steps: int = Field(5, ge=1)
    gradient_penalty: float = Field(10.0, ge=0)

    @model_validator(mode="after")
    def _width(self) -> ModelSpec:
        if self.width % 8:
            raise ValueError(f"width must be a multiple of 8 (group norms), got {self.width}")
        return self


class MicroConfig(JobConfig):
    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    conductivities: tuple[float, float] = Field(
        (0.1, 1.0), description="of the matrix (x = 0) and of the phase (x = 1)"
    )
    evaluation_samples: int = Field(64, ge=2)
    device: str = "cpu"

    @model_validator(mode="after")
    def _positive(self) -> MicroConfig:
        if min(self.conductivities) <= 0:
            raise ValueError("conductivities must be positive")
        return self

    def train_settings(self) -> TrainSettings:
        values = self.model.model_dump()
        return TrainSettings(**values, seed=self.seed, device=self.device)


def correlation_length(fields: torch.Tensor, *, spatial_dims: int = 2) -> torch.Tensor:
    """Per field: the lag (voxels) at which the normalized autocovariance along the axes
    falls to exp(-1/2), interpolated linearly between integer lags.

    For a Gaussian covariance exp(-r^2 / 2 l^2) this is l itself; measured the same way for
    every data source, it makes the length-scale condition comparable between them.
    """
    s2 = two_point_correlation(fields, spatial_dims=spatial_dims)
    phi = fields.flatten(start_dim=1).mean(1)
    half = min(fields.shape[-spatial_dims:]) // 2
    profiles = []
    for axis in range(spatial_dims):
        index = [0] * spatial_dims
        index[axis] = slice(0, half + 1)
        profiles.append(s2[(..., *index)])
    profile = torch.stack(profiles).mean(0)
    covariance = (profile - phi[:, None] ** 2) / (phi - phi**2).clamp(min=1e-12)[:, None]
    level = float(np.exp(-0.5))
    below = covariance < level
    first = torch.where(below.any(1), below.to(torch.int64).argmax(1), covariance.shape[1] - 1)
    first = first.clamp(min=1)
    c0 = covariance.gather(1, (first - 1)[:, None])[:, 0]
    c1 = covariance.gather(1, first[:, None])[:, 0]
    return (first - 1) + (c0 - level) / (c0 - c1).clamp(min=1e-12)


def build_dataset(spec: DataSpec, seed: int) -> MicrostructureSet:
    """The training microstructures the config describes (binary, with phi and length)."""
    generator = torch.Generator().manual_seed(seed)
    shape = (spec.size,) * spec.dims
    groups: list[torch.Tensor] = []
    if spec.source == "gaussian_random_field":
        for phi in spec.fractions:
            for length in spec.length_scales:
                groups.append(
                    gaussian_random_field(
                        spec.samples_per_condition, shape, phi, length, generator=generator
                    )
                )
    elif spec.source == "cahn_hilliard":
        ch = spec.cahn_hilliard
        for phi in spec.fractions:
            for duration in ch.times:
                # the lever rule for the quench: equilibrium phases at c = -1 and +1
                field = cahn_hilliard(
                    spec.samples_per_condition,
                    shape,
                    composition=float(np.clip(2 * phi - 1, -0.5, 0.5)),
                    mobility=ch.mobility,
                    gradient_energy=ch.gradient_energy,
                    time=duration,
                    dt=ch.dt,
                    generator=generator,
                )
                groups.append(threshold_fraction(field, phi, spatial_dims=spec.dims))
    else:
        assert spec.images is not None
        images = load_images(
            spec.images.paths,
            spatial_dims=spec.dims,
            shape=shape,
            threshold=spec.images.threshold,
        )
        groups.append(images)
    fields = torch.cat(groups)
    phi = fields.flatten(start_dim=1).mean(1)
    length = correlation_length(fields, spatial_dims=spec.dims)
    return MicrostructureSet(fields, phi, length)


def save_model(path: Path, model: GenerativeModel, data: MicrostructureSet | None = None) -> Path:
    settings = model.settings
    content = {
        "training_lengths": [] if data is None else data.length.tolist(),
        "training_fractions": [] if data is None else data.phi.tolist(),
        "size": model.size,
        "dims": model.dims,
        "settings": dict(vars(settings).items()),
        "state": {k: v.detach().cpu() for k, v in model.decoder.state_dict().items()},
        "history": model.history,
        "seconds": model.seconds,
    }
    return save_record(path, FORMAT, FORMAT_VERSION, content, overwrite=True)


def load_model(path: str | Path) -> GenerativeModel:
    """Read a run's model.pt (or the run directory) back into a `GenerativeModel`."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    record = load_record(path, FORMAT, FORMAT_VERSION, "microstructure model")
    settings = TrainSettings(**record.part("settings"))
    decoder = Decoder(
        int(record.part("size")),
        int(record.part("dims")),
        settings.latent,
        settings.width,
        settings.constraint,
    )
    try:
        decoder.load_state_dict(record.part("state"))
    except RuntimeError as error:
        raise ConfigError(f"{path}: damaged microstructure model ({str(error)[:120]})") from None
    decoder.eval()
    model = GenerativeModel(
        decoder, settings, list(record.part("history")), float(record["seconds"])
    )
    model.training_lengths = list(record.get("training_lengths", []))  # type: ignore[attr-defined]
    return model


def default_length(model: GenerativeModel) -> float:
    """The median length scale of the training set (the condition used when none is given)."""
    lengths = getattr(model, "training_lengths", [])
    return float(np.median(lengths)) if lengths else 3.0


def _npy_bytes(array: torch.Tensor) -> bytes:
    """A tensor as the bytes of a .npy file (written atomically by the run directory)."""
    import io

    stream = io.BytesIO()
    np.save(stream, array.detach().cpu().numpy())
    return stream.getvalue()


def generate(
    run_path: str | Path, phi: float, n: int, *, length: float | None = None, seed: int = 0
) -> tuple[RunDirectory, dict[str, Any]]:
    """Sample n microstructures at fraction phi into RUN/generated-phi<phi>-<time>/."""
    from matforge.microstructure.report import sample_grid

    model = load_model(run_path)
    length = default_length(model) if length is None else length
    if n < 1:
        raise ConfigError(f"-n must be at least 1, got {n}")
    samples = model.generate(phi, n, length, generator=torch.Generator().manual_seed(seed))
    folder = RunDirectory.create(f"generated-phi{phi:g}", Path(run_path))
    folder.write_bytes("samples.npy", _npy_bytes(samples))
    if model.dims == 2:
        groups = [samples[i : i + 8] for i in range(0, min(n, 32), 8)]
        folder.save_figure("samples.png", sample_grid(groups, [phi] * len(groups), columns=8))
    violations = (samples.double().flatten(start_dim=1).mean(1) - phi).abs()
    metrics = {
        "phi": phi,
        "length": length,
        "samples": n,
        "fraction_violation_max": float(violations.max()),
        "voxel_min": float(samples.min()),
        "voxel_max": float(samples.max()),
    }
    folder.write_metrics(metrics)
    return folder, metrics


def design(
    run_path: str | Path,
    phi: float,
    target: float,
    *,
    length: float | None = None,
    conductivities: tuple[float, float] | None = None,
    settings: Any = None,
) -> tuple[RunDirectory, dict[str, Any]]:
    """Inverse design into RUN/design-phi<phi>-<time>/: the field, its conductivity."""
    from matforge.core.config import load_config
    from matforge.microstructure.design import DesignSettings, design_microstructure
    from matforge.microstructure.report import design_figure

    model = load_model(run_path)
    config_path = Path(run_path) / "config.yaml"
    if conductivities is None and config_path.is_file():
        conductivities = load_config(config_path, MicroConfig).conductivities
    settings = settings or DesignSettings()
    if conductivities is not None:
        settings.conductivities = tuple(conductivities)
    length = default_length(model) if length is None else length
    result = design_microstructure(model, phi, target, length=length, settings=settings)
    folder = RunDirectory.create(f"design-phi{phi:g}", Path(run_path))
    folder.write_bytes("design.npy", _npy_bytes(result.field))
    title = (
        f"k_eff={result.conductivity:.4g} (target {target:g}), phi={float(result.field.mean()):.6f}"
    )
    folder.save_figure("design.png", design_figure(result.field, result.history, title))
    metrics = {
        "phi": phi,
        "target": target,
        "conductivity": result.conductivity,
        "relative_error": result.relative_error,
        "fraction_error": result.fraction_error,
        "steps": len(result.history),
        "start_conductivities": result.start_conductivities,
        "conductivities": list(settings.conductivities),
        "length": length,
        "solver_converged": result.converged_solves,
    }
    folder.write_metrics(metrics)
    return folder, metrics


def compare_statistics(
    model: GenerativeModel, data: MicrostructureSet, samples: int, seed: int
) -> list[dict[str, Any]]:
    """Per training fraction: generated vs training S2 (mean over samples), fraction error.

    s2_rel_error = |S2_gen - S2_train| / |S2_train| over all lags (the figure the issue
    asks for; it includes the long-range plateau phi^2 that the projection fixes exactly),
    covariance_rel_error the same for S2 - phi^2 (the structure alone, more demanding).
    """
    generator = torch.Generator().manual_seed(seed)
    rows = []
    phis = data.phi
    for phi in sorted({round(float(p), 3) for p in phis}):
        chosen = (phis - phi).abs() < 2e-3
        training = data.subset(chosen.nonzero()[:, 0])
        lengths = training.length
        per_length = max(1, samples // max(1, len(lengths)))
        generated = []
        # generate at the training lengths, so the comparison is at the same conditions
        for length in lengths[torch.randperm(len(lengths), generator=generator)[:samples]]:
            generated.append(model.generate(phi, per_length, float(length), generator=generator))
        fields = torch.cat(generated)[:samples].double()
        s2_gen = two_point_correlation(fields, spatial_dims=model.dims).mean(0)
        s2_train = two_point_correlation(training.fields, spatial_dims=model.dims).mean(0)
        cov_gen = s2_gen - phi**2
        cov_train = s2_train - phi**2
        violations = (fields.flatten(start_dim=1).mean(1) - phi).abs()
        grey = ((fields > 0.05) & (fields < 0.95)).double().mean()
        rows.append(
            {
                "phi": phi,
                "s2_rel_error": float((s2_gen - s2_train).norm() / s2_train.norm()),
                "covariance_rel_error": float((cov_gen - cov_train).norm() / cov_train.norm()),
                "fraction_violation_mean": float(violations.mean()),
                "fraction_violation_max": float(violations.max()),
                "grey_fraction": float(grey),
                "s2_generated": s2_gen,
                "s2_training": s2_train,
                "samples": fields[:16],
            }
        )
    return rows


def train(config: MicroConfig) -> dict[str, Any]:
    """Build the data, train, evaluate; returns everything the report needs."""
    seed_everything(config.seed)
    started = time.perf_counter()
    data = build_dataset(config.data, config.seed)
    settings = config.train_settings()
    model = (train_vae if settings.kind == "vae" else train_wgan)(data, settings)
    statistics = compare_statistics(model, data, config.evaluation_samples, config.seed + 1)
    return {
        "config": config,
        "data": data,
        "model": model,
        "statistics": statistics,
        "seconds": time.perf_counter() - started,
    }


def write_train_run(result: dict[str, Any]) -> tuple[RunDirectory, dict[str, Any]]:
    from matforge.microstructure.report import s2_figure, sample_grid

    config: MicroConfig = result["config"]
    model: GenerativeModel = result["model"]
    run = RunDirectory.create(config.name, config.runs_dir)
    run.write_config(config)
    save_model(run.file("model.pt"), model, result["data"])
    rows = result["statistics"]
    metrics = {
        "kind": model.settings.kind,
        "constraint": model.settings.constraint,
        "train_s": model.seconds,
        "epochs": len(model.history),
        "training_samples": len(result["data"]),
        "per_fraction": [
            {k: v for k, v in row.items() if not isinstance(v, torch.Tensor)} for row in rows
        ],
        "s2_rel_error": max(row["s2_rel_error"] for row in rows),
        "fraction_violation": max(row["fraction_violation_max"] for row in rows),
        "seconds": result["seconds"],
    }
    run.write_metrics(metrics)
    run.write_json("history.json", model.history)
    if model.dims == 2:
        run.save_figure(
            "samples.png",
            sample_grid([row["samples"] for row in rows], [row["phi"] for row in rows]),
        )
    run.save_figure("two_point_correlation.png", s2_figure(rows, model.dims))
    return run, metrics

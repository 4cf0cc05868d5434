"""`matforge transfer run CONFIG.yaml` and `matforge transfer predict RUN formulas.csv`.

`run` pre-trains on the source task, draws the learning curves of every strategy on the
target task, writes them (learning_curve.csv, curve.png, metrics.json with the paired
differences from scratch), then trains a deep ensemble with the strategy of lowest MAE at
the largest size on the first repeat's target pool, reports its calibration on that
repeat's test rows, and saves it (model.pt) for `predict`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator

from matforge.core.config import JobConfig, StrictModel
from matforge.core.errors import ConfigError
from matforge.core.modelfile import load_record, save_record
from matforge.core.progress import get_logger
from matforge.core.rundir import RunDirectory
from matforge.core.seeding import seed_everything
from matforge.transfer.curves import learning_curve, paired_differences, split_target
from matforge.transfer.data import FormulaSet, mpea_task, read_formula_table
from matforge.transfer.ensemble import Ensemble, calibration, train_ensemble
from matforge.transfer.model import ModelSpec, SetRegressor
from matforge.transfer.training import STRATEGIES, FitSettings, fit, validation_split

log = get_logger(__name__)

FORMAT, FORMAT_VERSION = "matforge.transfer.ensemble", 1

__all__ = ["TransferConfig", "load_ensemble", "predict", "run", "write_run"]


class TaskSpec(StrictModel):
    kind: Literal["mpea", "files"] = "mpea"
    property: Literal["yield_strength_mpa", "hardness_hv"] = "yield_strength_mpa"
    split: Literal["arity", "structure"] = "arity"
    source: Path | None = Field(None, description="files: CSV with formula,target")
    target: Path | None = Field(None, description="files: CSV with formula,target")
    drop_bad: bool = Field(False, description="leave out unparseable rows instead of failing")

    @model_validator(mode="after")
    def _files(self) -> TaskSpec:
        if self.kind == "files" and (self.source is None or self.target is None):
            raise ValueError("kind: files needs source and target CSV paths")
        return self

    def load(self) -> tuple[FormulaSet, FormulaSet]:
        if self.kind == "mpea":
            return mpea_task(self.property, self.split)
        assert self.source is not None
        assert self.target is not None
        return (
            read_formula_table(self.source, drop_bad=self.drop_bad),
            read_formula_table(self.target, drop_bad=self.drop_bad),
        )


class ModelSection(StrictModel):
    encoder: Literal["deepsets", "attention"] = "deepsets"
    size: int = Field(64, ge=4)
    depth: int = Field(2, ge=1, le=6)
    heads: int = Field(4, ge=1)
    embedding: Literal["properties", "learned", "both"] = "properties"
    head: list[int] = Field(default_factory=lambda: [64])
    fraction_resolution: float = Field(
        5000.0, gt=0, description="resolution of the sinusoidal fraction encoding (CrabNet: 5000)"
    )

    def spec(self) -> ModelSpec:
        return ModelSpec(
            self.encoder,
            self.size,
            self.depth,
            self.heads,
            self.embedding,
            tuple(self.head),
            self.fraction_resolution,
        )


class FitSection(StrictModel):
    epochs: int = Field(400, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(2e-3, gt=0, lt=1)
    weight_decay: float = Field(1e-5, ge=0)
    patience: int = Field(40, ge=1)
    max_seconds: float | None = Field(None, gt=0)
    encoder_rate: float = Field(0.1, gt=0, le=1)
    l2sp_alpha: float = Field(1e-2, ge=0)
    schedule: Literal["early_stopping", "cosine_swa"] = "early_stopping"
    swa_start: float = Field(0.5, ge=0, lt=1)

    def settings(self, seed: int, device: str) -> FitSettings:
        return FitSettings(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            patience=self.patience,
            max_seconds=self.max_seconds,
            seed=seed,
            device=device,
            encoder_rate=self.encoder_rate,
            l2sp_alpha=self.l2sp_alpha,
            schedule=self.schedule,
            swa_start=self.swa_start,
        )


class TransferConfig(JobConfig):
    name: str = "transfer"
    task: TaskSpec = Field(default_factory=TaskSpec)
    model: ModelSection = Field(default_factory=ModelSection)
    pretrain: FitSection = Field(default_factory=FitSection)
    target_training: FitSection = Field(
        default_factory=lambda: FitSection(epochs=300, batch_size=16, patience=30)
    )
    strategies: list[str] = Field(default_factory=lambda: list(STRATEGIES))
    sizes: list[int] = Field(default_factory=lambda: [5, 10, 20, 40])
    repeats: int = Field(10, ge=1)
    test_fraction: float = Field(0.3, gt=0, lt=1)
    ensemble: int = Field(5, ge=1, description="members of the saved model")
    device: str = "cpu"

    @model_validator(mode="after")
    def _check(self) -> TransferConfig:
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown:
            raise ValueError(f"unknown strategies {unknown}; known: {list(STRATEGIES)}")
        if "scratch" not in self.strategies:
            raise ValueError("strategies must include scratch (the baseline of the report)")
        if any(size < 3 for size in self.sizes):
            raise ValueError("target sizes must be >= 3 (train and validation rows)")
        return self


def run(config: TransferConfig) -> dict[str, Any]:
    seed_everything(config.seed)
    device = config.device if config.device != "cuda" or torch.cuda.is_available() else "cpu"
    source_data, target_data = config.task.load()
    spec = config.model.spec()
    start = time.perf_counter()
    train_rows, validation_rows = validation_split(len(source_data), 0.15, config.seed)
    torch.manual_seed(config.seed)
    pretrained = fit(
        SetRegressor(spec),
        source_data.subset(train_rows),
        source_data.subset(validation_rows),
        config.pretrain.settings(config.seed, device),
    )
    pretrain_s = time.perf_counter() - start
    log.info("pre-trained on %d source rows in %.1f s", len(source_data), pretrain_s)
    settings = config.target_training.settings(config.seed, device)
    curve = learning_curve(
        target_data,
        spec,
        config.strategies,
        config.sizes,
        config.repeats,
        settings,
        source=pretrained.model,
        test_fraction=config.test_fraction,
    )
    if curve.empty:
        raise ConfigError(f"the target set ({len(target_data)} rows) is smaller than every size")
    differences = paired_differences(curve)
    largest = differences[differences["size"] == differences["size"].max()]
    best = str(largest.sort_values("mae").iloc[0]["strategy"])
    pool, test_rows = split_target(target_data, 0, config.test_fraction, 20, config.seed)
    ensemble = train_ensemble(
        best,
        spec,
        target_data.subset(pool),
        settings,
        members=config.ensemble,
        source=pretrained.model,
    )
    test = target_data.subset(test_rows)
    mean, std = ensemble.predict(test.batch)
    return {
        "config": config,
        "curve": curve,
        "differences": differences,
        "best_strategy": best,
        "ensemble": ensemble,
        "calibration": calibration(mean, std, test.targets),
        "pretrain_s": pretrain_s,
        "pretrain_validation_mae": pretrained.best_validation_mae,
        "source_rows": len(source_data),
        "target_rows": len(target_data),
        "dropped": [*source_data.dropped, *target_data.dropped],
    }


def write_run(result: dict[str, Any]) -> tuple[RunDirectory, dict[str, Any]]:
    from matforge.core.rundir import pyplot

    config: TransferConfig = result["config"]
    run_dir = RunDirectory.create(config.name, config.runs_dir)
    run_dir.write_config(config)
    run_dir.write_table("learning_curve.csv", result["curve"])
    run_dir.write_table("paired_differences.csv", result["differences"])
    ensemble: Ensemble = result["ensemble"]
    save_record(
        run_dir.file("model.pt"),
        FORMAT,
        FORMAT_VERSION,
        {
            "spec": config.model.spec().to_dict(),
            "members": [
                {k: v.detach().cpu() for k, v in m.state_dict().items()} for m in ensemble.members
            ],
        },
    )
    metrics = {
        "best_strategy": result["best_strategy"],
        "pretrain_s": result["pretrain_s"],
        "pretrain_validation_mae": result["pretrain_validation_mae"],
        "source_rows": result["source_rows"],
        "target_rows": result["target_rows"],
        "calibration": result["calibration"],
        "paired_differences": result["differences"].to_dict(orient="records"),
        "dropped_rows": [{"line": line, "reason": why} for line, why in result["dropped"]],
    }
    run_dir.write_metrics(metrics)
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(5.5, 4))
    table = result["differences"]
    for strategy, block in table.groupby("strategy"):
        axes.errorbar(block["size"], block["mae"], yerr=block["mae_std"], capsize=3, label=strategy)
    axes.set_xscale("log")
    axes.set_xlabel("target training samples")
    axes.set_ylabel("test MAE")
    axes.legend()
    figure.tight_layout()
    run_dir.save_figure("learning_curve.png", figure)
    return run_dir, metrics


def load_ensemble(run: str | Path) -> Ensemble:
    run = Path(run)
    if not run.is_dir():
        raise ConfigError(f"{run}: not a run directory (expected the output of 'transfer run')")
    record = load_record(run / "model.pt", FORMAT, FORMAT_VERSION, "transfer ensemble")
    raw = dict(record.part("spec"))
    spec = ModelSpec(**{**raw, "head": tuple(raw["head"])})
    members = []
    for state in record.part("members"):
        model = SetRegressor(spec)
        model.load_state_dict(state)
        model.eval()
        members.append(model)
    return Ensemble(members)


def predict(run: str | Path, formulas: str | Path, *, drop_bad: bool = False) -> dict[str, Any]:
    """Ensemble mean and standard deviation for each formula of a CSV (column `formula`)."""
    ensemble = load_ensemble(run)
    data = read_formula_table(formulas, target=None, drop_bad=drop_bad)
    mean, std = ensemble.predict(data.batch)
    frame = pd.DataFrame({"formula": data.formulas, "prediction": mean, "std": std})
    return {
        "predictions": frame.to_dict(orient="records"),
        "dropped": [{"line": line, "reason": why} for line, why in data.dropped],
        "members": len(ensemble.members),
        "mean_std": float(np.mean(std)),
    }

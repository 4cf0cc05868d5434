"""`matforge xc train CONFIG.yaml` and `matforge xc eval RUN --set g2-1`.

`train` prepares reference densities for the G2-1 molecules of the train and validation
splits and their atoms (cached, resumable), and for the fractional-electron series of
`training.linearity.species`; with `reference_data`, it first computes coupled-cluster
energies of those molecules (and of extra G2 molecules) on Dask into a database and takes
their atomization energies as targets instead of experiment. It fits a `NeuralMetaGGA` or
(`model.kind: local_hybrid`) a `LocalHybrid`
(validation rows choose the epoch; the linearity penalty when its weight is > 0), and
writes the run: config.yaml, functional.pt, metrics.json (with the deviations from
piecewise linearity before and after), history.csv and fit.png (MAE per epoch). `eval`
runs the learned functional and any reference functionals self-consistently on a split
(default: test, never seen in training) and writes eval-<split>.json and parity-<split>.png.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import Field

from matforge.active.config import ExecutorSpec
from matforge.core.config import JobConfig, StrictModel
from matforge.core.errors import ConfigError
from matforge.core.modelfile import load_record, save_record
from matforge.core.progress import get_logger
from matforge.core.rundir import RunDirectory
from matforge.core.seeding import seed_everything
from matforge.xc.data import g2_1_atoms, g2_1_molecules, g2_1_split, g2_extra_molecules
from matforge.xc.fractional import linearity_deviations, prepare_fractional
from matforge.xc.functionals import XCFunctional
from matforge.xc.local_hybrid import LocalHybrid
from matforge.xc.neural import NeuralMetaGGA
from matforge.xc.training import (
    HARTREE_KCAL,
    fit,
    needed_atoms,
    prepare,
    scf_atomization_energies,
)

log = get_logger(__name__)
FORMAT, FORMAT_VERSION = "matforge.xc.functional", 1

__all__ = ["XCTrainConfig", "evaluate_run", "load_functional", "train"]


class ModelSection(StrictModel):
    kind: Literal["meta_gga", "local_hybrid"] = Field(
        "meta_gga", description="neural meta-GGA, or local hybrid with exact exchange"
    )
    hidden: int = Field(16, ge=1, le=256)
    layers: int = Field(2, ge=1, le=6)

    def build(self, name: str = "") -> NeuralMetaGGA | LocalHybrid:
        if self.kind == "local_hybrid":
            return LocalHybrid(self.hidden, self.layers, name=name or "neural_local_hybrid")
        return NeuralMetaGGA(self.hidden, self.layers, name=name or "neural_mgga")


class LinearitySection(StrictModel):
    weight: float = Field(0.0, ge=0, description="penalty weight; 0 = reported, not trained")
    species: list[str] = Field(default_factory=lambda: ["H", "He+", "Li"])
    fractions: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75])


class TrainingSection(StrictModel):
    epochs: int = Field(200, ge=1)
    learning_rate: float = Field(1e-2, gt=0, lt=1)
    self_interaction_weight: float = Field(0.0, ge=0)
    linearity: LinearitySection = Field(default_factory=LinearitySection)


class ReferenceDataSection(StrictModel):
    """Coupled-cluster atomization energies as training and validation targets."""

    method: Literal["ccsd", "ccsd(t)"] = "ccsd(t)"
    basis: str = "cc-pvtz"
    frozen_core: bool = True
    database: Path = Field(Path("cache/xc/reference.db"), description="SQLite file or URL")
    extra_max_heavy_atoms: int = Field(
        0,
        ge=0,
        le=4,
        description="add G2 molecules outside G2-1 with at most this many "
        "heavy atoms to training (0: none)",
    )
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)


class XCTrainConfig(JobConfig):
    name: str = "xc"
    reference: str = Field("PBE", description="libxc functional giving the training densities")
    basis: str = "def2-svp"
    grid_level: int = Field(2, ge=0, le=9)
    split_seed: int = Field(0, ge=0)
    cache: Path = Field(Path("cache/xc"), description="folder of prepared densities")
    model: ModelSection = Field(default_factory=ModelSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    reference_data: ReferenceDataSection | None = Field(
        None, description="train on coupled-cluster targets instead of experiment"
    )


def _systems() -> dict[str, Any]:
    return {s.name: s for s in [*g2_1_molecules(), *g2_extra_molecules(4), *g2_1_atoms()]}


def _reference_targets(
    section: ReferenceDataSection, molecules: list[str], extra: list[str]
) -> tuple[dict[str, float], dict[str, Any]]:
    """Coupled-cluster atomization energies of `molecules` + `extra` (computed where the
    database lacks them, on Dask)."""
    from matforge.xc.reference import (
        coupled_cluster_oracle,
        reference_atomization,
        reference_energies,
    )

    systems = _systems()
    names = [*molecules, *extra]
    oracle = coupled_cluster_oracle(section.method, section.basis, frozen_core=section.frozen_core)
    start = time.perf_counter()
    with section.executor.runner(oracle) as runner:
        result = reference_energies(
            [systems[n] for n in [*names, *needed_atoms(names)]],
            section.database,
            oracle=oracle,
            runner=runner,
        )
    targets = reference_atomization(result.energies, names)
    for name, message in result.failed.items():
        log.warning("reference %s failed for %s: %s", oracle.name, name, message)
    info = {
        "oracle": oracle.name,
        "database": str(section.database),
        "computed": len(result.computed),
        "failed": result.failed,
        "seconds": time.perf_counter() - start,
        "without_target": [n for n in names if n not in targets],
    }
    return targets, info


def _linearity_report(functional: XCFunctional, series: list) -> dict[str, list[float]]:
    """Deviation from piecewise linearity (kcal/mol) per species and fraction, fixed
    densities."""
    import torch

    with torch.no_grad():
        return {
            s.species: [float(d) * HARTREE_KCAL for d in linearity_deviations(functional, s)]
            for s in series
        }


def train(config: XCTrainConfig) -> tuple[RunDirectory, dict[str, Any]]:
    seed_everything(config.seed)
    split = g2_1_split(config.split_seed)
    training, validation = list(split["train"]), list(split["validation"])
    targets, reference_info = None, None
    if config.reference_data is not None:
        extra = (
            [s.name for s in g2_extra_molecules(config.reference_data.extra_max_heavy_atoms)]
            if config.reference_data.extra_max_heavy_atoms
            else []
        )
        targets, reference_info = _reference_targets(
            config.reference_data, [*training, *validation], extra
        )
        # a molecule whose reference failed is left out, and said so in the metrics
        training = [n for n in [*training, *extra] if n in targets]
        validation = [n for n in validation if n in targets]
        if not training or not validation:
            raise ConfigError("reference data: no training or no validation molecule left")
    names = [*training, *validation]
    names += needed_atoms(names)
    exact_exchange = config.model.kind == "local_hybrid"
    systems = _systems()
    start = time.perf_counter()
    data = prepare(
        [systems[n] for n in names],
        config.cache,
        reference=config.reference,
        basis=config.basis,
        grid_level=config.grid_level,
        exact_exchange=exact_exchange,
        progress=lambda name, s: log.info("prepared %s (%.1f s)", name, s),
    )
    linearity = config.training.linearity
    series = (
        prepare_fractional(
            linearity.species,
            config.cache,
            fractions=linearity.fractions,
            reference=config.reference,
            basis=config.basis,
            grid_level=config.grid_level,
            exact_exchange=exact_exchange,
            progress=lambda name, s: log.info("prepared %s (%.1f s)", name, s),
        )
        if linearity.species
        else []
    )
    prepare_s = time.perf_counter() - start
    functional = config.model.build()
    linearity_before = _linearity_report(functional, series)
    start = time.perf_counter()
    result = fit(
        functional,
        data,
        training,
        validation,
        epochs=config.training.epochs,
        learning_rate=config.training.learning_rate,
        self_interaction_weight=config.training.self_interaction_weight,
        targets=targets,
        linearity=series,
        linearity_weight=linearity.weight,
        progress=lambda epoch, train_mae, validation_mae: (
            log.info(
                "epoch %d: train MAE %.2f, validation MAE %.2f kcal/mol (fixed densities)",
                epoch,
                train_mae,
                validation_mae,
            )
            if epoch % 10 == 0
            else None
        ),
    )
    run = RunDirectory.create(config.name, config.runs_dir)
    run.write_config(config)
    save_record(
        run.file("functional.pt"),
        FORMAT,
        FORMAT_VERSION,
        {"state": functional.state_dict(), "model": config.model.model_dump()},
    )
    history = pd.DataFrame(result["history"])
    run.write_table("history.csv", history)
    from matforge.core.rundir import pyplot

    plt = pyplot()
    figure, axes = plt.subplots(figsize=(5, 3.5))
    axes.plot(history["epoch"], history["train_mae"], label="train (fixed densities)")
    axes.plot(history["epoch"], history["validation_mae"], label="validation (fixed densities)")
    axes.set_xlabel("epoch")
    axes.set_ylabel("atomization MAE (kcal/mol)")
    axes.set_yscale("log")
    axes.legend()
    figure.tight_layout()
    run.save_figure("fit.png", figure)
    metrics = {
        "split": split,
        "trained_on": training,
        "validated_on": validation,
        "targets": "experiment" if reference_info is None else reference_info["oracle"],
        "reference_data": reference_info,
        "reference": config.reference,
        "basis": config.basis,
        "prepare_s": prepare_s,
        "fit_s": time.perf_counter() - start,
        "best_epoch": result["best_epoch"],
        "best_validation_mae_fixed_density": result["best_validation_mae"],
        "initial_train_mae": result["history"][0]["train_mae"] if result["history"] else None,
        "final_train_mae": result["history"][-1]["train_mae"] if result["history"] else None,
        "linearity_deviation_kcal": {
            "initial": linearity_before,
            "trained": _linearity_report(functional, series),
        },
    }
    run.write_metrics(metrics)
    return run, metrics


def load_functional(run: str | Path) -> XCFunctional:
    run = Path(run)
    if not run.is_dir():
        raise ConfigError(f"{run}: not a run directory (expected the output of 'xc train')")
    record = load_record(run / "functional.pt", FORMAT, FORMAT_VERSION, "learned functional")
    functional = ModelSection(**dict(record.part("model"))).build(run.name)
    functional.load_state_dict(record.part("state"))
    return functional


def evaluate_run(
    run: str | Path,
    *,
    split: str = "test",
    references: tuple[str, ...] = (),
    basis: str | None = None,
) -> dict[str, Any]:
    """Self-consistent atomization energies of a split's molecules with the learned
    functional and each of `references` (libxc names); written into the run."""
    run_dir = RunDirectory(run)
    import yaml

    config = XCTrainConfig(**yaml.safe_load(run_dir.file("config.yaml").read_text()))
    splits = g2_1_split(config.split_seed)
    if split not in splits:
        raise ConfigError(f"split must be one of {sorted(splits)}, got {split!r}")
    molecules = splits[split]
    basis = basis or config.basis
    results = {}
    functionals: list[Any] = [load_functional(run), *references]
    for functional in functionals:
        label = functional if isinstance(functional, str) else "learned"
        start = time.perf_counter()
        results[label] = scf_atomization_energies(functional, molecules, basis=basis)
        results[label]["wall_s"] = time.perf_counter() - start
        log.info("%s on %s: MAE %s kcal/mol", label, split, results[label]["mae"])
    report = {"split": split, "basis": basis, "molecules": molecules, "functionals": results}
    run_dir.write_json(f"eval-{split}-{basis}.json", report)
    from matforge.core.rundir import pyplot
    from matforge.xc.data import atomization_energy

    plt = pyplot()
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    for label, entry in results.items():
        names = list(entry["errors"])
        axes.scatter(
            [atomization_energy(n) for n in names],
            [entry["atomization"][n] for n in names],
            s=12,
            label=f"{label} (MAE {entry['mae']:.2f})" if entry["mae"] is not None else label,
        )
    low, high = axes.get_xlim()
    axes.plot([low, high], [low, high], color="grey", lw=0.8)
    axes.set_xlabel("experiment (kcal/mol)")
    axes.set_ylabel("self-consistent (kcal/mol)")
    axes.legend(fontsize=7)
    figure.tight_layout()
    run_dir.save_figure(f"parity-{split}-{basis}.png", figure)
    return report

"""`matforge xc train CONFIG.yaml` and `matforge xc eval RUN --set g2-1`.

`train` prepares reference densities for the G2-1 molecules of the train and validation
splits and their atoms (cached, resumable), fits a `NeuralMetaGGA` on them (validation
rows choose the epoch), and writes the run: config.yaml, functional.pt, metrics.json,
history.csv and fit.png (MAE per epoch). `eval` runs the learned functional and any
reference functionals self-consistently on a split (default: test, never seen in
training) and writes eval-<split>.json and parity-<split>.png.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import Field

from matforge.core.config import JobConfig, StrictModel
from matforge.core.errors import ConfigError
from matforge.core.modelfile import load_record, save_record
from matforge.core.progress import get_logger
from matforge.core.rundir import RunDirectory
from matforge.core.seeding import seed_everything
from matforge.xc.data import g2_1_atoms, g2_1_molecules, g2_1_split
from matforge.xc.neural import NeuralMetaGGA
from matforge.xc.training import fit, needed_atoms, prepare, scf_atomization_energies

log = get_logger(__name__)
FORMAT, FORMAT_VERSION = "matforge.xc.functional", 1

__all__ = ["XCTrainConfig", "evaluate_run", "load_functional", "train"]


class ModelSection(StrictModel):
    hidden: int = Field(16, ge=1, le=256)
    layers: int = Field(2, ge=1, le=6)


class TrainingSection(StrictModel):
    epochs: int = Field(200, ge=1)
    learning_rate: float = Field(1e-2, gt=0, lt=1)
    self_interaction_weight: float = Field(0.0, ge=0)


class XCTrainConfig(JobConfig):
    name: str = "xc"
    reference: str = Field("PBE", description="libxc functional giving the training densities")
    basis: str = "def2-svp"
    grid_level: int = Field(2, ge=0, le=9)
    split_seed: int = Field(0, ge=0)
    cache: Path = Field(Path("cache/xc"), description="folder of prepared densities")
    model: ModelSection = Field(default_factory=ModelSection)
    training: TrainingSection = Field(default_factory=TrainingSection)


def _systems() -> dict[str, Any]:
    return {s.name: s for s in [*g2_1_molecules(), *g2_1_atoms()]}


def train(config: XCTrainConfig) -> tuple[RunDirectory, dict[str, Any]]:
    seed_everything(config.seed)
    split = g2_1_split(config.split_seed)
    names = [*split["train"], *split["validation"]]
    names += needed_atoms(names)
    systems = _systems()
    start = time.perf_counter()
    data = prepare(
        [systems[n] for n in names],
        config.cache,
        reference=config.reference,
        basis=config.basis,
        grid_level=config.grid_level,
        progress=lambda name, s: log.info("prepared %s (%.1f s)", name, s),
    )
    prepare_s = time.perf_counter() - start
    functional = NeuralMetaGGA(config.model.hidden, config.model.layers)
    start = time.perf_counter()
    result = fit(
        functional,
        data,
        split["train"],
        split["validation"],
        epochs=config.training.epochs,
        learning_rate=config.training.learning_rate,
        self_interaction_weight=config.training.self_interaction_weight,
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
        "reference": config.reference,
        "basis": config.basis,
        "prepare_s": prepare_s,
        "fit_s": time.perf_counter() - start,
        "best_epoch": result["best_epoch"],
        "best_validation_mae_fixed_density": result["best_validation_mae"],
        "initial_train_mae": result["history"][0]["train_mae"] if result["history"] else None,
        "final_train_mae": result["history"][-1]["train_mae"] if result["history"] else None,
    }
    run.write_metrics(metrics)
    return run, metrics


def load_functional(run: str | Path) -> NeuralMetaGGA:
    run = Path(run)
    if not run.is_dir():
        raise ConfigError(f"{run}: not a run directory (expected the output of 'xc train')")
    record = load_record(run / "functional.pt", FORMAT, FORMAT_VERSION, "learned functional")
    model = dict(record.part("model"))
    functional = NeuralMetaGGA(int(model["hidden"]), int(model["layers"]), name=run.name)
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

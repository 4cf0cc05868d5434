"""Transfer learning across alloy systems and from a large DFT set, beside CrabNet.

    .venv/bin/python benchmarks/transfer.py [--parts mpea,steels,expt_gap]
        [--repeats 10] [--pretrain-seconds 600] [--crabnet-epochs 300] [--threads 1]

Part `mpea` (bundled MPEA data, Borg et al. 2020; room-temperature yield strength and
hardness): source quinary -> target senary alloys, and FCC -> BCC. Per target size
(5, 10, 20, 40) and repeat (10): a random test set (30% of the target alloys), target
training rows from the rest (20% of them for early stopping); every strategy (scratch,
feature, finetune, l2sp) on the same rows; Deep Sets and the attention encoder. Reported:
test MAE, the paired difference of each strategy from scratch with its 95% t-interval,
and the gain of the best transfer strategy at the smallest size.

Parts `steels` / `expt_gap` (Matbench tasks on CrabNet's five train/val/test splits,
../shared/data/composition): first the Deep Sets model's width, fraction-encoding
resolution and element embedding (element properties, or properties plus a learned vector
per element: "both") are chosen on steels' validation rows only (scratch, one model per
split and grid point, cosine-annealed with weight averaging; `--select`), then that model is
pre-trained on mp_e_form (132,752 DFT formation energies, 15% held out for early
stopping, a wall-time budget; cached in the output folder), then per split:
matforge scratch, and matforge transferred (the strategy of lowest validation MAE among
feature / finetune / l2sp: chosen on the split's validation rows, reported on its test
rows), and CrabNet trained on the same train/val rows with its own recommended settings
(benchmarks/crabnet_reference.py), in a worker process of this run, beside matforge.
Target models train for 300 epochs at a cosine-annealed learning rate with stochastic
weight averaging over the second half (`schedule="cosine_swa"`), as CrabNet does, instead
of early stopping on ~25 validation rows. matforge's figure per strategy is the mean of
an ensemble (`--members-steels`, default 5; `--members-expt-gap`, default 1 for CPU
time), CrabNet's a single model (with SWA) as its script trains. On 2 CPU cores
CrabNet's 300 epochs take 6-20 min per steels split; on expt_gap (15x the rows) hours
per split, so by default it is trained on steels only
(`--crabnet-tasks steels_yield,expt_gap` to add it).
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from matforge.core.modelfile import load_record, save_record
from matforge.transfer.curves import learning_curve, paired_differences
from matforge.transfer.data import matbench_split, mpea_task, read_formula_table
from matforge.transfer.model import ModelSpec, SetRegressor
from matforge.transfer.training import FitSettings, fit, train_strategy, validation_split

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "composition"
TRANSFER = ("feature", "finetune", "l2sp")
SIZES = (5, 10, 20, 40)


def mpea_part(repeats: int) -> dict:
    results = {}
    source_settings = FitSettings(epochs=400, batch_size=32, patience=40)
    target_settings = FitSettings(epochs=300, batch_size=16, patience=30)
    for prop in ("yield_strength_mpa", "hardness_hv"):
        for split in ("arity", "structure"):
            source, target = mpea_task(prop, split)
            for encoder in ("deepsets", "attention"):
                spec = ModelSpec(encoder=encoder)
                train_rows, validation_rows = validation_split(len(source), 0.15, 0)
                torch.manual_seed(0)
                pretrained = fit(
                    SetRegressor(spec),
                    source.subset(train_rows),
                    source.subset(validation_rows),
                    source_settings,
                )
                curve = learning_curve(
                    target,
                    spec,
                    ("scratch", *TRANSFER),
                    SIZES,
                    repeats,
                    target_settings,
                    source=pretrained.model,
                )
                table = paired_differences(curve)
                key = f"{prop}/{split}/{encoder}"
                results[key] = {
                    "source_rows": len(source),
                    "target_rows": len(target),
                    "table": table.to_dict(orient="records"),
                }
                smallest = table[(table["size"] == min(SIZES)) & (table["strategy"] != "scratch")]
                best = smallest.sort_values("mae").iloc[0]
                print(
                    f"{key}: {len(source)} -> {len(target)}; at n={min(SIZES)} best "
                    f"{best['strategy']} {best['mae']:.1f} vs scratch "
                    f"{best['mae'] - best['difference']:.1f} "
                    f"(diff {best['difference']:+.1f}, 95% CI [{best['ci_low']:+.1f}, "
                    f"{best['ci_high']:+.1f}])",
                    flush=True,
                )
    return results


def _crabnet_split(task: str, index: int, epochs: int, threads: int) -> dict:
    """CrabNet on one split; a failure is recorded (with its message), not raised, so
    that it cannot take the rest of the benchmark's results with it."""
    torch.set_num_threads(threads)
    try:
        from crabnet_reference import run_crabnet

        folder = DATA / "matbench_cv" / task
        parts = [pd.read_csv(folder / f"{p}{index}.csv") for p in ("train", "val", "test")]
        return run_crabnet(*parts, epochs=epochs)
    except Exception as error:  # a reference that fails is reported beside the others
        return {"error": f"{type(error).__name__}: {error}"}


def target_settings(seed: int) -> FitSettings:
    return FitSettings(epochs=300, batch_size=32, schedule="cosine_swa", seed=seed)


def select_spec(grid: list[tuple[int, float, str]]) -> tuple[ModelSpec, list[dict]]:
    """(width, fraction resolution, element embedding) of lowest mean validation MAE over
    steels' 5 splits; test rows are not read."""
    rows = []
    for size, resolution, embedding in grid:
        spec = _spec(size, resolution, embedding)
        scores = []
        for index in range(5):
            train, val, _ = matbench_split(DATA / "matbench_cv", "steels_yield", index)
            result = train_strategy("scratch", spec, train, val, target_settings(0))
            scores.append(result.best_validation_mae)
        rows.append(
            {
                "size": size,
                "resolution": resolution,
                "embedding": embedding,
                "val_mae": float(np.mean(scores)),
                "val_mae_per_split": scores,
            }
        )
        print(f"selection (steels val rows): {rows[-1]}", flush=True)
    best = min(rows, key=lambda r: r["val_mae"])
    return _spec(best["size"], best["resolution"], best["embedding"]), rows


def _spec(size: int, resolution: float, embedding: str) -> ModelSpec:
    return ModelSpec(
        size=size,
        depth=3,
        head=(size,),
        fraction_resolution=resolution,
        embedding=embedding,  # type: ignore[arg-type]
    )


def _grid(text: str) -> list[tuple[int, float, str]]:
    """'256:500,256:500:both' -> [(256, 500.0, 'properties'), (256, 500.0, 'both')]."""
    grid = []
    for item in text.split(","):
        size, resolution, *rest = item.split(":")
        grid.append((int(size), float(resolution), rest[0] if rest else "properties"))
    return grid


def pretrain(seconds: float, spec: ModelSpec, cache: Path) -> tuple[SetRegressor, dict]:
    """Pre-train on mp_e_form, or load the model a previous run cached for this spec and
    budget (the cache's key holds both)."""
    if cache.exists():
        record = load_record(cache, "matforge.benchmark.pretrained", 1, "pre-trained model")
        model = SetRegressor(spec)
        model.load_state_dict(record.part("state"))
        info = dict(record.part("info"))
        print(f"pre-trained model loaded from {cache}: {info}", flush=True)
        return model, info
    start = time.perf_counter()
    source = read_formula_table(DATA / "matbench" / "mp_e_form.csv")
    parse_s = time.perf_counter() - start
    train_rows, validation_rows = validation_split(len(source), 0.15, 0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    settings = FitSettings(
        epochs=1000,
        batch_size=512,
        learning_rate=2e-3,
        patience=10,
        max_seconds=seconds,
        device=device,
    )
    torch.manual_seed(0)
    result = fit(
        SetRegressor(spec), source.subset(train_rows), source.subset(validation_rows), settings
    )
    result.model.cpu()
    info = {
        "rows": len(source),
        "parse_s": parse_s,
        "pretrain_s": result.seconds,
        "epochs": len(result.history),
        "validation_mae_eV_atom": result.best_validation_mae,
        "device": device,
    }
    print(f"pre-trained on mp_e_form: {info}", flush=True)
    save_record(
        cache,
        "matforge.benchmark.pretrained",
        1,
        {"state": result.model.state_dict(), "info": info, "spec": spec.to_dict()},
    )
    return result.model, info


def matbench_part(
    task: str, source_model: SetRegressor, spec: ModelSpec, members: int, transfer: list[str]
) -> list[dict]:
    """Per split and strategy, an ensemble of `members` (seeds) trained on the train rows
    with early stopping on the val rows; its mean predicts the test rows."""
    rows = []
    for index in range(5):
        train, val, test = matbench_split(DATA / "matbench_cv", task, index)
        entry: dict = {"split": index}
        validation = {}
        for strategy in ("scratch", *transfer):
            predictions, scores = [], []
            for member in range(members):
                settings = target_settings(member)
                result = train_strategy(strategy, spec, train, val, settings, source_model)
                predictions.append(result.model.predict(test.batch).numpy())
                scores.append(result.best_validation_mae)
            predicted = np.mean(predictions, axis=0)
            entry[f"{strategy}_test_mae"] = float(np.mean(np.abs(predicted - test.targets)))
            validation[strategy] = float(np.mean(scores))
        chosen = min(transfer, key=validation.get)
        entry["transfer_strategy"] = chosen
        entry["transfer_test_mae"] = entry[f"{chosen}_test_mae"]
        entry["validation_mae"] = validation
        rows.append(entry)
        print(
            f"{task} split {index}: scratch {entry['scratch_test_mae']:.4g}, transferred "
            f"({chosen}) {entry['transfer_test_mae']:.4g}",
            flush=True,
        )
    return rows


def summary(values: list[float]) -> dict[str, float]:
    spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(np.mean(values)), "std": spread, "splits": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="mpea,steels,expt_gap")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--pretrain-seconds", type=float, default=600.0)
    parser.add_argument("--crabnet-epochs", type=int, default=300)
    parser.add_argument(
        "--crabnet-tasks",
        default="steels_yield",
        help="tasks CrabNet is trained on here (comma list, or none)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--members-steels", type=int, default=5)
    parser.add_argument("--members-expt-gap", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/transfer"))
    parser.add_argument(
        "--select",
        default="256:500,256:500:both,256:200,256:200:both",
        help="grid of width:resolution[:embedding] chosen among on steels' validation rows",
    )
    parser.add_argument(
        "--transfer-strategies",
        default=",".join(TRANSFER),
        help="transfer strategies compared on steels/expt_gap (chosen on val rows)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    parts = args.parts.split(",")
    tasks = {"steels": "steels_yield", "expt_gap": "expt_gap"}
    crabnet_tasks = [t for t in args.crabnet_tasks.split(",") if t and t != "none"]
    report: dict = {}
    pool = ProcessPoolExecutor(max_workers=1)
    futures = {
        (task, i): pool.submit(_crabnet_split, task, i, args.crabnet_epochs, args.threads)
        for task in crabnet_tasks
        if any(tasks.get(p) == task for p in parts)
        for i in range(5)
    }
    args.out.mkdir(parents=True, exist_ok=True)
    partial = args.out / f"results-{'-'.join(parts)}.partial.json"
    if "mpea" in parts:
        report["mpea"] = mpea_part(args.repeats)
        partial.write_text(json.dumps(report, indent=1))
    if any(p in tasks for p in parts):
        spec, report["selection"] = select_spec(_grid(args.select))
        partial.write_text(json.dumps(report, indent=1))
        key = f"{spec.size}-{spec.fraction_resolution:g}-{args.pretrain_seconds:g}"
        if spec.embedding != "properties":
            key += f"-{spec.embedding}"
        cache = args.out / f"pretrained-{key}.pt"
        source_model, report["pretrain"] = pretrain(args.pretrain_seconds, spec, cache)
        for part in parts:
            if part in tasks:
                members = args.members_steels if part == "steels" else args.members_expt_gap
                transfer = args.transfer_strategies.split(",")
                report[part] = {
                    "matforge": matbench_part(tasks[part], source_model, spec, members, transfer),
                    "members": members,
                    "spec": spec.to_dict(),
                }
                partial.write_text(json.dumps(report, indent=1))
    for (task, index), future in futures.items():
        part = next(p for p, t in tasks.items() if t == task)
        report[part].setdefault("crabnet", []).append({"split": index, **future.result()})
        print(f"CrabNet {task} split {index}: {report[part]['crabnet'][-1]}", flush=True)
    pool.shutdown()

    benchmark: dict = {}
    if "mpea" in report:
        print()
        print(
            "| task | encoder | strategy | MAE n=5 | n=10 | n=20 | n=40 "
            "| diff. from scratch at n=5 (95% CI) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        gains = {}
        for key, entry in report["mpea"].items():
            table = pd.DataFrame(entry["table"])
            for strategy, block in table.groupby("strategy"):
                block = block.set_index("size")
                first = block.loc[min(SIZES)]
                print(
                    f"| {key.rsplit('/', 1)[0]} | {key.rsplit('/', 1)[1]} | {strategy} | "
                    + " | ".join(f"{block.loc[s, 'mae']:.1f}" for s in SIZES if s in block.index)
                    + f" | {first['difference']:+.1f} [{first['ci_low']:+.1f}, "
                    f"{first['ci_high']:+.1f}] |"
                )
            smallest = table[(table["size"] == min(SIZES)) & (table["strategy"] != "scratch")]
            gains[key] = float(smallest["gain_pct"].max())
        benchmark["mpea_gain_pct_at_smallest"] = gains
        senary = [v for k, v in gains.items() if "/arity/" in k]
        benchmark["mpea_senary_gain_pct"] = max(senary) if senary else None
    for part in ("steels", "expt_gap"):
        if part not in report:
            continue
        rows = report[part]["matforge"]
        scratch = summary([r["scratch_test_mae"] for r in rows])
        transfer = summary([r["transfer_test_mae"] for r in rows])
        benchmark[f"{part}_mae_scratch"] = scratch
        benchmark[f"{part}_mae_transfer"] = transfer
        print()
        print(
            f"{part} (CrabNet's 5 splits): test MAE mean +- std; matforge: mean of "
            f"{report[part]['members']} member(s) per strategy"
        )
        print("| model | MAE | per split |")
        print("|---|---|---|")
        print(
            f"| matforge scratch | {scratch['mean']:.4g} +- {scratch['std']:.3g} | "
            + ", ".join(f"{r['scratch_test_mae']:.4g}" for r in rows)
            + " |"
        )
        print(
            f"| matforge transferred from mp_e_form | {transfer['mean']:.4g} +- "
            f"{transfer['std']:.3g} | "
            + ", ".join(f"{r['transfer_test_mae']:.4g} ({r['transfer_strategy']})" for r in rows)
            + " |"
        )
        finished = [r for r in report[part].get("crabnet", []) if "mae" in r]
        for failed in [r for r in report[part].get("crabnet", []) if "error" in r]:
            print(f"CrabNet split {failed['split']} failed: {failed['error']}")
        if finished:
            report[part]["crabnet"] = finished
            crab = summary([r["mae"] for r in finished])
            benchmark[f"{part}_mae_crabnet"] = crab
            seconds = float(np.mean([r["seconds"] for r in report[part]["crabnet"]]))
            print(
                f"| CrabNet ({args.crabnet_epochs} epochs, {seconds:.0f} s per split) | "
                f"{crab['mean']:.4g} +- {crab['std']:.3g} | "
                + ", ".join(f"{r['mae']:.4g}" for r in report[part]["crabnet"])
                + " |"
            )
            print(f"ratio matforge transferred / CrabNet: {transfer['mean'] / crab['mean']:.3f}")
    if "pretrain" in report:
        benchmark["pretrain_s"] = report["pretrain"]["pretrain_s"]
        benchmark["pretrain_validation_mae_eV_atom"] = report["pretrain"]["validation_mae_eV_atom"]
    benchmark["steels_mae_transfer"] = benchmark.pop("steels_mae_transfer", None)
    (args.out / f"results-{'-'.join(parts)}.json").write_text(json.dumps(report, indent=1))
    print("BENCHMARK " + json.dumps(benchmark))


if __name__ == "__main__":
    main()

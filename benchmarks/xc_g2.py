"""Learned XC functional against LDA, PBE, SCAN and B3LYP on held-out G2-1 molecules.

    .venv/bin/python benchmarks/xc_g2.py [--basis cc-pvtz] [--epochs 150] [--threads 1]
        [--models meta_gga,local_hybrid] [--linearity-weight 1]

The G2-1 molecules are split by molecule (`matforge.xc.data.g2_1_split`, seed 0: 50%
train, 20% validation, 30% test). Two learned functionals, a `NeuralMetaGGA` (SCAN prior,
exact constraints built in) and a `LocalHybrid` (the same plus exact exchange mixed in
point by point), are fitted to the experimental atomization energies of the train
molecules on fixed reference (PBE) densities, with the piecewise-linearity penalty on
H, He+ and Li (`--linearity-weight`); the validation molecules choose the epoch of each
and, for `mae_learned`, the model (lower validation MAE); the test molecules are used
for nothing but this report. Every functional then runs self-consistently on the
test molecules and their atoms in the same basis and grid (libxc through PySCF for the
references; the learned one through `matforge.xc.attach`). Reported: MAE of the
atomization energies (kcal/mol) against experiment, SCF wall time of the learned
functional over PBE's on the same systems, and the one-electron constraints (H atom
self-interaction error, E(N) deviation from linearity for H and He+).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from matforge.xc.constraints import fractional_charge_curve, one_electron_report
from matforge.xc.job import XCTrainConfig, load_functional, train
from matforge.xc.training import scf_atomization_energies

REFERENCES = {"LDA": "LDA,VWN", "PBE": "PBE", "SCAN": "SCAN", "B3LYP": "B3LYP"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--basis", default="cc-pvtz")
    parser.add_argument("--train-grid-level", type=int, default=2)
    parser.add_argument("--grid-level", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path("cache/xc"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/xc"))
    parser.add_argument("--skip-constraints", action="store_true")
    parser.add_argument("--models", default="meta_gga,local_hybrid")
    parser.add_argument("--linearity-weight", type=float, default=1.0)
    parser.add_argument(
        "--runs",
        default="",
        help="kind=RUN_DIR,... : evaluate these trained runs instead of training (their "
        "metrics.json gives the fit figures)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    learned, fits = {}, {}
    given = dict(item.split("=", 1) for item in args.runs.split(",") if item)
    for kind, path in given.items():
        learned[kind] = load_functional(path)
        fits[kind] = json.loads((Path(path) / "metrics.json").read_text())
        print(f"{kind}: evaluating the trained run {path}", flush=True)
    for kind in [k for k in args.models.split(",") if k not in given]:
        config = XCTrainConfig(
            name=f"xc-g2-{kind}",
            runs_dir=args.out / "runs",
            basis=args.basis,
            grid_level=args.train_grid_level,
            cache=args.cache,
            model={"kind": kind, "hidden": args.hidden, "layers": 2},
            training={
                "epochs": args.epochs,
                "learning_rate": args.learning_rate,
                "linearity": {"weight": args.linearity_weight},
            },
        )
        run, fits[kind] = train(config)
        learned[kind] = load_functional(run.path)
        fitted = fits[kind]
        print(
            f"{kind}: fitted on {len(fitted['trained_on'])} molecules in "
            f"{fitted['fit_s']:.0f} s; best validation MAE (fixed densities) "
            f"{fitted['best_validation_mae_fixed_density']:.2f} at epoch "
            f"{fitted['best_epoch']} ({run.path})",
            flush=True,
        )
    chosen = min(fits, key=lambda k: fits[k]["best_validation_mae_fixed_density"])
    split = fits[chosen]["split"]
    test = split["test"]
    results = {}
    candidates = [(f"learned {kind}", functional) for kind, functional in learned.items()]
    for label, functional_or_code in [*candidates, *REFERENCES.items()]:
        start = time.perf_counter()
        results[label] = scf_atomization_energies(
            functional_or_code, test, basis=args.basis, grid_level=args.grid_level
        )
        results[label]["wall_s"] = time.perf_counter() - start
        print(f"{label}: test MAE {results[label]['mae']}", flush=True)
    constraints = {}
    if not args.skip_constraints:
        for label, functional_or_code in [*candidates, *REFERENCES.items()]:
            constraints[label] = {
                "h_atom": one_electron_report(functional_or_code, basis=args.basis),
                "fractional_h": fractional_charge_curve(functional_or_code, "H", basis=args.basis)[
                    "max_deviation"
                ],
                "fractional_he_plus": fractional_charge_curve(
                    functional_or_code, "He", basis=args.basis
                )["max_deviation"],
            }

    def scf_seconds(label: str) -> float:
        return sum(results[label]["seconds"].values())

    cost = scf_seconds(f"learned {chosen}") / scf_seconds("PBE")
    print()
    print(f"G2-1 test split ({len(test)} molecules), {args.basis}, self-consistent")
    print(
        "| functional | MAE (kcal/mol) | molecules | SCF time (s) | vs PBE time | SCF failures "
        "| converged by a fallback |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, entry in results.items():
        mae = f"{entry['mae']:.2f}" if entry["mae"] is not None else "-"
        print(
            f"| {label} | {mae} | {len(entry['errors'])} | {scf_seconds(label):.0f} | "
            f"{scf_seconds(label) / scf_seconds('PBE'):.2f} | {', '.join(entry['failed']) or '-'} "
            f"| {', '.join(f'{k} ({v})' for k, v in entry['fallback'].items()) or '-'} |"
        )
    if constraints:
        print()
        print(
            "| functional | H atom E - E_exact (mHa) | SIE E_xc + J (mHa) "
            "| E(N) H (mHa) | E(N) He+ (mHa) |"
        )
        print("|---|---|---|---|---|")
        for label, entry in constraints.items():
            h = entry["h_atom"]

            def milli(value: float | None) -> str:
                return f"{value * 1000:+.2f}" if value is not None else "-"

            print(
                f"| {label} | {milli(h['energy_error'])} | {milli(h['self_interaction'])} | "
                f"{milli(entry['fractional_h'])} | {milli(entry['fractional_he_plus'])} |"
            )
    benchmark = {
        "basis": args.basis,
        "test_molecules": len(test),
        "learned_chosen_on_validation": chosen,
        "mae_learned": results[f"learned {chosen}"]["mae"],
        **{f"mae_learned_{kind}": results[f"learned {kind}"]["mae"] for kind in learned},
        **{
            f"scf_cost_vs_pbe_{kind}": scf_seconds(f"learned {kind}") / scf_seconds("PBE")
            for kind in learned
        },
        "mae_lda": results["LDA"]["mae"],
        "mae_pbe": results["PBE"]["mae"],
        "mae_scan": results["SCAN"]["mae"],
        "mae_b3lyp": results["B3LYP"]["mae"],
        "scf_cost_vs_pbe": cost,
        "prepare_s": {kind: fits[kind]["prepare_s"] for kind in fits},
        "fit_s": {kind: fits[kind]["fit_s"] for kind in fits},
        "linearity_deviation_kcal": {
            kind: fits[kind]["linearity_deviation_kcal"]["trained"] for kind in fits
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"fit": fits, "results": results, "constraints": constraints}
    (args.out / f"results-{args.basis}.json").write_text(json.dumps(report, indent=1))
    print("BENCHMARK " + json.dumps(benchmark))


if __name__ == "__main__":
    main()

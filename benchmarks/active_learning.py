"""Active learning vs random selection: oracle calls to reach a target force error.

System: copper labelled by ASE's EMT (the oracle), fitted with SNAP (2J = 6, rc = 4.6 A).
The candidate pool is explored by EMT Langevin MD the way unattended exploration tends to
produce it: mostly room-temperature bulk (300 frames), fewer hot-bulk, vacancy and (111)
surface frames (510 in all). The held-out test set comes from separate, longer EMT MD runs
(other seeds) at 300, 900 and 1600 K bulk, a vacancy at 600 K and the surface at 600 K, 20
frames each. Every strategy starts from the same 2 room-temperature bulk frames (per seed)
and labels 2 configurations per iteration:

- committee: 8 bootstrap (atom-resampled) SNAP fits, force disagreement, farthest-point batch;
- grade: MTP's maxvol extrapolation grade, greedy D-optimal batch;
- leverage: statistical leverage, greedy batch;
- random: uniform from the pool.

The target force RMSE is 1.1 x that of SNAP fitted on the whole labelled pool; "calls" are
oracle labels beyond the shared initial 2.

With --gap, the same experiment is run with GAP as the model (SOAP n_max 6, l_max 4,
cutoff 4.6 A, atom_sigma 0.5, zeta 4, up to 300 sparse points by gap_fit's CUR; sigmas
0.002 eV/atom and 0.02 eV/A set a priori for EMT's noise-free labels): `gap-variance`
selects by the GP's predicted force sigma (a configuration's largest over its atoms) with
the greedy batch (the variance after adding a pick, its atoms joining the sparse set),
`gap-random` uniformly; GAP's target is 1.1 x the error of GAP fitted on the whole pool,
and a GAP run labels up to --gap-budget configurations (80: GAP on the whole pool is 2.6x
more accurate than SNAP, so its target takes more labels).
The ranking (largest sigma vs the RMS over atoms, `--gap-rms`) was chosen with
`--validation`, whose pools and test set come from other MD seeds, never on the reported
pools.

Two pools (--pools): `skewed` (above: exploration that oversamples the easy states, where
uncertainty-driven selection has the most to gain) and `matched`, drawn like the test set
(the same five states, 100 frames each, from MD runs with their own seed): there random
selection already sees the test distribution, so it is the harder comparison for active
learning. Both are reported. Writes learning_curve.png (median over seeds)
and results.json under --out; the last line is `BENCHMARK {...}`.

    .venv/bin/python benchmarks/active_learning.py            # about 5 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk, fcc111
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.langevin import Langevin
from ase.units import fs

from matforge.active import (
    CalculatorOracle,
    DesignCache,
    GapTrainer,
    GPVarianceUncertainty,
    LeverageGrade,
    LinearCommitteeUncertainty,
    LinearTrainer,
    MaxVolGrade,
    select_batch,
)
from matforge.active.store import new_uid
from matforge.mlip.gap import GapSettings, gap_potential
from matforge.mlip.job import SnapConfig, snap_potential
from matforge.mlip.md import set_thermal_momenta
from matforge.mlip.soap import SoapParameters

POOL = [
    ("bulk", 300, 300),
    ("bulk", 600, 60),
    ("bulk", 1000, 30),
    ("bulk", 1600, 20),
    ("vacancy", 300, 40),
    ("vacancy", 900, 15),
    ("surface", 300, 30),
    ("surface", 800, 15),
]
TEST = [
    ("bulk", 300, 20),
    ("bulk", 900, 20),
    ("bulk", 1600, 20),
    ("vacancy", 600, 20),
    ("surface", 600, 20),
]
MATCHED_POOL = [(name, temperature, 100) for name, temperature, _ in TEST]
POOLS = {"skewed": (POOL, 1), "matched": (MATCHED_POOL, 3)}  # spec, MD seed (test: 2)
STRATEGIES = ("committee", "grade", "leverage", "random")
GAP_STRATEGIES = ("gap-variance", "gap-random")
# ranking by the RMS of the atoms' sigmas instead of the largest: rejected on the validation
# pools (--validation, 3 seeds, 40 calls: max 36 calls to target, rms and random never)
GAP_RMS = "gap-variance-rms"
VALIDATION_SEED_OFFSET = 10  # --validation: pools and test set from other MD seeds
GAP_SETTINGS = GapSettings(
    n_sparse=300, default_sigma=(0.002, 0.02, 0.02), fit_virials=False, sparse_method="cur"
)


def systems() -> dict[str, Atoms]:
    crystal = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    vacancy = crystal.copy()
    del vacancy[0]
    surface = fcc111("Cu", (2, 2, 4), a=3.61, vacuum=6.0, periodic=True)
    return {"bulk": crystal, "vacancy": vacancy, "surface": surface}


def emt_md(spec: list[tuple[str, int, int]], seed: int, *, labelled: bool) -> list[Atoms]:
    """Frames every 10 steps (2 fs) of EMT Langevin MD after 200 steps of equilibration."""
    oracle = CalculatorOracle("emt")
    frames = []
    for k, (name, temperature, count) in enumerate(spec):
        atoms = systems()[name].copy()
        atoms.calc = oracle.make_calculator()
        rng = np.random.default_rng([seed, k])
        set_thermal_momenta(atoms, temperature, rng)
        md = Langevin(
            atoms, 2 * fs, temperature_K=temperature, friction=0.02 / fs, rng=rng, fixcm=False
        )
        md.run(200)
        for _ in range(count):
            md.run(10)
            frame = Atoms(atoms.numbers, atoms.positions.copy(), cell=atoms.cell, pbc=atoms.pbc)
            frame.info.update(uid=new_uid(), origin=f"{name}-{temperature}")
            if labelled:
                frame.calc = SinglePointCalculator(
                    frame, energy=atoms.get_potential_energy(), forces=atoms.get_forces()
                )
            frames.append(frame)
    return frames


def force_rmse(trainer: LinearTrainer, structures: list[Atoms], test: list[Atoms]) -> float:
    from matforge.active.model import predict

    coefficients = trainer.solve(trainer.system(structures))
    _, forces = predict(trainer.cache.rows(test), coefficients)
    pairs = zip(forces, test, strict=True)
    errors = np.concatenate([(f[0] - a.get_forces()).ravel() for f, a in pairs])
    return float(np.sqrt(np.mean(errors**2)))


def run_strategy(strategy, seed, pool, test, trainer, oracle, budget, batch) -> list[tuple]:
    rng = np.random.default_rng([seed, 99])
    room = [i for i, a in enumerate(pool) if a.info["origin"] == "bulk-300"]
    chosen = list(rng.choice(room, 2, replace=False))
    labelled = {}

    def label(i: int) -> Atoms:
        if i not in labelled:
            result = oracle(pool[i])  # the expensive call
            a = pool[i].copy()
            a.info.update(pool[i].info)
            a.calc = SinglePointCalculator(a, energy=result.energy, forces=result.forces)
            labelled[i] = a
        return labelled[i]

    training = [label(i) for i in chosen]
    curve = [(0, force_rmse(trainer, training, test))]
    while len(chosen) - 2 < budget:
        remaining = [i for i in range(len(pool)) if i not in set(chosen)]
        candidates = [pool[i] for i in remaining]
        if strategy == "random":
            picked = list(rng.choice(len(remaining), batch, replace=False))
        else:
            if strategy == "committee":
                members = trainer.fit_committee(training, 8, rng)
                measure = LinearCommitteeUncertainty(trainer.cache, members)
                diversity = "fps"
            else:
                grade = MaxVolGrade if strategy == "grade" else LeverageGrade
                measure = grade(trainer.cache, training)
                diversity = "greedy"
            estimate = measure.estimate(candidates)
            picked = select_batch(
                candidates,
                estimate,
                batch,
                lower=0.0,
                diversity=diversity,
                uncertainty=measure,
                cache=trainer.cache,
            ).indices
        chosen += [remaining[i] for i in picked]
        training = [label(i) for i in chosen]
        curve.append((len(chosen) - 2, force_rmse(trainer, training, test)))
    return curve


def gap_trainer() -> GapTrainer:
    parameters = SoapParameters(("Cu",), cutoff=4.6, n_max=6, l_max=4, atom_sigma=0.5)
    return GapTrainer(gap_potential(parameters), GAP_SETTINGS)


def gap_force_rmse(potential, test: list[Atoms]) -> float:
    out = potential(potential.batch(test), stress=False)
    truth = np.concatenate([a.get_forces() for a in test])
    return float(np.sqrt(np.mean((out.forces.numpy() - truth) ** 2)))


def run_gap_strategy(strategy, seed, pool, test, trainer, labels, budget, batch, cache) -> list:
    rng = np.random.default_rng([seed, 99])
    room = [i for i, a in enumerate(pool) if a.info["origin"] == "bulk-300"]
    chosen = list(rng.choice(room, 2, replace=False))
    training = [labels[i] for i in chosen]
    potential = trainer.fit(training)
    curve = [(0, gap_force_rmse(potential, test))]
    while len(chosen) - 2 < budget:
        remaining = [i for i in range(len(pool)) if i not in set(chosen)]
        if strategy == "gap-random":
            picked = list(rng.choice(len(remaining), batch, replace=False))
        else:
            candidates = [pool[i] for i in remaining]
            measure = GPVarianceUncertainty(
                potential,
                GAP_SETTINGS,
                cache=cache,
                training=training,
                aggregate="rms" if strategy.endswith("-rms") else "max",
            )
            estimate = measure.estimate(candidates)
            picked = select_batch(
                candidates, estimate, batch, lower=0.0, diversity="greedy", uncertainty=measure
            ).indices
        chosen += [remaining[i] for i in picked]
        training = [labels[i] for i in chosen]
        potential = trainer.fit(training)
        curve.append((len(chosen) - 2, gap_force_rmse(potential, test)))
    return curve


def calls_ratio(a: float, b: float) -> float | None:
    return a / b if np.isfinite(a) and np.isfinite(b) else None


def run_gap(pool: list[Atoms], everything: list[Atoms], test: list[Atoms], args) -> dict:
    start = time.perf_counter()
    strategies = (*GAP_STRATEGIES, GAP_RMS) if args.gap_rms else GAP_STRATEGIES
    trainer = gap_trainer()
    full = gap_force_rmse(trainer.fit(everything), test)
    target = args.target_factor * full
    cache: dict = {}
    curves = {s: [] for s in strategies}
    seconds = {}
    for strategy in strategies:
        t0 = time.perf_counter()
        for seed in range(args.seeds):
            curves[strategy].append(
                run_gap_strategy(
                    strategy,
                    seed,
                    pool,
                    test,
                    trainer,
                    everything,
                    args.gap_budget,
                    args.batch,
                    cache,
                )
            )
        seconds[strategy] = time.perf_counter() - t0
    calls = {s: [calls_to(c, target) for c in curves[s]] for s in strategies}
    median = {s: float(np.median(v)) for s, v in calls.items()}
    print(f"GAP on the whole pool: force RMSE {full:.4f} eV/A; target {target:.4f} eV/A")
    print(
        f"{'strategy':<17} {'calls to target (per seed)':<31} {'median':>7} "
        f"{'RMSE at 10 calls':>17} {'at budget':>10} {'seconds':>8}"
    )
    for s in strategies:
        per_seed = " ".join("-" if np.isinf(v) else f"{v:g}" for v in calls[s])
        at10 = np.median([dict(c).get(10, np.nan) for c in curves[s]])
        last = np.median([c[-1][1] for c in curves[s]])
        print(
            f"{s:<17} {per_seed:<31} {median[s]:>7g} {at10:>17.4f} {last:>10.4f} {seconds[s]:>8.1f}"
        )
    finite = lambda v: None if not np.isfinite(v) else v  # noqa: E731
    return {
        "calls_to_target_gap_variance": finite(median["gap-variance"]),
        "calls_to_target_gap_random": finite(median["gap-random"]),
        "ratio_gap_variance_vs_random": calls_ratio(median["gap-variance"], median["gap-random"]),
        "gap_rmse_at_budget": {
            s: float(np.median([c[-1][1] for c in curves[s]])) for s in strategies
        },
        "target_force_rmse_gap": target,
        "full_pool_force_rmse_gap": full,
        "gap_seconds": time.perf_counter() - start,
    }


def calls_to(curve: list[tuple], target: float) -> float:
    return next((calls for calls, rmse in curve if rmse <= target), float("inf"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=40, help="oracle calls per run")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--target-factor", type=float, default=1.1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/active_learning"))
    parser.add_argument("--pools", default="skewed,matched", help="comma-separated: skewed,matched")
    parser.add_argument("--gap", action="store_true", help="also run the GAP strategies")
    parser.add_argument("--gap-only", action="store_true", help="only the GAP strategies")
    parser.add_argument("--gap-rms", action="store_true", help="also rank GAP picks by RMS sigma")
    parser.add_argument(
        "--gap-budget",
        type=int,
        default=80,
        help="oracle calls per GAP run (GAP's target is 2.6x lower than SNAP's)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--validation",
        action="store_true",
        help="pools and test set from other MD seeds (for choosing settings)",
    )
    args = parser.parse_args()
    args.gap = args.gap or args.gap_only
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    offset = VALIDATION_SEED_OFFSET if args.validation else 0
    if args.validation:
        args.out = args.out.with_name(args.out.name + "_validation")
    test = emt_md(TEST, 2 + offset, labelled=True)
    benchmark: dict[str, object] = {"seeds": args.seeds}
    for name in [p.strip() for p in args.pools.split(",") if p.strip()]:
        spec, seed = POOLS[name]
        print(f"\npool '{name}'")
        figures = run_pool(name, emt_md(spec, seed + offset, labelled=False), test, args)
        benchmark |= {f"{key}_{name}": value for key, value in figures.items()}
    benchmark["seconds"] = time.perf_counter() - start
    print("BENCHMARK " + json.dumps(benchmark))


def run_pool(name: str, pool: list[Atoms], test: list[Atoms], args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    potential = snap_potential(
        SnapConfig(twojmax=6, rcutfac=4.6, radius={"Cu": 0.5}, weight={"Cu": 1.0})
    )
    cache = DesignCache(potential)
    trainer = LinearTrainer(potential, alpha=1e-8, cache=cache)
    cache.rows(pool + test)  # SNAP rows of every frame, once
    setup_seconds = time.perf_counter() - start
    oracle = CalculatorOracle("emt")
    everything = []
    for a in pool:
        result = oracle(a)
        b = a.copy()
        b.info.update(a.info)
        b.calc = SinglePointCalculator(b, energy=result.energy, forces=result.forces)
        everything.append(b)
    if args.gap_only:
        return run_gap(pool, everything, test, args) | {"pool_frames": len(pool)}
    full = force_rmse(trainer, everything, test)
    target = args.target_factor * full
    curves: dict[str, list] = {s: [] for s in STRATEGIES}
    seconds: dict[str, float] = {}
    for strategy in STRATEGIES:
        t0 = time.perf_counter()
        for seed in range(args.seeds):
            curves[strategy].append(
                run_strategy(strategy, seed, pool, test, trainer, oracle, args.budget, args.batch)
            )
        seconds[strategy] = time.perf_counter() - t0
    calls = {s: [calls_to(c, target) for c in curves[s]] for s in STRATEGIES}
    median = {s: float(np.median(v)) for s, v in calls.items()}
    print(
        f"pool {len(pool)} frames, test {len(test)} frames; SNAP on the whole pool: force "
        f"RMSE {full:.4f} eV/A; target {target:.4f} eV/A ({args.target_factor} x)"
    )
    print(
        f"{'strategy':<10} {'calls to target (per seed)':<34} {'median':>7} {'vs random':>9} "
        f"{'RMSE at 10 calls':>17} {'seconds':>8}"
    )
    for s in STRATEGIES:
        per_seed = " ".join("-" if np.isinf(v) else f"{v:g}" for v in calls[s])
        at10 = np.median([dict(c).get(10, np.nan) for c in curves[s]])
        ratio = median[s] / median["random"] if np.isfinite(median["random"]) else float("nan")
        print(
            f"{s:<10} {per_seed:<34} {median[s]:>7g} {ratio:>9.2f} {at10:>17.4f} {seconds[s]:>8.1f}"
        )
    sensitivity = {}
    print("median calls to other targets (x the whole-pool RMSE):")
    print(f"{'factor':>7} " + " ".join(f"{s:>10}" for s in STRATEGIES))
    for factor in (1.05, 1.1, 1.25, 1.5):
        row = {
            s: float(np.median([calls_to(c, factor * full) for c in curves[s]])) for s in STRATEGIES
        }
        sensitivity[str(factor)] = row
        print(f"{factor:>7} " + " ".join(f"{row[s]:>10g}" for s in STRATEGIES))
    args.out.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 4))
    for s in STRATEGIES:
        x = [calls for calls, _ in curves[s][0]]
        y = np.median([[r for _, r in c] for c in curves[s]], axis=0)
        axis.plot(x, y, "o-", ms=3, label=s)
    axis.axhline(target, color="k", ls="--", lw=0.8, label="target")
    axis.set_xlabel("oracle calls beyond the initial 2")
    axis.set_ylabel("test force RMSE (eV/A), median of seeds")
    axis.set_yscale("log")
    axis.legend()
    figure.tight_layout()
    figure.savefig(args.out / f"learning_curve_{name}.png", dpi=150)
    results = {
        "target_force_rmse": target,
        "full_pool_force_rmse": full,
        "calls": {s: [None if np.isinf(v) else v for v in calls[s]] for s in STRATEGIES},
        "curves": {s: [[list(p) for p in c] for c in curves[s]] for s in STRATEGIES},
        "median_calls_by_target_factor": sensitivity,
    }
    (args.out / f"results_{name}.json").write_text(json.dumps(results, indent=1))
    finite = lambda v: None if not np.isfinite(v) else v  # noqa: E731
    gap = run_gap(pool, everything, test, args) if args.gap else {}
    return gap | {
        "calls_to_target_committee": finite(median["committee"]),
        "calls_to_target_grade": finite(median["grade"]),
        "calls_to_target_leverage": finite(median["leverage"]),
        "calls_to_target_random": finite(median["random"]),
        "ratio_committee_vs_random": calls_ratio(median["committee"], median["random"]),
        "ratio_grade_vs_random": calls_ratio(median["grade"], median["random"]),
        "target_force_rmse": target,
        "full_pool_force_rmse": full,
        "pool_frames": len(pool),
        "setup_seconds": setup_seconds,
        "seconds": time.perf_counter() - start,
    }


if __name__ == "__main__":
    main()

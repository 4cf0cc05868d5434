"""Causal vs correlational estimates and designs on the confounded alloy generator, with
DoWhy's gcm fitted to the same data beside matforge's SCM.

    .venv/bin/python benchmarks/causal_design.py [--seeds 20] [--rows 2000]

Per seed, `rows` alloys from `matforge.causal.generator.ConfoundedAlloyGenerator` (a hidden
lab factor drives both the Ni fraction and the anneal temperature). The target: the effect
of Ni 0.18 -> 0.26 on the yield strength, E[S | do(Ni = 0.26)] - E[S | do(Ni = 0.18)], and
the Ni in [0.05, 0.45] that maximizes E[S | do(Ni)]; the truth of both from the generator's
equations (Gauss-Hermite quadrature, independent of every estimate).

Estimates, all from the same rows:
- naive: an MLP regression of S on Ni alone (what a correlational model says);
- backdoor: the same MLP family on Ni and the adjustment set `find_backdoor_set` returns
  from the graph (the lab factor is not recorded), averaged over the rows;
- SCM: matforge's StructuralCausalModel (empirical roots drawn jointly, MLP mechanisms for
  the phase fraction and the log grain size, the Hall-Petch mechanism for the strength),
  interventional means by Monte Carlo;
- DoWhy gcm: `gcm.auto.assign_causal_mechanisms` (its recommended automatic model
  selection, quality GOOD) on the observed DAG, interventional samples. DoWhy's gcm has no
  hidden-confounder declaration: its roots Ni and anneal_K are drawn independently, which
  leaves do(Ni) queries unaffected (anneal_K is not downstream of Ni).
Designs: argmax of the SCM's interventional curve vs argmax of the naive regression; the
gap is 1 - true strength at the choice / true optimum.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import torch

from matforge.causal.design import causal_design
from matforge.causal.estimation import adjusted_means, naive_means
from matforge.causal.generator import CONFOUNDED, GRAPH_PARENTS, ConfoundedAlloyGenerator
from matforge.causal.graph import CausalGraph
from matforge.causal.identification import find_backdoor_set
from matforge.causal.mechanisms import EmpiricalRoot, HallPetchMechanism, MLPMechanism
from matforge.causal.scm import Intervention, StructuralCausalModel

LOW, HIGH = 0.18, 0.26
BOUNDS = (0.05, 0.45)
TREATMENT, OUTCOME = "Ni", "strength_MPa"


def mlp(node: str, parents: tuple[str, ...]) -> MLPMechanism:
    return MLPMechanism(node, parents, hidden=(16, 16))


def scm_for(graph: CausalGraph) -> StructuralCausalModel:
    return StructuralCausalModel(
        graph,
        {
            "Ni": EmpiricalRoot("Ni"),
            "anneal_K": EmpiricalRoot("anneal_K"),
            "fraction_beta": MLPMechanism("fraction_beta", ("Ni",), hidden=(16, 16)),
            "grain_um": MLPMechanism("grain_um", ("anneal_K",), hidden=(16, 16), log=True),
            "strength_MPa": HallPetchMechanism(
                "strength_MPa",
                ("fraction_beta", "grain_um"),
                grain_size="grain_um",
                balance_phase="matrix",
            ),
        },
    )


def dowhy_effect(data, seed: int) -> tuple[float, float]:
    import networkx as nx
    from dowhy import gcm

    gcm.config.disable_progress_bars()
    np.random.seed(seed)
    edges = [(p, c) for c, parents in GRAPH_PARENTS.items() for p in parents]
    model = gcm.StructuralCausalModel(nx.DiGraph(edges))
    start = time.perf_counter()
    gcm.auto.assign_causal_mechanisms(model, data)
    gcm.fit(model, data)
    means = []
    for value in (LOW, HIGH):
        samples = gcm.interventional_samples(
            model, {TREATMENT: lambda x, v=value: v}, num_samples_to_draw=20000
        )
        means.append(float(samples[OUTCOME].mean()))
    return means[1] - means[0], time.perf_counter() - start


def percent(estimate: float, truth: float) -> float:
    return 100 * (estimate - truth) / truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-dowhy", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    generator = ConfoundedAlloyGenerator()
    graph = CausalGraph.from_parents(GRAPH_PARENTS, confounded=CONFOUNDED)
    adjustment = sorted(find_backdoor_set(graph, TREATMENT, OUTCOME) or [])
    truth = generator.true_effect(LOW, HIGH)
    grid = np.linspace(*BOUNDS, 4001)
    true_curve = generator.interventional_strength(grid)
    best, best_ni = float(true_curve.max()), float(grid[true_curve.argmax()])
    rows = []
    for seed in range(args.seeds):
        data = generator.sample(args.rows, seed=seed)
        start = time.perf_counter()
        naive = np.diff(naive_means(data, TREATMENT, OUTCOME, [LOW, HIGH], regressor=mlp))[0]
        adjusted = np.diff(
            adjusted_means(data, TREATMENT, OUTCOME, adjustment, [LOW, HIGH], regressor=mlp)
        )[0]
        scm = scm_for(graph).fit(data)
        scm_means = [
            scm.interventional_mean(OUTCOME, [Intervention(TREATMENT, v)], samples=40000).mean
            for v in (LOW, HIGH)
        ]
        choice = causal_design(scm, data, TREATMENT, OUTCOME, BOUNDS, regressor=mlp, seed=seed)
        matforge_s = time.perf_counter() - start
        row = {
            "seed": seed,
            "naive_pct": percent(naive, truth),
            "adjusted_pct": percent(adjusted, truth),
            "scm_pct": percent(scm_means[1] - scm_means[0], truth),
            "causal_choice": choice.causal,
            "correlational_choice": choice.correlational,
            "causal_gap_pct": 100 * (1 - generator.interventional_strength(choice.causal) / best),
            "correlational_gap_pct": 100
            * (1 - generator.interventional_strength(choice.correlational) / best),
            "matforge_s": matforge_s,
        }
        if not args.no_dowhy:
            effect, seconds = dowhy_effect(data, seed)
            row["dowhy_pct"] = percent(effect, truth)
            row["dowhy_s"] = seconds
        rows.append(row)
        print(
            f"seed {seed}: naive {row['naive_pct']:+.1f}%  backdoor {row['adjusted_pct']:+.1f}%  "
            f"SCM {row['scm_pct']:+.1f}%"
            + (f"  DoWhy {row['dowhy_pct']:+.1f}%" if "dowhy_pct" in row else "")
            + f"  design Ni {row['causal_choice']:.3f} (gap {row['causal_gap_pct']:.2f}%) vs "
            f"{row['correlational_choice']:.3f} (gap {row['correlational_gap_pct']:.2f}%)",
            flush=True,
        )

    def summary(key: str, absolute: bool = True) -> dict[str, float]:
        values = np.array([r[key] for r in rows])
        values = np.abs(values) if absolute else values
        return {
            "median": float(np.median(values)),
            "min": float(values.min()),
            "max": float(values.max()),
        }

    keys = ["naive_pct", "adjusted_pct", "scm_pct"] + ([] if args.no_dowhy else ["dowhy_pct"])
    names = {
        "naive_pct": "naive regression (MLP on Ni)",
        "adjusted_pct": f"backdoor adjustment on {adjustment} (MLP)",
        "scm_pct": "matforge SCM, do(Ni)",
        "dowhy_pct": "DoWhy gcm (auto mechanisms), do(Ni)",
    }
    print()
    print(f"true effect of Ni {LOW} -> {HIGH}: {truth:.2f} MPa; true optimum Ni {best_ni:.3f}")
    print(f"| estimate ({args.seeds} seeds, {args.rows} rows) | |error| median | min | max |")
    print("|---|---|---|---|")
    for key in keys:
        s = summary(key)
        print(f"| {names[key]} | {s['median']:.1f}% | {s['min']:.1f}% | {s['max']:.1f}% |")
    print()
    print("| design | chosen Ni (median) | true-strength gap median | max |")
    print("|---|---|---|---|")
    for key, label in (
        ("causal", "argmax E[S | do(Ni)] (SCM)"),
        ("correlational", "argmax E[S | Ni]"),
    ):
        gap = summary(f"{key}_gap_pct")
        chosen = float(np.median([r[f"{key}_choice"] for r in rows]))
        print(f"| {label} | {chosen:.3f} | {gap['median']:.2f}% | {gap['max']:.2f}% |")
    matforge_s = float(np.median([r["matforge_s"] for r in rows]))
    print()
    if not args.no_dowhy:
        dowhy_s = float(np.median([r["dowhy_s"] for r in rows]))
        print("| time per seed (median) | matforge (naive + backdoor + SCM + design) | DoWhy gcm |")
        print("|---|---|---|")
        print(f"| s | {matforge_s:.1f} | {dowhy_s:.1f} |")
    benchmark = {
        "naive_effect_bias_pct": summary("naive_pct"),
        "adjusted_effect_error_pct": summary("adjusted_pct"),
        "scm_effect_error_pct": summary("scm_pct"),
        "causal_design_gap_pct": summary("causal_gap_pct"),
        "correlational_design_gap_pct": summary("correlational_gap_pct"),
        "true_effect_MPa": truth,
        "seeds": args.seeds,
        "rows": args.rows,
        "matforge_s_per_seed": matforge_s,
    }
    if not args.no_dowhy:
        benchmark["dowhy_effect_error_pct"] = summary("dowhy_pct")
        benchmark["dowhy_s_per_seed"] = float(np.median([r["dowhy_s"] for r in rows]))
    print("BENCHMARK " + json.dumps(benchmark))


if __name__ == "__main__":
    main()

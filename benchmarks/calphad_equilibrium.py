"""pycalphad vs matforge equilibria on the same grids: seconds, ratio, agreement.

    python benchmarks/calphad_equilibrium.py [--multicomponent-temperatures 5] [--repeats 5]

Binary: Al-Zn (alzn_mey), 40 compositions x 25 temperatures = 1,000 points.
Five components: Co-Cr-Fe-Mn-Ni (bundled mf-steel slice; LIQUID, FCC_A1, BCC_A2, HCP_A3,
SIGMA_D8B), mole fractions of Co, Cr, Mn, Ni in {0.05, 0.15, 0.25, 0.35} (Fe the rest)
at the given number of temperatures (221 combinations with Fe >= 0 per temperature, so
the default 5 temperatures give 1,105 points).
"Cold" includes building/compiling the models and the first solve (for the numba CPU
backend also compiling its kernels, into an empty cache directory). "Warm" is the median
of further solves of the same grid in the same process, run in rounds of pycalphad and
each matforge backend in turn (--repeats rounds for the binary, whose runs are short
enough to be disturbed by a garbage collection or a noisy neighbour; one for the
five-component grid). Each CPU backend is timed: numpy (the default) and numba (with the
`jit` extra). The BENCHMARK line's speedups are those of the faster backend, named in
backend_*. Needs the `reference` extra (pycalphad).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings

import numpy as np

from matforge.calphad import build_phase_models, load_database
from matforge.calphad.conditions import condition_grid
from matforge.calphad.kernels import set_cpu_backend
from matforge.calphad.reference import compare_grid, run_pycalphad
from matforge.calphad.solver import equilibrium

CANTOR_PHASES = ["LIQUID", "FCC_A1", "BCC_A2", "HCP_A3", "SIGMA_D8B"]


def backends() -> list[str]:
    """CPU backends to time: NumPy always, Numba when the jit extra is installed."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return ["numpy"]
    return ["numpy", "numba"]


def cold_matforge(name, elements, phases, grid, backend):
    """(cold s, models): building the models and the first solve; for numba also compiling
    the kernels into an empty cache directory, so it includes all first-call compilation
    (compiled kernels stay loaded in the process for the warm runs)."""
    with tempfile.TemporaryDirectory() as cache:
        os.environ["MATFORGE_CACHE_DIR"] = cache
        set_cpu_backend(backend)
        start = time.perf_counter()
        models = build_phase_models(load_database(name), elements, phases)
        equilibrium(models, grid.temperature, grid.bulk)
        cold = time.perf_counter() - start
    set_cpu_backend("numpy")
    return cold, models


def timed_case(name, elements, phases, temperatures, fractions, repeats):
    """Cold runs, then `repeats` warm rounds of pycalphad and each backend in turn, so a
    slow spell of the machine falls on all of them alike; medians are reported."""
    database = load_database(name)
    grid = condition_grid(elements, temperatures, fractions)
    colds = {b: cold_matforge(name, elements, phases, grid, b) for b in backends()}
    models = colds["numpy"][1]
    phases_used = sorted(models)
    reference, theirs_cold = run_pycalphad(
        database, sorted(elements), phases_used, temperatures, fractions
    )
    theirs, ours = [], {b: [] for b in backends()}
    results = {}
    for _ in range(repeats):
        reference, seconds = run_pycalphad(
            database, sorted(elements), phases_used, temperatures, fractions
        )
        theirs.append(seconds)
        for backend in backends():
            set_cpu_backend(backend)
            start = time.perf_counter()
            results[backend] = equilibrium(colds[backend][1], grid.temperature, grid.bulk)
            ours[backend].append(time.perf_counter() - start)
    set_cpu_backend("numpy")
    theirs_warm = statistics.median(theirs)
    runs = {
        b: (colds[b][0], statistics.median(ours[b]), results[b], colds[b][1]) for b in backends()
    }
    case = {
        "points": len(grid.temperature),
        "pycalphad_cold_s": theirs_cold,
        "pycalphad_warm_s": theirs_warm,
    }
    for backend, (cold, warm, result, _) in runs.items():
        comparison = compare_grid(
            database, models, temperatures, fractions, ours=result, reference=reference
        )
        case[backend] = {
            "matforge_cold_s": cold,
            "matforge_warm_s": warm,
            "speedup_cold": theirs_cold / cold,
            "speedup_warm": theirs_warm / warm,
            "agreement": comparison.agreement,
            "max_fraction_error": comparison.max_fraction_error,
            "max_mu_error": comparison.max_mu_error,
            "disagreement_causes": comparison.causes,
            "converged": int(sum(p.converged for p in result.points)),
        }
    case["best"] = max(backends(), key=lambda b: case[b]["speedup_warm"])
    return case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--multicomponent-temperatures", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="warm runs of the binary")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    binary = timed_case(
        "alzn_mey",
        ["AL", "ZN"],
        None,
        list(np.linspace(400.0, 900.0, 25)),
        {"ZN": [round(v, 4) for v in np.linspace(0.01, 0.99, 40)]},
        args.repeats,
    )
    levels = [0.05, 0.15, 0.25, 0.35]
    multi = timed_case(
        "cocrfemnni_mfsteel",
        ["CO", "CR", "FE", "MN", "NI"],
        CANTOR_PHASES,
        list(np.linspace(900.0, 1500.0, args.multicomponent_temperatures)),
        dict.fromkeys(("CO", "CR", "MN", "NI"), levels),
        1,
    )
    header = (
        f"{'case':<22}{'backend':>8}{'points':>7}{'pycalphad s':>13}{'matforge s':>12}{'ratio':>8}"
    )
    print(header)
    print("-" * len(header))
    for label, case in (("Al-Zn", binary), ("Co-Cr-Fe-Mn-Ni", multi)):
        for backend in backends():
            run = case[backend]
            for kind in ("cold", "warm"):
                theirs, ours = case[f"pycalphad_{kind}_s"], run[f"matforge_{kind}_s"]
                print(
                    f"{label + ' (' + kind + ')':<22}{backend:>8}{case['points']:>7}"
                    f"{theirs:>13.2f}{ours:>12.2f}{theirs / ours:>8.2f}"
                )
            print(
                f"  {backend}: agreement {run['agreement']:.4f}, max fraction error "
                f"{run['max_fraction_error']:.2e}, max mu error {run['max_mu_error']:.2e} "
                f"J/mol, converged {run['converged']}/{case['points']}, disagreements "
                f"{run['disagreement_causes']}"
            )
    best_binary, best_multi = binary[binary["best"]], multi[multi["best"]]
    figures = {
        "speedup_binary": best_binary["speedup_warm"],
        "speedup_multicomponent": best_multi["speedup_warm"],
        "speedup_binary_cold": best_binary["speedup_cold"],
        "speedup_multicomponent_cold": best_multi["speedup_cold"],
        "backend_binary": binary["best"],
        "backend_multicomponent": multi["best"],
        "max_fraction_error": max(
            case[b]["max_fraction_error"] for case in (binary, multi) for b in backends()
        ),
        "binary": binary,
        "multicomponent": multi,
    }
    print("BENCHMARK " + json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()

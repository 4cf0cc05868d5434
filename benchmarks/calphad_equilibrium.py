"""pycalphad vs matforge equilibria on the same grids: seconds, ratio, agreement.

    python benchmarks/calphad_equilibrium.py [--multicomponent-temperatures 5]

Binary: Al-Zn (alzn_mey), 40 compositions x 25 temperatures = 1,000 points.
Five components: Co-Cr-Fe-Mn-Ni (bundled mf-steel slice; LIQUID, FCC_A1, BCC_A2, HCP_A3,
SIGMA_D8B), mole fractions of Co, Cr, Mn, Ni in {0.05, 0.15, 0.25, 0.35} (Fe the rest)
at the given number of temperatures (221 combinations with Fe >= 0 per temperature, so
the default 5 temperatures give 1,105 points).
"Cold" includes building/compiling the models and the first solve; "warm" is a second
solve of the same grid in the same process. Needs the `reference` extra (pycalphad).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

from matforge.calphad import build_phase_models, load_database
from matforge.calphad.conditions import condition_grid
from matforge.calphad.reference import compare_grid, run_pycalphad
from matforge.calphad.solver import equilibrium

CANTOR_PHASES = ["LIQUID", "FCC_A1", "BCC_A2", "HCP_A3", "SIGMA_D8B"]


def timed_case(name, elements, phases, temperatures, fractions):
    database = load_database(name)
    start = time.perf_counter()
    models = build_phase_models(database, elements, phases)
    grid = condition_grid(elements, temperatures, fractions)
    equilibrium(models, grid.temperature, grid.bulk)
    ours_cold = time.perf_counter() - start
    start = time.perf_counter()
    ours = equilibrium(models, grid.temperature, grid.bulk)
    ours_warm = time.perf_counter() - start
    reference, theirs_cold = run_pycalphad(
        database, sorted(elements), sorted(models), temperatures, fractions
    )
    reference, theirs_warm = run_pycalphad(
        database, sorted(elements), sorted(models), temperatures, fractions
    )
    comparison = compare_grid(
        database, models, temperatures, fractions, ours=ours, reference=reference
    )
    return {
        "points": comparison.points,
        "matforge_cold_s": ours_cold,
        "matforge_warm_s": ours_warm,
        "pycalphad_cold_s": theirs_cold,
        "pycalphad_warm_s": theirs_warm,
        "speedup_warm": theirs_warm / ours_warm,
        "speedup_cold": theirs_cold / ours_cold,
        "agreement": comparison.agreement,
        "max_fraction_error": comparison.max_fraction_error,
        "max_mu_error": comparison.max_mu_error,
        "disagreement_causes": comparison.causes,
        "converged": int(sum(p.converged for p in ours.points)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--multicomponent-temperatures", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    binary = timed_case(
        "alzn_mey",
        ["AL", "ZN"],
        None,
        list(np.linspace(400.0, 900.0, 25)),
        {"ZN": [round(v, 4) for v in np.linspace(0.01, 0.99, 40)]},
    )
    levels = [0.05, 0.15, 0.25, 0.35]
    multi = timed_case(
        "cocrfemnni_mfsteel",
        ["CO", "CR", "FE", "MN", "NI"],
        CANTOR_PHASES,
        list(np.linspace(900.0, 1500.0, args.multicomponent_temperatures)),
        dict.fromkeys(("CO", "CR", "MN", "NI"), levels),
    )
    header = f"{'case':<28}{'points':>7}{'pycalphad s':>13}{'matforge s':>12}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for label, case in (("Al-Zn", binary), ("Co-Cr-Fe-Mn-Ni", multi)):
        for kind in ("cold", "warm"):
            theirs, ours = case[f"pycalphad_{kind}_s"], case[f"matforge_{kind}_s"]
            print(
                f"{label + ' (' + kind + ')':<28}{case['points']:>7}{theirs:>13.2f}"
                f"{ours:>12.2f}{theirs / ours:>8.2f}"
            )
        print(
            f"  agreement {case['agreement']:.4f}, max fraction error "
            f"{case['max_fraction_error']:.2e}, max mu error {case['max_mu_error']:.2e} J/mol, "
            f"disagreements {case['disagreement_causes']}"
        )
    figures = {
        "speedup_binary": binary["speedup_warm"],
        "speedup_multicomponent": multi["speedup_warm"],
        "speedup_binary_cold": binary["speedup_cold"],
        "speedup_multicomponent_cold": multi["speedup_cold"],
        "max_fraction_error": max(binary["max_fraction_error"], multi["max_fraction_error"]),
        "binary": binary,
        "multicomponent": multi,
    }
    print("BENCHMARK " + json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()

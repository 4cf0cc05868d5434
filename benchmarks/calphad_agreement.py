"""Agreement of matforge's equilibria with pycalphad on every grid the tests check.

    python benchmarks/calphad_agreement.py [--only NAME,...]

The grids are those of tests/calphad/test_agreement.py (five databases the solver's
settings were chosen on) and tests/calphad/test_agreement_validation.py (three databases
added afterwards, not tuned on). Per grid: points, where matforge converged, where both
agree (same composition sets, G within 1e-2 J/mol), the disagreements by cause
(`matforge.calphad.reference`: a lower G of matforge's counts as pycalphad's miss only
when pycalphad's own `calculate` at matforge's site fractions confirms it), the largest
fraction and chemical-potential differences where they agree, and both codes' times
(one run each, compile and first-call costs included). Ends with `BENCHMARK {...}`.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "calphad"))

from test_agreement import GRIDS, LEVELS, MULTICOMPONENT  # noqa: E402
from test_agreement_validation import VALIDATION  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "tdb"


def grids() -> dict[str, tuple]:
    """name -> (database, elements, phases, temperatures, fractions, tuned on)."""
    out = {}
    for name, (elements, varied, temperatures) in GRIDS.items():
        fractions = {varied: [round(float(v), 3) for v in __import__("numpy").arange(
            0.02, 0.99, 0.04)]}  # fmt: skip
        out[name] = (name, elements, None, list(temperatures), fractions, True)
    for name, (elements, phases, temperatures, varied) in MULTICOMPONENT.items():
        levels = LEVELS[:4] if len(varied) == 4 else LEVELS
        out[name] = (name, elements, phases, temperatures, dict.fromkeys(varied, levels), True)
    for name, (elements, phases, temperatures, fractions) in VALIDATION.items():
        out[name] = (SHARED / name, elements, phases, temperatures, fractions, False)
    return out


def main() -> None:
    from matforge.calphad import build_phase_models, load_database
    from matforge.calphad.reference import compare_grid

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="comma-separated grid names")
    args = parser.parse_args()
    chosen = grids()
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k in args.only.split(",")}
    rows = []
    header = (
        f"{'database':<24} {'tuned':>5} {'points':>6} {'mf conv':>8} {'agree':>6} "
        f"{'pyc higher':>10} {'pyc fail':>8} {'mf wrong':>8} {'max dfrac':>9} "
        f"{'max dmu':>8} {'mf s':>6} {'pyc s':>6} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, (database, elements, phases, temperatures, fractions, tuned) in chosen.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            models = build_phase_models(database, elements, phases)
            comparison = compare_grid(load_database(database), models, temperatures, fractions)
        causes = comparison.causes
        converged = comparison.points - causes.get("matforge_not_converged", 0)
        wrong = sum(
            v for k, v in causes.items() if k not in ("pycalphad_higher", "pycalphad_not_converged")
        )
        row = {
            "database": name,
            "tuned_on": tuned,
            "points": comparison.points,
            "matforge_converged": converged,
            "agree": comparison.agree,
            "pycalphad_higher_verified": causes.get("pycalphad_higher", 0),
            "pycalphad_not_converged": causes.get("pycalphad_not_converged", 0),
            "matforge_wrong_or_unconverged": wrong,
            "causes": causes,
            "max_fraction_error": comparison.max_fraction_error,
            "max_mu_error": comparison.max_mu_error,
            "seconds_matforge": comparison.seconds_matforge,
            "seconds_pycalphad": comparison.seconds_pycalphad,
        }
        rows.append(row)
        print(
            f"{name:<24} {'yes' if tuned else 'no':>5} {row['points']:>6} {converged:>8} "
            f"{row['agree']:>6} {row['pycalphad_higher_verified']:>10} "
            f"{row['pycalphad_not_converged']:>8} {wrong:>8} "
            f"{row['max_fraction_error']:>9.1e} {row['max_mu_error']:>8.1e} "
            f"{row['seconds_matforge']:>6.1f} {row['seconds_pycalphad']:>6.1f} "
            f"{row['seconds_pycalphad'] / row['seconds_matforge']:>6.2f}"
        )
    summary = {
        "grids": len(rows),
        "points": sum(r["points"] for r in rows),
        "matforge_converged": sum(r["matforge_converged"] for r in rows),
        "agree": sum(r["agree"] for r in rows),
        "pycalphad_higher_verified": sum(r["pycalphad_higher_verified"] for r in rows),
        "pycalphad_not_converged": sum(r["pycalphad_not_converged"] for r in rows),
        "matforge_wrong_or_unconverged": sum(r["matforge_wrong_or_unconverged"] for r in rows),
        "validation_points": sum(r["points"] for r in rows if not r["tuned_on"]),
        "validation_agree": sum(r["agree"] for r in rows if not r["tuned_on"]),
        "validation_matforge_wrong_or_unconverged": sum(
            r["matforge_wrong_or_unconverged"] for r in rows if not r["tuned_on"]
        ),
        "rows": rows,
    }
    print("BENCHMARK " + json.dumps(summary))


if __name__ == "__main__":
    main()

"""Side-by-side equilibria from pycalphad and matforge on one grid, and their differences.

pycalphad is the reference implementation. `compare_grid` solves the same product grid of
temperatures and mole fractions with both, and classifies every point:

* agree: same stable composition sets (counting sets of one phase: a miscibility gap is
  two sets); fractions compared per phase, summed over its sets;
* pycalphad_not_converged: pycalphad returned no phases (NaN);
* pycalphad_higher / matforge_higher: different phase sets; the one with the higher total
  Gibbs energy (by more than 1e-3 J/mol) did not find the global minimum. matforge's lower
  G is not taken on its own word: `verify_with_pycalphad` evaluates pycalphad's own
  `calculate` at matforge's phase site fractions, and checks the mass balance; only if
  pycalphad's functions give that state a total G below pycalphad's equilibrium is the
  point `pycalphad_higher`, else `matforge_lower_unverified` (counted against matforge);
* matforge_not_converged.

Fraction and chemical-potential errors are measured where both agree; chemical potentials
only where they are unique (not at a stoichiometric compound's own composition).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from matforge.calphad.conditions import condition_grid
from matforge.calphad.model import PhaseModel
from matforge.calphad.solver import EquilibriumResult, equilibrium

#: Total molar G (J/mol) by which one code must beat the other for a disagreement to be
#: put down to it.
GIBBS_TOL = 1e-3
#: Points with the same sets count as agreeing only with G this close (J/mol): two sets of
#: one phase can sit at different local minima with the same names.
SAME_SETS_GIBBS_TOL = 1e-2


@dataclass
class GridComparison:
    points: int
    agree: int
    max_fraction_error: float
    max_mu_error: float
    max_gibbs_error: float
    seconds_matforge: float
    seconds_pycalphad: float
    causes: dict[str, int] = field(default_factory=dict)
    disagreements: list[dict] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        return self.agree / self.points


def run_pycalphad(
    database: object,
    elements: Sequence[str],
    phases: Sequence[str],
    temperatures: Sequence[float],
    fractions: Mapping[str, Sequence[float]],
) -> tuple[object, float]:
    from pycalphad import equilibrium as pycalphad_equilibrium
    from pycalphad import variables as v

    conditions = {v.T: list(temperatures), v.P: 101325, v.N: 1}
    conditions |= {v.X(e): list(values) for e, values in fractions.items()}
    start = time.perf_counter()
    result = pycalphad_equilibrium(database, [*elements, "VA"], list(phases), conditions)
    return result, time.perf_counter() - start


def compare_grid(
    database: object,
    models: Mapping[str, PhaseModel],
    temperatures: Sequence[float],
    fractions: Mapping[str, Sequence[float]],
    *,
    ours: EquilibriumResult | None = None,
    reference: object | None = None,
    **options: object,
) -> GridComparison:
    """Solve the grid with both codes (unless results are given) and compare point by point."""
    elements = list(next(iter(models.values())).elements)
    given = [e for e in elements if e in fractions]
    seconds_ours = seconds_reference = float("nan")
    grid = condition_grid(elements, temperatures, fractions)
    if ours is None:
        start = time.perf_counter()
        ours = equilibrium(models, grid.temperature, grid.bulk, **options)
        seconds_ours = time.perf_counter() - start
    if reference is None:
        reference, seconds_reference = run_pycalphad(
            database, elements, sorted(models), temperatures, fractions
        )
    phase = np.asarray(reference.Phase)  # (1, 1, T, x..., vertex)
    amount = np.asarray(reference.NP)
    mu = np.asarray(reference.MU)
    gibbs = np.asarray(reference.GM)
    index_of = {e: {round(float(f), 12): i for i, f in enumerate(fractions[e])} for e in given}
    t_index = {round(float(t), 9): i for i, t in enumerate(temperatures)}
    agree, max_fraction, max_mu, max_gibbs = 0, 0.0, 0.0, 0.0
    causes: dict[str, int] = {}
    disagreements: list[dict] = []
    for n, point in enumerate(ours.points):
        x = {e: float(grid.bulk[n, elements.index(e)]) for e in given}
        where = (
            0,
            0,
            t_index[round(float(grid.temperature[n]), 9)],
            *tuple(index_of[e][round(x[e], 12)] for e in given),
        )
        expected: dict[str, float] = {}
        expected_sets: list[str] = []
        for name, value in zip(phase[where], amount[where], strict=True):
            if str(name):
                expected[str(name)] = expected.get(str(name), 0.0) + float(value)
                expected_sets.append(str(name))
        mine: dict[str, float] = {}
        for s in point.sets:
            mine[s.phase] = mine.get(s.phase, 0.0) + s.amount
        same_sets = sorted(expected_sets) == sorted(s.phase for s in point.sets)
        reference_gibbs = float(gibbs[where])
        if not expected or not np.isfinite(reference_gibbs):
            cause = "pycalphad_not_converged"
        elif not point.converged:
            cause = "matforge_not_converged"
        elif same_sets and abs(point.gibbs - reference_gibbs) <= SAME_SETS_GIBBS_TOL:
            agree += 1
            max_fraction = max(max_fraction, *(abs(expected[p] - mine[p]) for p in expected))
            max_gibbs = max(max_gibbs, abs(reference_gibbs - point.gibbs))
            if point.unique_potentials:
                difference = np.abs(mu[where] - point.chemical_potentials.numpy()).max()
                max_mu = max(max_mu, float(difference))
            continue
        elif point.gibbs < reference_gibbs - GIBBS_TOL:
            cause = "pycalphad_higher"
        elif reference_gibbs < point.gibbs - GIBBS_TOL:
            cause = "matforge_higher"
        else:
            cause = "same_gibbs_different_phases"
        causes[cause] = causes.get(cause, 0) + 1
        disagreements.append(
            {
                "index": n,
                "T": float(grid.temperature[n]),
                "x": x,
                "pycalphad": expected_sets,
                "matforge": [s.phase for s in point.sets],
                "gibbs_pycalphad": reference_gibbs,
                "gibbs_matforge": point.gibbs,
                "cause": cause,
            }
        )
    if any(d["cause"] == "pycalphad_higher" for d in disagreements):
        verify_with_pycalphad(database, ours, elements, disagreements)
        causes = {}
        for d in disagreements:
            causes[d["cause"]] = causes.get(d["cause"], 0) + 1
    return GridComparison(
        points=len(ours.points),
        agree=agree,
        max_fraction_error=max_fraction,
        max_mu_error=max_mu,
        max_gibbs_error=max_gibbs,
        seconds_matforge=seconds_ours,
        seconds_pycalphad=seconds_reference,
        causes=causes,
        disagreements=disagreements,
    )


#: Mass balance (mole fraction) that matforge's sets must meet for the check to count.
BALANCE_TOL = 1e-6


def verify_with_pycalphad(
    database: object,
    ours: EquilibriumResult,
    elements: Sequence[str],
    disagreements: list[dict],
) -> None:
    """Re-judge each `pycalphad_higher` disagreement with pycalphad's own functions.

    For every composition set of matforge's state, pycalphad's `calculate` gives G and
    the composition at matforge's site fractions; their amount-weighted sum is the total
    G of that state by pycalphad's own model. The point stays `pycalphad_higher` only if
    that total lies below pycalphad's equilibrium G by more than GIBBS_TOL and the sets
    meet the bulk composition; otherwise it becomes `matforge_lower_unverified`. Adds
    `gibbs_matforge_by_pycalphad` and `mass_balance_error` to each checked row (in place).
    """
    from pycalphad import calculate

    species = [*elements, "VA"]
    checked = [d for d in disagreements if d["cause"] == "pycalphad_higher"]
    # One calculate call per (phase, temperature) with all of its sets as points.
    requests: dict[tuple[str, float], list[tuple[int, int]]] = {}
    for row, d in enumerate(checked):
        point = ours.points[d["index"]]
        for k, s in enumerate(point.sets):
            requests.setdefault((s.phase, d["T"]), []).append((row, k))
    gibbs: dict[tuple[int, int], float] = {}
    composition: dict[tuple[int, int], np.ndarray] = {}
    for (phase, temperature), members in requests.items():
        points = np.stack(
            [
                ours.points[checked[row]["index"]].sets[k].site_fractions.numpy()
                for row, k in members
            ]
        )
        values = calculate(
            database, species, phase, T=temperature, P=101325, N=1, points=points, output="GM"
        )
        gm = np.asarray(values.GM).reshape(-1)
        x = np.asarray(values.X).reshape(len(members), -1)
        order = [list(np.asarray(values.component)).index(e) for e in elements]
        for i, key in enumerate(members):
            gibbs[key] = float(gm[i])
            composition[key] = x[i, order]
    for row, d in enumerate(checked):
        point = ours.points[d["index"]]
        amounts = np.array([s.amount for s in point.sets])
        keys = [(row, k) for k in range(len(point.sets))]
        total = float(sum(a * gibbs[key] for a, key in zip(amounts, keys, strict=True)))
        balance = sum(a * composition[key] for a, key in zip(amounts, keys, strict=True))
        bulk = ours.bulk[d["index"]].numpy()
        d["gibbs_matforge_by_pycalphad"] = total
        d["mass_balance_error"] = float(np.abs(balance - bulk).max())
        lower = total < d["gibbs_pycalphad"] - GIBBS_TOL
        if not (lower and d["mass_balance_error"] <= BALANCE_TOL):
            d["cause"] = "matforge_lower_unverified"

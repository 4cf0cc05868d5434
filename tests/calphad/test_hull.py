"""The global start: lower convex hull of sampled points, as an LP with a certificate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pycalphad = pytest.importorskip("pycalphad", reason="needs the 'calphad' extra (pycalphad)")

from matforge.calphad import build_phase_models, load_database  # noqa: E402
from matforge.calphad.hull import (  # noqa: E402
    DRIVING_FORCE_TOL,
    binary_lower_hull,
    lower_convex_hull,
    sample_points,
)


def solve(
    name: str,
    elements: list[str],
    temperature: torch.Tensor,
    bulk: torch.Tensor,
    phases: list[str] | None = None,
    points: int = 1000,
):
    models = build_phase_models(name, elements, phases)
    candidates = sample_points(models, points, generator=torch.Generator().manual_seed(0))
    unique, inverse = torch.unique(temperature, return_inverse=True)
    gibbs = candidates.gibbs(models, unique, 101325.0)[inverse]
    return candidates, gibbs, lower_convex_hull(gibbs, candidates.composition, bulk)


def test_quaternary_hull_satisfies_the_lp_optimality_conditions() -> None:
    torch.manual_seed(1)
    n = 40
    bulk = torch.distributions.Dirichlet(torch.ones(4, dtype=torch.float64)).sample((n,))
    temperature = torch.tensor([900.0, 1300.0], dtype=torch.float64).repeat(n // 2)
    candidates, gibbs, hull = solve(
        "alcocrni", ["AL", "CO", "CR", "NI"], temperature, bulk, points=300
    )
    assert hull.converged.all()
    assert (hull.points >= 0).all(), "an artificial point stayed in the solution"
    assert (hull.weights >= 0).all()
    # Primal feasibility: the hull points' weights reproduce the bulk composition.
    reproduced = torch.einsum("nc,nck->nk", hull.weights, candidates.composition[hull.points])
    torch.testing.assert_close(reproduced, bulk, atol=1e-10, rtol=0)
    # Dual feasibility: no candidate lies below the tangent plane mu.
    driving = gibbs - hull.chemical_potentials @ candidates.composition.T
    assert driving.min() >= -DRIVING_FORCE_TOL
    # Strong duality: total G equals mu . x.
    torch.testing.assert_close(
        hull.gibbs, (hull.chemical_potentials * bulk).sum(1), rtol=1e-10, atol=1e-6
    )


def test_binary_phase_sets_agree_with_pycalphad() -> None:
    from pycalphad import equilibrium
    from pycalphad import variables as v

    fractions = np.linspace(0.02, 0.98, 25)
    temperatures = np.array([500.0, 650.0, 800.0])
    temperature = torch.tensor(np.repeat(temperatures, len(fractions)))
    zinc = torch.tensor(np.tile(fractions, len(temperatures)))
    candidates, _, hull = solve(
        "alzn_mey", ["AL", "ZN"], temperature, torch.stack([1 - zinc, zinc], dim=1), points=2000
    )
    reference = equilibrium(
        load_database("alzn_mey"),
        ["AL", "ZN", "VA"],
        ["LIQUID", "FCC_A1", "HCP_A3"],
        {v.T: temperatures, v.P: 101325, v.N: 1, v.X("ZN"): fractions},
    )
    agree = 0
    for n in range(len(temperature)):
        i, j = divmod(n, len(fractions))
        expected = {str(p) for p in np.asarray(reference.Phase.isel(T=i, X_ZN=j)).ravel()} - {""}
        ours = {
            candidates.phases[candidates.phase_of[p]]
            for p, w in zip(hull.points[n].tolist(), hull.weights[n].tolist(), strict=True)
            if w > 1e-9
        }
        agree += ours == expected
    # The hull is the start of the solver, exact only up to sampling; near boundaries a
    # sampled point may pick the neighbouring phase set.
    assert agree >= 0.95 * len(temperature)


def test_column_generation_reaches_the_exact_lp_optimum() -> None:
    # Random points on the 4-component simplex with a wavy G: the coarse pass (every 8th
    # point) cannot be optimal, pricing against all points must finish the job.
    from scipy.optimize import linprog

    torch.manual_seed(5)
    generator = torch.Generator().manual_seed(5)
    composition = torch.distributions.Dirichlet(torch.ones(4, dtype=torch.float64)).sample((3000,))
    wiggle = torch.sin(17 * composition[:, 0]) * torch.cos(11 * composition[:, 1])
    gibbs = 2000 * wiggle + 500 * torch.rand(3000, dtype=torch.float64, generator=generator)
    bulk = torch.distributions.Dirichlet(4 * torch.ones(4, dtype=torch.float64)).sample((40,))
    hull = lower_convex_hull(gibbs.expand(40, -1), composition, bulk)
    assert bool(hull.converged.all())
    for n in range(40):
        exact = linprog(gibbs.numpy(), A_eq=composition.numpy().T, b_eq=bulk[n].numpy())
        assert exact.status == 0
        assert abs(float(hull.gibbs[n]) - exact.fun) < 1e-6


def test_binary_hull_per_temperature_equals_the_lp() -> None:
    # Three "temperatures" of a wavy binary G with points repeated at equal x (endmembers
    # of several phases), conditions at the pure elements included.
    from scipy.optimize import linprog

    generator = torch.Generator().manual_seed(3)
    x_b = torch.cat(
        [
            torch.rand(600, dtype=torch.float64, generator=generator),
            torch.tensor([0.0, 1.0, 0.0, 1.0]),
        ]
    )
    composition = torch.stack([1 - x_b, x_b], dim=1)
    waves = torch.stack([torch.sin(k * 9 * x_b) for k in (1, 2, 3)])
    gibbs = 3000 * waves + 800 * torch.rand(
        3, x_b.numel(), dtype=torch.float64, generator=generator
    )
    fractions = torch.cat([torch.linspace(0, 1, 41, dtype=torch.float64)] * 3)
    bulk = torch.stack([1 - fractions, fractions], dim=1)
    rows = torch.arange(3).repeat_interleave(41)
    shared = lower_convex_hull(gibbs, composition, bulk, rows=rows)
    lp = lower_convex_hull(gibbs[rows], composition, bulk)  # one row per condition: the LP
    direct = binary_lower_hull(gibbs, composition, bulk, rows)
    assert bool(shared.converged.all())
    assert bool(lp.converged.all())
    assert shared.iterations == 0  # the per-temperature hull was used
    assert lp.iterations > 0
    assert torch.equal(shared.points, direct.points)
    assert float((shared.gibbs - lp.gibbs).abs().max()) < 1e-6
    assert float((shared.weights.sum(dim=1) - 1).abs().max()) < 1e-12
    # mu is the tangent line: every point lies on or above it, the hull points on it.
    driving = gibbs[rows] - shared.chemical_potentials @ composition.T
    assert float(driving.min()) > -1e-6
    used = torch.gather(driving, 1, shared.points)
    assert float(used.abs().max()) < 1e-6
    for n in range(0, 123, 7):
        exact = linprog(gibbs[rows[n]].numpy(), A_eq=composition.numpy().T, b_eq=bulk[n].numpy())
        assert abs(float(shared.gibbs[n]) - exact.fun) < 1e-6

"""Batched equilibrium (hull start + KKT Newton) against pycalphad's equilibrium."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pycalphad = pytest.importorskip("pycalphad", reason="needs the 'calphad' extra (pycalphad)")

from matforge.calphad import build_phase_models, load_database  # noqa: E402
from matforge.calphad.solver import equilibrium  # noqa: E402

CASES = {
    # Al-Zn: FCC miscibility gap (two FCC_A1 composition sets), eutectoid, liquid.
    "alzn_mey": (["AL", "ZN"], ["LIQUID", "FCC_A1", "HCP_A3"]),
    # Cu-Mg: the CU2MG Laves phase and the CUMG2 line compound.
    "cumg": (["CU", "MG"], ["LIQUID", "FCC_A1", "HCP_A3", "CU2MG", "CUMG2"]),
}


def compare(name: str, temperatures: np.ndarray, fractions: np.ndarray) -> dict[str, float]:
    from pycalphad import equilibrium as reference_equilibrium
    from pycalphad import variables as v

    elements, phases = CASES[name]
    models = build_phase_models(name, elements, phases)
    temperature = torch.tensor(np.repeat(temperatures, len(fractions)))
    second = torch.tensor(np.tile(fractions, len(temperatures)))
    result = equilibrium(models, temperature, torch.stack([1 - second, second], dim=1))
    reference = reference_equilibrium(
        load_database(name),
        [*elements, "VA"],
        phases,
        {v.T: temperatures, v.P: 101325, v.N: 1, v.X(elements[1]): fractions},
    )
    axis = f"X_{elements[1]}"
    same, converged, worst_fraction, worst_mu = 0, 0, 0.0, 0.0
    for n, point in enumerate(result.points):
        i, j = divmod(n, len(fractions))
        names = [str(p) for p in np.asarray(reference.Phase.isel(T=i, **{axis: j})).ravel()]
        amounts = np.asarray(reference.NP.isel(T=i, **{axis: j})).ravel()
        expected: dict[str, float] = {}
        for phase, amount in zip(names, amounts, strict=True):
            if phase:
                expected[phase] = expected.get(phase, 0.0) + float(amount)
        ours: dict[str, float] = {}
        for s in point.sets:
            ours[s.phase] = ours.get(s.phase, 0.0) + s.amount
        converged += point.converged
        if point.converged and set(ours) == set(expected):
            same += 1
            worst_fraction = max(worst_fraction, max(abs(ours[p] - expected[p]) for p in ours))
            mu = np.asarray(reference.MU.isel(T=i, **{axis: j})).ravel()
            worst_mu = max(worst_mu, float(np.abs(point.chemical_potentials.numpy() - mu).max()))
    total = len(result.points)
    return {
        "converged": converged / total,
        "same_phases": same / total,
        "fraction": worst_fraction,
        "mu": worst_mu,
    }


@pytest.mark.reference
@pytest.mark.parametrize("name", sorted(CASES))
def test_binary_equilibria_match_pycalphad(name: str) -> None:
    # 600 K crosses the Al-Zn FCC miscibility gap; pycalphad reports two FCC_A1 sets there.
    figures = compare(name, np.array([500.0, 600.0, 700.0, 900.0]), np.linspace(0.02, 0.98, 17))
    assert figures["converged"] >= 0.99, figures
    assert figures["same_phases"] >= 0.99, figures
    assert figures["fraction"] < 1e-4, figures
    assert figures["mu"] < 1.0, figures


def test_miscibility_gap_gives_two_sets_of_one_phase() -> None:
    models = build_phase_models("alzn_mey", ["AL", "ZN"], ["LIQUID", "FCC_A1", "HCP_A3"])
    # Inside the FCC miscibility gap of Al-Zn, which lies above the eutectoid (~550 K).
    result = equilibrium(models, torch.tensor([600.0]), torch.tensor([[0.65, 0.35]]))
    point = result.points[0]
    assert point.converged
    fractions = point.phase_fractions()
    assert set(fractions) == {"FCC_A1", "FCC_A1#2"}
    assert sum(fractions.values()) == pytest.approx(1.0, abs=1e-10)
    zinc = sorted(
        float(models["FCC_A1"].composition(s.site_fractions[None])[0, 1]) for s in point.sets
    )
    assert zinc[0] < 0.35 < zinc[1]


def test_mass_balance_and_tangent_plane_hold() -> None:
    models = build_phase_models(
        "cumg", ["CU", "MG"], ["LIQUID", "FCC_A1", "HCP_A3", "CU2MG", "CUMG2"]
    )
    bulk = torch.tensor([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]], dtype=torch.float64)
    result = equilibrium(models, torch.tensor([600.0, 800.0, 1100.0]), bulk)
    for n, point in enumerate(result.points):
        assert point.converged, point.reason
        total = torch.zeros(2, dtype=torch.float64)
        for s in point.sets:
            gibbs, x = models[s.phase].evaluate(s.site_fractions[None], result.temperature[n])
            total += s.amount * x[0]
            # Every stable set touches the tangent plane defined by mu.
            tangent = float(gibbs[0] - (point.chemical_potentials * x[0]).sum())
            assert abs(tangent) < 1e-5
        torch.testing.assert_close(total, bulk[n], atol=1e-10, rtol=0)
        assert point.gibbs == pytest.approx(float((point.chemical_potentials * bulk[n]).sum()))


def test_bad_conditions_are_named() -> None:
    from matforge.core.errors import DataError

    models = build_phase_models("alzn_mey", ["AL", "ZN"], ["FCC_A1"])
    with pytest.raises(DataError, match=r"shape \(N, 2\) with columns \['AL', 'ZN'\]"):
        equilibrium(models, 600.0, torch.tensor([[0.3, 0.3, 0.4]]))
    with pytest.raises(DataError, match=r"composition 1 sums to 0\.9"):
        equilibrium(models, 600.0, torch.tensor([[0.5, 0.5], [0.5, 0.4]]))
    with pytest.raises(DataError, match="non-negative"):
        equilibrium(models, 600.0, torch.tensor([[1.2, -0.2]]))
    with pytest.raises(DataError, match="2 temperatures for 1 compositions"):
        equilibrium(models, torch.tensor([600.0, 700.0]), torch.tensor([[0.5, 0.5]]))
    with pytest.raises(DataError, match="positive"):
        equilibrium(models, -5.0, torch.tensor([[0.5, 0.5]]))


@pytest.mark.reference
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_five_component_cantor_system_matches_pycalphad() -> None:
    """Co-Cr-Fe-Mn-Ni with magnetic FCC/BCC/HCP and sigma: one single-phase and one
    two-phase point (FCC + BCC at 900 K)."""
    from pycalphad import equilibrium as reference_equilibrium
    from pycalphad import variables as v

    elements = ["CO", "CR", "FE", "MN", "NI"]
    phases = ["LIQUID", "FCC_A1", "BCC_A2", "HCP_A3", "SIGMA_D8B"]
    models = build_phase_models("cocrfemnni_mfsteel", elements, phases)
    bulk = torch.tensor(
        [[0.2, 0.2, 0.2, 0.2, 0.2], [0.0942, 0.2903, 0.4110, 0.1183, 0.0862]], dtype=torch.float64
    )
    temperature = torch.tensor([1200.0, 900.0])
    result = equilibrium(models, temperature, bulk, points_per_phase=3000)
    db = load_database("cocrfemnni_mfsteel")
    for n, point in enumerate(result.points):
        assert point.converged, point.reason
        conditions = {v.T: float(temperature[n]), v.P: 101325, v.N: 1}
        conditions.update({v.X(e): float(bulk[n, i]) for i, e in enumerate(elements) if i})
        reference = reference_equilibrium(db, [*elements, "VA"], phases, conditions)
        expected: dict[str, float] = {}
        names = [str(p) for p in np.asarray(reference.Phase).ravel()]
        for phase, amount in zip(names, np.asarray(reference.NP).ravel(), strict=True):
            if phase:
                expected[phase] = expected.get(phase, 0.0) + float(amount)
        ours = point.phase_fractions()
        assert set(ours) == set(expected)
        for phase, amount in expected.items():
            assert ours[phase] == pytest.approx(amount, abs=1e-4)
        mu = np.asarray(reference.MU).ravel()
        np.testing.assert_allclose(point.chemical_potentials.numpy(), mu, atol=1.0)


def test_unconverged_conditions_are_solved_again_from_a_new_sample(monkeypatch) -> None:
    from matforge.calphad import solver

    models = build_phase_models("alzn_mey", ["AL", "ZN"])
    real_solve = solver._solve
    seeds = []

    def first_pass_fails_at_one(models, temperature, bulk, *options):
        seeds.append((options[-1], len(temperature)))
        points = real_solve(models, temperature, bulk, *options)
        if options[-1] == 0:
            points[1] = solver.PointResult(
                points[1].sets, points[1].chemical_potentials, 0.0, False, "x"
            )
        return points

    monkeypatch.setattr(solver, "_solve", first_pass_fails_at_one)
    bulk = torch.tensor([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]], dtype=torch.float64)
    result = equilibrium(models, torch.tensor(600.0), bulk)
    assert seeds == [(0, 3), (1, 1)]  # only the failed condition, with the next seed
    assert all(p.converged for p in result.points)
    assert abs(result.points[1].gibbs) > 1e3  # the restart's answer, not the failed one


def test_two_ordered_sets_beside_l12_converge() -> None:
    # A hard start: the hull gives B2 + sigma + B2 + Al3Ni5, the answer is two B2 sets and
    # L12; whether the first pass gets there depended on rounding (hash seed) before
    # restarts were added.
    models = build_phase_models("alcocrni", ["AL", "CO", "CR", "NI"])
    bulk = torch.tensor([[0.25, 0.05, 0.35, 0.35]], dtype=torch.float64)
    point = equilibrium(models, torch.tensor(900.0), bulk).points[0]
    assert point.converged, point.reason
    assert sorted(point.phase_fractions()) == ["BCC_B2", "BCC_B2#2", "L12_FCC"]

"""IFT derivatives of the equilibrium against central finite differences of the solver."""

from __future__ import annotations

import pytest
import torch

from matforge.calphad import build_phase_models
from matforge.calphad.gradients import differentiable_equilibrium, sensitivities
from matforge.calphad.solver import equilibrium

CANTOR = ["LIQUID", "FCC_A1", "BCC_A2", "HCP_A3", "SIGMA_D8B"]

# Points inside one phase region (checked below: +-h does not change the phase set).
# Temperatures avoid the breakpoints of the databases' piecewise functions (e.g. 700 K).
CASES = {
    "alzn_mey": (["AL", "ZN"], None, [610.0, 510.0], [[0.7, 0.3], [0.5, 0.5]]),
    "cumg": (["CU", "MG"], None, [900.0, 710.0], [[0.9, 0.1], [0.3, 0.7]]),
    "alni_dupin_2001": (["AL", "NI"], None, [1110.0, 1310.0], [[0.5, 0.5], [0.3, 0.7]]),
    "alcocrni": (["AL", "CO", "CR", "NI"], None, [1010.0], [[0.2, 0.3, 0.2, 0.3]]),
    "cocrfemnni_mfsteel": (
        ["CO", "CR", "FE", "MN", "NI"],
        CANTOR,
        [1210.0, 910.0],
        [[0.2] * 5, [0.0942, 0.2903, 0.4110, 0.1183, 0.0862]],
    ),
}
SLOW = {"alcocrni", "cocrfemnni_mfsteel"}


def _relative_error(ift: torch.Tensor, fd: torch.Tensor, floor: float) -> float:
    return float(((ift - fd).abs() / fd.abs().clamp(min=floor)).max())


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in CASES]
)
def test_ift_derivatives_equal_finite_differences(name: str) -> None:
    elements, phases, temperatures, compositions = CASES[name]
    models = build_phase_models(name, elements, phases)
    temperature = torch.tensor(temperatures, dtype=torch.float64)
    bulk = torch.tensor(compositions, dtype=torch.float64)

    def solve(t: torch.Tensor, x: torch.Tensor):
        result = equilibrium(models, t, x)
        assert all(p.converged for p in result.points)
        return result, sensitivities(models, result)

    result, sens = solve(temperature, bulk)
    phase_sets = [set(p.phase_fractions()) for p in result.points]
    # A direction on the simplex: one mole fraction up, the last down.
    direction = torch.zeros(bulk.shape[1], dtype=torch.float64)
    direction[0], direction[-1] = 1.0, -1.0
    h, h_t = 1e-5, 1e-3
    shifted = {
        "x+": solve(temperature, bulk + h * direction),
        "x-": solve(temperature, bulk - h * direction),
        "T+": solve(temperature + h_t, bulk),
        "T-": solve(temperature - h_t, bulk),
    }
    for label, (other, _) in shifted.items():
        assert [set(p.phase_fractions()) for p in other.points] == phase_sets, label
    plus, minus = shifted["x+"][1], shifted["x-"][1]
    errors = {
        "amounts/x": _relative_error(
            sens.d_amounts_d_bulk @ direction, (plus.amounts - minus.amounts) / (2 * h), 1e-3
        ),
        "mu/x": _relative_error(
            sens.d_mu_d_bulk @ direction,
            (plus.chemical_potentials - minus.chemical_potentials) / (2 * h),
            1.0,
        ),
        "compositions/x": _relative_error(
            sens.d_compositions_d_bulk @ direction,
            (plus.compositions - minus.compositions) / (2 * h),
            1e-3,
        ),
    }
    plus, minus = shifted["T+"][1], shifted["T-"][1]
    errors |= {
        "amounts/T": _relative_error(
            sens.d_amounts_dT, (plus.amounts - minus.amounts) / (2 * h_t), 1e-3
        ),
        "mu/T": _relative_error(
            sens.d_mu_dT, (plus.chemical_potentials - minus.chemical_potentials) / (2 * h_t), 1.0
        ),
        "compositions/T": _relative_error(
            sens.d_compositions_dT, (plus.compositions - minus.compositions) / (2 * h_t), 1e-3
        ),
    }
    assert max(errors.values()) < 1e-4, errors


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_backward_gives_the_jacobian_contracted_with_the_upstream_gradient() -> None:
    models = build_phase_models("alzn_mey", ["AL", "ZN"])
    bulk = torch.tensor([[0.7, 0.3], [0.5, 0.5]], dtype=torch.float64, requires_grad=True)
    temperature = torch.tensor([610.0, 510.0], dtype=torch.float64, requires_grad=True)
    amounts, mu, compositions = differentiable_equilibrium(models, temperature, bulk)
    phases = sorted(models)
    fcc = phases.index("FCC_A1")
    loss = amounts[:, fcc].sum() + 1e-4 * mu[:, 1].sum() + compositions[:, fcc, 1].sum()
    loss.backward()
    sens = sensitivities(models, equilibrium(models, temperature.detach(), bulk.detach()))
    expected_bulk = (
        sens.d_amounts_d_bulk[:, fcc]
        + 1e-4 * sens.d_mu_d_bulk[:, 1]
        + sens.d_compositions_d_bulk[:, fcc, 1]
    )
    expected_t = sens.d_amounts_dT[:, fcc] + 1e-4 * sens.d_mu_dT[:, 1]
    expected_t = expected_t + sens.d_compositions_dT[:, fcc, 1]
    torch.testing.assert_close(bulk.grad, expected_bulk)
    torch.testing.assert_close(temperature.grad, expected_t)
    # The two-phase FCC + HCP point: moving Zn in raises HCP and lowers FCC.
    assert float(sens.d_amounts_d_bulk[1, fcc, 1] - sens.d_amounts_d_bulk[1, fcc, 0]) < 0


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_unconverged_points_get_nan_derivatives_not_zeros() -> None:
    models = build_phase_models("alzn_mey", ["AL", "ZN"])
    result = equilibrium(models, 600.0, torch.tensor([[0.7, 0.3]], dtype=torch.float64))
    result.points[0].converged = False
    sens = sensitivities(models, result)
    assert bool(sens.d_mu_d_bulk.isnan().all())
    # Every output of that condition is NaN, not a zero that looks like an absent phase.
    assert bool(sens.amounts.isnan().all())
    assert bool(sens.compositions.isnan().all())
    assert bool(sens.chemical_potentials.isnan().all())
    assert sens.status == ("not_converged",)
    assert sens.failed.tolist() == [True]


def test_solve_batched_flags_the_singular_rows_it_solves_by_least_squares() -> None:
    from matforge.calphad.newton import solve_batched

    matrix = torch.stack([torch.eye(2), torch.tensor([[1.0, 1.0], [1.0, 1.0]])]).double()
    rhs = torch.tensor([[[1.0], [2.0]], [[2.0], [2.0]]], dtype=torch.float64)
    solution, singular = solve_batched(matrix, rhs)
    assert singular.tolist() == [False, True]
    torch.testing.assert_close(solution[1, :, 0], torch.tensor([1.0, 1.0], dtype=torch.float64))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_singular_ift_system_is_flagged_per_point(monkeypatch) -> None:
    import matforge.calphad.gradients as gradients
    from matforge.calphad.newton import solve_batched

    def second_row_singular(matrix, rhs):
        solution, singular = solve_batched(matrix, rhs)
        singular = singular.clone()
        singular[-1] = True
        return solution, singular

    models = build_phase_models("alzn_mey", ["AL", "ZN"])
    bulk = torch.tensor([[0.7, 0.3], [0.6, 0.4]], dtype=torch.float64)
    result = equilibrium(models, torch.tensor([610.0, 610.0], dtype=torch.float64), bulk)
    assert len({tuple(s.phase for s in p.sets) for p in result.points}) == 1  # one layout
    monkeypatch.setattr(gradients, "solve_batched", second_row_singular)
    sens = sensitivities(models, result)
    assert sens.status == ("ok", "singular")
    assert sens.singular.tolist() == [False, True]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_least_squares_newton_steps_are_reported_in_the_point_status(monkeypatch) -> None:
    import matforge.calphad.newton as newton

    original = newton.solve_batched

    def always_flag_first(matrix, rhs):
        solution, singular = original(matrix, rhs)
        singular = singular.clone()
        singular[0] = True
        return solution, singular

    models = build_phase_models("alzn_mey", ["AL", "ZN"])
    monkeypatch.setattr(newton, "solve_batched", always_flag_first)
    result = equilibrium(models, 600.0, torch.tensor([[0.7, 0.3]], dtype=torch.float64))
    point = result.points[0]
    assert point.converged
    assert point.least_squares_steps > 0
    assert result.status == ["converged_least_squares"]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_an_unconverged_hull_is_honoured_and_results_stay_aligned(monkeypatch) -> None:
    import dataclasses

    import matforge.calphad.solver as solver

    models = build_phase_models("alzn_mey", ["AL", "ZN"])
    temperature = torch.tensor([500.0, 600.0, 700.0], dtype=torch.float64)
    bulk = torch.tensor([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]], dtype=torch.float64)
    reference = equilibrium(models, temperature, bulk)
    original = solver.lower_convex_hull
    calls = []

    def middle_not_optimal(*args, **kwargs):
        hull = original(*args, **kwargs)
        calls.append(len(hull.converged))
        converged = hull.converged.clone()
        if len(calls) == 1:
            converged[1] = False
        return dataclasses.replace(hull, converged=converged)

    monkeypatch.setattr(solver, "lower_convex_hull", middle_not_optimal)
    result = equilibrium(models, temperature, bulk, restarts=0)
    assert result.converged.tolist() == [True, False, True]
    assert "convex hull" in result.points[1].reason
    for n in (0, 2):  # the others keep their own conditions' results
        assert result.points[n].gibbs == pytest.approx(reference.points[n].gibbs, abs=1e-6)
    calls.clear()
    again = equilibrium(models, temperature, bulk, restarts=1)  # a fresh sample solves it
    assert again.converged.tolist() == [True, True, True]
    assert calls == [3, 1]
    assert again.points[1].gibbs == pytest.approx(reference.points[1].gibbs, abs=1e-6)

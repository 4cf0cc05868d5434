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

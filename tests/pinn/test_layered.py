"""Exact layered-bar solution and the blending rules of the smoothed layered modulus."""

from __future__ import annotations

import itertools

import pytest
import torch

from matforge.pinn import LayeredBar, smoothed_modulus

BAR = LayeredBar(
    moduli=(2.0e9, 5.0e9, 1.0e9),
    interfaces=(0.3, 0.65),
    length=1.0,
    area=1e-4,
    end_force=1e3,
    body_force=2e3,
)


def test_closed_form_satisfies_equilibrium_continuity_and_boundary_conditions():
    x = torch.linspace(0.0, 1.0, 2001, dtype=torch.float64, requires_grad=True)
    u = BAR.displacement(x)
    (du,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    force = BAR.area * BAR.modulus(x.detach()) * du
    inside = torch.ones_like(x, dtype=torch.bool)
    for y in BAR.interfaces:  # u' jumps there; compare the two sides below
        inside &= (x.detach() - y).abs() > 1e-9
    # Axial force N = A E u' equals P + b (L - x) everywhere (hence d N/dx = -b, N(L) = P).
    torch.testing.assert_close(
        force[inside], BAR.axial_force(x.detach())[inside], rtol=1e-10, atol=1e-6
    )
    assert float(u[0].detach()) == 0.0
    # Displacement is continuous across the interfaces.
    for y in BAR.interfaces:
        left = BAR.displacement(torch.tensor([y - 1e-12], dtype=torch.float64))
        right = BAR.displacement(torch.tensor([y + 1e-12], dtype=torch.float64))
        assert float(right) == pytest.approx(float(left), rel=1e-10)


def test_end_displacement_is_the_sum_of_layer_compliances():
    bar = LayeredBar(moduli=(1.0, 4.0), interfaces=(0.25,), end_force=2.0)
    assert bar.end_displacement() == pytest.approx(2.0 * (0.25 / 1.0 + 0.75 / 4.0), rel=1e-14)


def _integral(values: torch.Tensor, x: torch.Tensor) -> float:
    return float(torch.trapezoid(values, x))


@pytest.mark.parametrize("width", [0.02, 0.01, 0.005])
def test_series_loading_needs_compliance_blending_and_parallel_needs_modulus(width):
    """Layers in series: the end displacement is integral N / (A E); only compliance
    blending keeps integral 1/E exact. Layers in parallel: the stiffness is integral E;
    only modulus blending keeps it exact. The wrong rule errs by O(width)."""
    x = torch.linspace(0.0, 1.0, 200_001, dtype=torch.float64)
    moduli = torch.tensor(BAR.moduli, dtype=torch.float64)
    interfaces = torch.tensor(BAR.interfaces, dtype=torch.float64)
    edges = [0.0, *BAR.interfaces, BAR.length]
    thickness = [b - a for a, b in itertools.pairwise(edges)]
    compliance_truth = sum(t / e for t, e in zip(thickness, BAR.moduli, strict=True))
    stiffness_truth = sum(t * e for t, e in zip(thickness, BAR.moduli, strict=True))
    by_rule = {
        rule: smoothed_modulus(x, moduli, interfaces, width, rule)
        for rule in ("modulus", "compliance")
    }
    series_good = abs(_integral(1 / by_rule["compliance"], x) / compliance_truth - 1)
    series_bad = abs(_integral(1 / by_rule["modulus"], x) / compliance_truth - 1)
    parallel_good = abs(_integral(by_rule["modulus"], x) / stiffness_truth - 1)
    parallel_bad = abs(_integral(by_rule["compliance"], x) / stiffness_truth - 1)
    assert series_good < 1e-6
    assert parallel_good < 1e-6
    assert series_bad > 0.2 * width
    assert parallel_bad > 0.2 * width
    assert series_bad > 1000 * series_good
    assert parallel_bad > 1000 * parallel_good


def test_smoothed_modulus_is_differentiable_in_moduli_and_interfaces():
    moduli = torch.tensor([1.0, 3.0, 2.0], dtype=torch.float64, requires_grad=True)
    interfaces = torch.tensor([0.4, 0.7], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.41], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda m, i: smoothed_modulus(y, m, i, 0.05, "compliance"), (moduli, interfaces)
    )
    with pytest.raises(ValueError, match="interfaces"):
        smoothed_modulus(y, moduli, interfaces[:1], 0.05)
    with pytest.raises(ValueError, match="increase"):
        LayeredBar(moduli=(1.0, 2.0), interfaces=(1.5,))

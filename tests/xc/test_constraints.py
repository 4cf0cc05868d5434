"""Exact constraints of the neural meta-GGA hold for any weights (tested at random ones),
and the measurements that report them (H atom, E(N)) give known answers for PBE/SCAN."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("pyscf")

from test_reference_functionals import random_density

from matforge.xc import constraints
from matforge.xc.density import SpinDensity
from matforge.xc.neural import LIEB_OXFORD, TWO_ELECTRON_BOUND, NeuralMetaGGA


def randomized(scale: float, seed: int = 0) -> NeuralMetaGGA:
    """A neural functional far from its SCAN initialization."""
    torch.manual_seed(seed)
    functional = NeuralMetaGGA()
    with torch.no_grad():
        for parameter in functional.parameters():
            parameter.normal_(0.0, scale)
    return functional


@pytest.mark.parametrize("spin", [0, 1])
def test_exchange_coordinate_and_spin_scaling(spin: int) -> None:
    functional = randomized(1.0)
    density, _ = SpinDensity.from_pyscf(random_density(spin, "MGGA"), "MGGA", spin)
    assert constraints.coordinate_scaling_error(functional, density, 2.5) < 1e-12
    assert constraints.coordinate_scaling_error(functional, density, 0.3) < 1e-12
    assert constraints.spin_scaling_error(functional, density) < 1e-12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exchange_bounds_hold_for_any_weights(seed: int) -> None:
    """Large random weights push F_x against its bounds (it reaches 1.80): the bounds
    hold by construction, and F_x(0, 1) = 1 (uniform gas)."""
    functional = randomized(3.0, seed)
    report = constraints.exchange_enhancement_range(
        functional, np.linspace(0, 20, 401), np.concatenate([np.linspace(0, 5, 401), [1e3]])
    )
    assert report["max"] <= LIEB_OXFORD
    assert report["max_alpha0"] <= TWO_ELECTRON_BOUND
    assert report["min"] >= 0.0
    assert report["uniform_gas"] == pytest.approx(1.0, abs=1e-12)
    assert report["max"] > 1.5  # the bound is active, not trivially far away


def test_size_consistency_and_one_electron_correlation() -> None:
    functional = randomized(0.3)
    error = constraints.size_consistency_error(
        functional, "He 0 0 0", "H 0 0 0; H 0 0 0.74", distance=60.0, basis="6-31g"
    )
    assert abs(error) < 1e-6
    report = constraints.one_electron_report(functional, basis="cc-pvdz")
    assert abs(report["correlation"]) < 1e-12
    assert report["energy_error"] != 0.0


def test_fractional_charge_curve_shows_pbe_delocalization_error() -> None:
    """PBE's E(N) for the H atom is convex (about -0.05 Ha at N = 1/2 in cc-pVTZ); the
    untrained neural functional is SCAN and gives SCAN's curve."""
    pbe = constraints.fractional_charge_curve("PBE", "H", points=3, basis="cc-pvdz")
    assert all(pbe["converged"])
    assert -0.08 < pbe["max_deviation"] < -0.03
    scan = constraints.fractional_charge_curve("SCAN", "H", points=3, basis="cc-pvdz")
    neural = constraints.fractional_charge_curve(NeuralMetaGGA(), "H", points=3, basis="cc-pvdz")
    assert neural["max_deviation"] == pytest.approx(scan["max_deviation"], abs=1e-7)

"""1D inverse problem: layer moduli and interfaces of a 3-layer bar from displacements."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matforge.pinn import BarSettings, LayeredBar, fit_closed_form, identify_bar

TRUE_MODULI = np.array([2.0e9, 5.0e9, 1.0e9])
TRUE_INTERFACES = np.array([0.3, 0.65])
BAR = LayeredBar(
    tuple(TRUE_MODULI),
    tuple(TRUE_INTERFACES),
    length=1.0,
    area=1e-4,
    end_force=1e3,
    body_force=500.0,
)
SENSORS = np.linspace(0.0, 1.0, 51)[1:]
GEOMETRY = {"length": 1.0, "area": 1e-4, "end_force": 1e3, "body_force": 500.0}


def _observations(noise: float, seed: int = 0) -> np.ndarray:
    clean = BAR.displacement(torch.tensor(SENSORS, dtype=torch.float64)).numpy()
    rng = np.random.default_rng(seed)
    return clean + noise * np.abs(clean).max() * rng.standard_normal(len(SENSORS))


def _errors(moduli: np.ndarray, interfaces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return moduli / TRUE_MODULI - 1, (interfaces - TRUE_INTERFACES) / BAR.length


@pytest.mark.slow
def test_noise_free_identification_within_one_percent_and_half_a_percent_of_length():
    found = identify_bar(SENSORS, _observations(0.0), **GEOMETRY)
    modulus_error, interface_error = _errors(found.moduli, found.interfaces)
    assert np.abs(modulus_error).max() < 0.01, found.moduli
    assert np.abs(interface_error).max() < 0.005, found.interfaces


@pytest.mark.slow
def test_noisy_identification_is_close_to_the_best_closed_form_fit():
    """1% noise: the PINN's error is at most 1.5x that of nonlinear least squares of the
    exact forward model to the same data (the best achievable estimate from these data)."""
    observed = _observations(0.01)
    found = identify_bar(SENSORS, observed, **GEOMETRY)
    reference = fit_closed_form(SENSORS, observed, n_layers=3, **GEOMETRY)
    moduli, interfaces = reference.moduli, reference.interfaces

    def rms(m: np.ndarray, i: np.ndarray) -> float:
        a, b = _errors(m, i)
        return float(np.sqrt(np.mean(np.concatenate([a, b]) ** 2)))

    pinn, best = rms(found.moduli, found.interfaces), rms(moduli, interfaces)
    assert best > 0
    assert pinn <= 1.5 * best, (pinn, best)
    # identifiability: the Laplace spread of the exact-model fit, per parameter; every
    # parameter is determined by these data (a spread under 10%), and the PINN's errors are
    # of the size that spread predicts
    spread = np.concatenate([reference.moduli_std / moduli, reference.interfaces_std / BAR.length])
    assert np.all(spread > 0)
    assert np.all(spread < 0.1), spread
    modulus_error, interface_error = _errors(found.moduli, found.interfaces)
    assert np.all(np.abs(np.concatenate([modulus_error, interface_error])) < 4 * spread + 1e-3)


def test_settings_reject_impossible_layers():
    with pytest.raises(ValueError, match="exceed"):
        identify_bar(
            SENSORS,
            _observations(0.0),
            **GEOMETRY,
            settings=BarSettings(min_thickness=0.4, adam_steps=1, lbfgs_steps=0),
        )


@pytest.mark.slow
def test_thin_stiff_layer_under_noise_does_not_collapse():
    """A thin (0.1 L), stiff middle layer under 2% noise: it barely shows in the data, and
    the unconstrained closed-form fit collapses it (its modulus runs away to infinity, the
    layer vanishes from the model). Bounds on the moduli, a minimum layer thickness and
    three starts keep the PINN's layer finite, inside the bounds, with the interfaces
    within 2% of the length and the outer moduli as good as the closed-form fit's."""
    moduli, interfaces = np.array([2e9, 8e9, 1e9]), np.array([0.45, 0.55])
    bar = LayeredBar(tuple(moduli), tuple(interfaces), **GEOMETRY)
    clean = bar.displacement(torch.tensor(SENSORS, dtype=torch.float64)).numpy()
    rng = np.random.default_rng(0)
    observed = clean + 0.02 * np.abs(clean).max() * rng.standard_normal(len(SENSORS))
    collapsed = fit_closed_form(SENSORS, observed, n_layers=3, **GEOMETRY)
    assert collapsed.moduli[1] > 10 * moduli[1]  # the ill-posedness is real

    settings = BarSettings(starts=3, adam_steps=1500, lbfgs_steps=500)
    found = identify_bar(SENSORS, observed, **GEOMETRY, settings=settings)
    assert len(found.start_losses) == 3
    low, high = (b * 1e9 for b in settings.modulus_bounds)
    assert np.all(found.moduli > 1.01 * low)
    assert np.all(found.moduli < 0.99 * high)  # not pinned at a bound
    thickness = np.diff(np.concatenate([[0.0], found.interfaces, [1.0]]))
    assert thickness.min() > 1.5 * settings.min_thickness  # not pinned at the minimum
    assert 1 / 1.5 < found.moduli[1] / moduli[1] < 1.5
    assert np.abs(found.interfaces - interfaces).max() < 0.02
    outer = np.abs(found.moduli[[0, 2]] / moduli[[0, 2]] - 1)
    reference = np.abs(collapsed.moduli[[0, 2]] / moduli[[0, 2]] - 1)
    assert np.all(outer <= 1.5 * reference + 0.01), (outer, reference)

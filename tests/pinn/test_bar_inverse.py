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
    moduli, interfaces, _ = fit_closed_form(SENSORS, observed, n_layers=3, **GEOMETRY)

    def rms(m: np.ndarray, i: np.ndarray) -> float:
        a, b = _errors(m, i)
        return float(np.sqrt(np.mean(np.concatenate([a, b]) ** 2)))

    pinn, best = rms(found.moduli, found.interfaces), rms(moduli, interfaces)
    assert best > 0
    assert pinn <= 1.5 * best, (pinn, best)


def test_settings_reject_impossible_layers():
    with pytest.raises(ValueError, match="exceed"):
        identify_bar(
            SENSORS,
            _observations(0.0),
            **GEOMETRY,
            settings=BarSettings(min_thickness=0.4, adam_steps=1, lbfgs_steps=0),
        )

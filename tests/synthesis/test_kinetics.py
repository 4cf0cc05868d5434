"""Each kinetic law against its differential form integrated numerically (scipy), or its
defining property."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from matforge.synthesis import kinetics as law
from matforge.synthesis.process import AlloyConstants, ProcessModel

T = torch.tensor([700.0], dtype=torch.float64)


def _integrate(rate, y0, t_end):
    solution = solve_ivp(rate, (0, t_end), [y0], rtol=1e-11, atol=1e-30, method="LSODA")
    return solution.y[0, -1]


def test_grain_growth_is_the_integral_of_its_rate():
    n, k0, q = 2.0, 1e-3, 140e3
    k = float(law.arrhenius(k0, q, T))
    d0, t = 20e-6, 7200.0
    # d(d^n)/dt = k  <=>  dd/dt = k / (n d^(n-1))
    numeric = _integrate(lambda _, d: k / (n * d ** (n - 1)), d0, t)
    closed = law.grain_growth(
        torch.tensor([d0], dtype=torch.float64),
        T,
        torch.tensor([t], dtype=torch.float64),
        n=n,
        k0=k0,
        q=q,
    )
    assert float(closed[0]) == pytest.approx(numeric, rel=1e-8)


def test_jmak_half_time_and_avrami_slope():
    rate, n = torch.tensor([2e-3], dtype=torch.float64), 1.5
    half = math.log(2) ** (1 / n) / 2e-3
    assert float(
        law.jmak_fraction(rate, torch.tensor([half], dtype=torch.float64), n)[0]
    ) == pytest.approx(0.5, abs=1e-12)
    times = torch.tensor([100.0, 1000.0], dtype=torch.float64)
    x = law.jmak_fraction(rate, times, n)
    slope = torch.diff(torch.log(-torch.log(1 - x))) / torch.diff(torch.log(times))
    assert float(slope[0]) == pytest.approx(n, rel=1e-10)


def test_recovery_is_second_order():
    k0, q = 3e-6, 150e3
    k = float(law.arrhenius(k0, q, T))
    numeric = _integrate(lambda _, r: -k * r**2, 1e14, 3600.0)
    closed = law.recovery(
        torch.tensor([1e14], dtype=torch.float64),
        T,
        torch.tensor([3600.0], dtype=torch.float64),
        k0=k0,
        q=q,
    )
    assert float(closed[0]) == pytest.approx(numeric, rel=1e-8)


def test_kocks_mecking_closed_form_integrates_the_storage_law():
    k1, k2, m = 1.5e8, 8.0, 3.06
    numeric = _integrate(lambda _, r: m * (k1 * np.sqrt(r) - k2 * r), 1e12, 0.7)
    closed = law.kocks_mecking(
        torch.tensor([1e12], dtype=torch.float64),
        torch.tensor([0.7], dtype=torch.float64),
        k1=k1,
        k2=k2,
        taylor=m,
    )
    assert float(closed[0]) == pytest.approx(numeric, rel=1e-8)
    saturated = law.kocks_mecking(
        torch.tensor([1e12], dtype=torch.float64),
        torch.tensor([50.0], dtype=torch.float64),
        k1=k1,
        k2=k2,
        taylor=m,
    )
    assert float(saturated[0]) == pytest.approx((k1 / k2) ** 2, rel=1e-10)


def test_lsw_cube_law():
    k0, q = 4.5e-12, 130e3
    rate = float(law.arrhenius(k0, q, T)) / 700.0
    numeric = _integrate(lambda _, r: rate / (3 * r**2), 2e-9, 36000.0)
    closed = law.lsw_coarsening(
        torch.tensor([2e-9], dtype=torch.float64),
        T,
        torch.tensor([36000.0], dtype=torch.float64),
        k0=k0,
        q=q,
    )
    assert float(closed[0]) == pytest.approx(numeric, rel=1e-8)


def test_strength_laws_and_the_peak_of_precipitation_hardening():
    c = AlloyConstants()
    assert float(
        law.hall_petch(torch.tensor([1e-4], dtype=torch.float64), 0.04e6)[0]
    ) == pytest.approx(4e6)
    taylor = law.taylor_stress(
        torch.tensor([1e14], dtype=torch.float64),
        alpha=0.3,
        shear_modulus=26e9,
        burgers=0.286e-9,
        taylor=3.06,
    )
    assert float(taylor[0]) == pytest.approx(3.06 * 0.3 * 26e9 * 0.286e-9 * 1e7)
    radii = torch.logspace(-9.5, -7, 400, dtype=torch.float64)
    stress = law.orowan_shearing_stress(
        torch.full_like(radii, 0.04),
        radii,
        shear_modulus=c.shear_modulus,
        burgers=c.burgers,
        taylor=c.taylor,
        shearing_k=c.shearing_k,
    )
    peak = ProcessModel(c).peak_radius()  # independent of the fraction: both laws go as sqrt(f)
    assert float(radii[stress.argmax()]) == pytest.approx(peak, rel=0.03)
    assert float(
        law.solid_solution_stress(torch.tensor([0.017], dtype=torch.float64), 900e6)[0]
    ) == pytest.approx(900e6 * 0.017 ** (2 / 3))


def test_ageing_curve_peaks_and_solution_treatment_dissolves():
    model = ProcessModel()
    o_temper = torch.tensor([[50e-6, 1e12, 0.04, 2e-7]], dtype=torch.float64)
    solutionized = model.heat_treat(
        o_temper,
        torch.tensor([793.0], dtype=torch.float64),
        torch.tensor([3600.0], dtype=torch.float64),
    )
    assert float(solutionized[0, 2]) == pytest.approx(0.0, abs=1e-9)  # above the 756 K solvus
    hours = np.array([1, 3, 10, 30, 100])
    strengths = []
    for h in hours:
        aged = model.heat_treat(
            solutionized,
            torch.tensor([443.0], dtype=torch.float64),
            torch.tensor([h * 3600.0], dtype=torch.float64),
        )
        strengths.append(float(model.properties(aged)["yield_strength_MPa"][0]))
    peak = int(np.argmax(strengths))
    assert 0 < peak < len(hours) - 1  # under-aged, peak, over-aged
    assert 300 < max(strengths) < 450  # the range of peak-aged Al-4Cu

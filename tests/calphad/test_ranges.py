"""Temperature ranges of the database functions, and the warning outside them."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from matforge.calphad import build_phase_models, equilibrium
from matforge.calphad.ranges import TemperatureRangeWarning


@pytest.fixture(scope="module")
def alzn():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_phase_models("alzn_mey", ["AL", "ZN"])


def test_phase_ranges_intersect_parameters_and_functions(alzn) -> None:
    # alzn_mey.tdb: every function starts at 298.15 K; GHSERZN and the ZN parameters end
    # at 1700 K (GHSERAL runs to 2900 K, the AL-ZN interaction terms to 6000 K).
    for phase in ("FCC_A1", "HCP_A3", "LIQUID"):
        assert alzn[phase].temperature_range == (298.15, 1700.0)
    # Al-only FCC: the ZN functions no longer apply, GHSERAL's 2900 K does.
    aluminium = build_phase_models("alzn_mey", ["AL"], ["FCC_A1"])["FCC_A1"]
    assert aluminium.temperature_range == (298.15, 2900.0)
    assert not math.isinf(aluminium.temperature_range[1])


def test_equilibrium_warns_outside_the_range_only(alzn) -> None:
    bulk = torch.tensor([[0.6, 0.4]], dtype=torch.float64)
    with pytest.warns(TemperatureRangeWarning, match=r"T = 200 K .*FCC_A1 \(298.15-1700 K\)"):
        equilibrium(alzn, torch.tensor([200.0]), bulk)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TemperatureRangeWarning)
        equilibrium(alzn, torch.tensor([600.0]), bulk)

"""Links and chains: exact gradients, constraints that hold for any input, composition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from matforge.psp import (
    Chain,
    DualPhaseSteel,
    HallPetchLink,
    NeuralPropertyLink,
    ProcessStructureNet,
    Quantity,
)

PROCESS = [
    Quantity("temperature_C", "C"),
    Quantity("time_h", "h", log_scale=True),
    Quantity("cold_work", "1"),
]
PHASES = ("ferrite", "martensite")


def _chain(seed: int = 0, neural: bool = False) -> Chain:
    torch.manual_seed(seed)
    structure = ProcessStructureNet(PROCESS, PHASES, hidden=(16, 16))
    # Statistics of a plausible training range, so inputs are of order one.
    structure.scale.mean.copy_(torch.tensor([800.0, 0.0, 0.5], dtype=torch.float64))
    structure.scale.std.copy_(torch.tensor([170.0, 0.9, 0.17], dtype=torch.float64))
    prop = NeuralPropertyLink(PHASES, hidden=(8,)) if neural else HallPetchLink(PHASES)
    return Chain([structure, prop])


@pytest.mark.parametrize("neural", [False, True])
def test_gradients_through_the_chain_equal_finite_differences(neural):
    chain = _chain(neural=neural)
    point = {"temperature_C": 830.0, "time_h": 2.5, "cold_work": 0.45}

    def strength(values: dict[str, float]) -> torch.Tensor:
        tensors = {
            k: torch.tensor([v], dtype=torch.float64, requires_grad=True) for k, v in values.items()
        }
        return chain(tensors)["yield_strength_MPa"][0], tensors

    value, tensors = strength(point)
    value.backward()
    for name, x in point.items():
        h = 1e-6 * max(abs(x), 1.0)
        up = float(strength({**point, name: x + h})[0].detach())
        down = float(strength({**point, name: x - h})[0].detach())
        numeric = (up - down) / (2 * h)
        assert float(tensors[name].grad[0]) == pytest.approx(numeric, rel=1e-5, abs=1e-9)


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(temperature=finite, log_time=st.floats(-30, 30), cold_work=finite, seed=st.integers(0, 3))
def test_grain_size_positive_and_fractions_sum_to_one_for_any_input(
    temperature, log_time, cold_work, seed
):
    chain = _chain(seed)
    values = {
        "temperature_C": torch.tensor([temperature], dtype=torch.float64),
        "time_h": torch.tensor([10.0**log_time], dtype=torch.float64),
        "cold_work": torch.tensor([cold_work], dtype=torch.float64),
    }
    with torch.no_grad():
        out = chain(values)
    grain = float(out["grain_size_um"][0])
    assert np.isfinite(grain)
    assert grain > 0
    fractions = [float(out[f"fraction_{p}"][0]) for p in PHASES]
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert sum(fractions) == pytest.approx(1.0, abs=1e-12)
    assert np.isfinite(float(out["yield_strength_MPa"][0]))


def test_hall_petch_link_equals_the_generator_physics():
    steel = DualPhaseSteel()
    link = HallPetchLink(PHASES, sigma0=steel.sigma0, k=steel.hall_petch_k, learnable=False)
    t = torch.tensor([600.0, 780.0, 900.0], dtype=torch.float64)
    structure = steel.structure(t, torch.full_like(t, 2.0), torch.full_like(t, 0.4))
    expected = steel.strength(structure)
    torch.testing.assert_close(link(structure)["yield_strength_MPa"], expected)
    assert not any(p.requires_grad for p in link.parameters())


def test_chain_checks_its_wiring():
    structure = ProcessStructureNet(PROCESS, PHASES)
    with pytest.raises(ValueError, match="produces"):
        Chain([structure, structure])
    chain = Chain([structure, HallPetchLink(PHASES)])
    assert set(chain.inputs) == {"temperature_C", "time_h", "cold_work"}
    with pytest.raises(KeyError, match="time_h"):
        chain({"temperature_C": torch.ones(1), "cold_work": torch.ones(1)})
    with pytest.raises(ValueError, match="positive"):
        HallPetchLink(PHASES, sigma0=[-1.0, 2.0])


def test_unmodeled_martensite_carbon_effect_follows_the_lever_rule():
    from matforge.psp.generator import DualPhaseSteel

    plain, carbon = DualPhaseSteel(), DualPhaseSteel(martensite_carbon_exponent=0.5)
    grain = torch.tensor([8.0, 8.0], dtype=torch.float64)
    martensite = torch.tensor([1.0, 0.3], dtype=torch.float64)
    structure = {
        "grain_size_um": grain,
        "fraction_martensite": martensite,
        "fraction_ferrite": 1 - martensite,
    }
    base = plain.strength(structure)
    changed = carbon.strength(structure)
    hall_petch = 0.40 * (8e-6) ** -0.5
    # All martensite: it holds the bulk 0.10 wt% C, sigma0 scales by sqrt(0.10 / 0.3).
    assert float(changed[0]) == pytest.approx(900.0 * (0.1 / 0.3) ** 0.5 + hall_petch)
    # f_M = 0.3: C_M = (0.10 - 0.02 * 0.7) / 0.3 = 0.2867 wt%.
    factor = ((0.10 - 0.02 * 0.7) / 0.3 / 0.3) ** 0.5
    assert float(changed[1] - base[1]) == pytest.approx(0.3 * 900.0 * (factor - 1))

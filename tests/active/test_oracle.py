"""Oracles: a label that fails in part is a failure, never a silently smaller label."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.emt import EMT

from matforge.active import CalculatorOracle, OracleRunner


class EMTWithoutStress(EMT):
    """EMT whose stress always fails, as a calculator without stress support would."""

    implemented_properties = ("energy", "forces")

    def get_stress(self, atoms=None, voigt=True, apply_constraint=True):
        raise PropertyNotImplementedError("stress is not implemented")


def test_a_failing_stress_fails_the_label_and_the_runner_records_it():
    oracle = CalculatorOracle(f"{__name__}:EMTWithoutStress")
    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    with pytest.raises(RuntimeError, match=r"stress of a periodic cell failed.*not implemented"):
        oracle(cell)
    failures = []
    with OracleRunner(oracle, executor="serial", retries=1) as runner:
        report = runner.run(
            [("cell", cell)],
            on_result=lambda *args: pytest.fail("a label without its stress was accepted"),
            on_failure=lambda key, message, attempt, final: failures.append((key, final)),
        )
    assert report.failed == ["cell"]
    assert report.attempts == {"cell": 2}
    assert failures == [("cell", False), ("cell", True)]
    assert "stress" in report.errors["cell"][-1]


def test_stress_can_be_switched_off_explicitly_and_is_given_otherwise():
    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    without = CalculatorOracle(f"{__name__}:EMTWithoutStress", stress=False)(cell)
    assert without.stress is None
    assert np.isfinite(without.energy)
    labels = CalculatorOracle("emt")(cell)
    assert labels.stress is not None
    assert labels.stress.shape == (6,)

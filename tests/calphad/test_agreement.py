"""Agreement with pycalphad on grids of >= 300 (composition, T) points per binary database.

Acceptance: the same stable composition sets at >= 99% of points (a disagreement where
pycalphad's total G is higher is pycalphad missing the global minimum, and is listed),
phase fractions within 1e-4 and chemical potentials within 1 J/mol where both agree.
"""

from __future__ import annotations

import numpy as np
import pytest

from matforge.calphad import build_phase_models, load_database
from matforge.calphad.reference import compare_grid

GRIDS = {
    "alzn_mey": (["AL", "ZN"], "ZN", np.arange(400.0, 951.0, 50.0)),
    "cumg": (["CU", "MG"], "MG", np.arange(500.0, 1401.0, 75.0)),
    "alni_dupin_2001": (["AL", "NI"], "NI", np.arange(700.0, 1801.0, 100.0)),
}


@pytest.mark.reference
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", list(GRIDS))
def test_binary_equilibria_agree_with_pycalphad_on_300_points(name: str) -> None:
    elements, varied, temperatures = GRIDS[name]
    fractions = {varied: [round(v, 3) for v in np.arange(0.02, 0.99, 0.04)]}
    models = build_phase_models(name, elements)
    comparison = compare_grid(load_database(name), models, list(temperatures), fractions)
    assert comparison.points >= 300
    # Every disagreement must be one where matforge found the lower Gibbs energy.
    unexplained = [d for d in comparison.disagreements if d["cause"] != "pycalphad_higher"]
    assert not unexplained, unexplained[:3]
    assert comparison.agreement >= 0.99, comparison.disagreements
    assert comparison.max_fraction_error <= 1e-4
    assert comparison.max_mu_error <= 1.0

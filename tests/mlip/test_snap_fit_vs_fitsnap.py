"""The linear SNAP fit with FitSNAP's Ta settings (Ta-example.in) against FitSNAP's output:
coefficients (Ta_pot.snapcoeff) and per-group errors (Ta_metrics.md)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from matforge.mlip.linear import GroupWeights, error_table, solve

#: Ta-example.in, [GROUPS]: eweight fweight vweight.
TA_WEIGHTS = {
    "Displaced_A15": (100, 1, 1e-8),
    "Displaced_BCC": (100, 1, 1e-8),
    "Displaced_FCC": (100, 1, 1e-8),
    "Elastic_BCC": (1e-8, 1e-8, 1e-4),
    "Elastic_FCC": (1e-9, 1e-9, 1e-9),
    "GSF_110": (100, 1, 1e-8),
    "GSF_112": (100, 1, 1e-8),
    "Liquid": (4.67e2, 1, 1e-8),
    "Surface": (100, 1, 1e-8),
    "Volume_A15": (1, 1e-9, 1e-9),
    "Volume_BCC": (1, 1e-9, 1e-9),
    "Volume_FCC": (1, 1e-9, 1e-9),
}


@pytest.fixture(scope="module")
def fitsnap(ta_fitsnap):
    weights = {g: GroupWeights(*w) for g, w in TA_WEIGHTS.items()}
    return ta_fitsnap["system"], weights, ta_fitsnap["coefficients"], ta_fitsnap["metrics"]


def test_coefficients_equal_fitsnap(fitsnap):
    system, weights, reference, _ = fitsnap
    coefficients = solve(system, weights, solver="svd")
    # Measured: 2.6e-12 relative (the README quotes it).
    np.testing.assert_allclose(coefficients, reference, rtol=1e-11, atol=0)


def _read_metrics(path):
    rows = {}
    pattern = re.compile(r"\('([^']+)', '(\w+)', '(\w+)'\)\s*\|\s*(\d+)\s*\|\s*(\S+)\s*\|\s*(\S+)")
    for line in path.read_text().splitlines():
        match = pattern.search(line)
        if match:
            group, weighting, kind, count, mae, rmse = match.groups()
            rows[(group, weighting.lower(), kind.lower())] = (int(count), float(mae), float(rmse))
    return rows


def test_per_group_errors_equal_fitsnap_metrics(fitsnap):
    system, weights, _, metrics = fitsnap
    expected = _read_metrics(metrics)
    assert len(expected) == 13 * 2 * 3
    table = error_table(system, solve(system, weights), weights)
    seen = 0
    for row in table.itertuples():
        count, mae, rmse = expected[(row.group, row.weighting, row.kind)]
        assert row.count == count
        # The metrics file prints 6 significant digits.
        assert row.mae == pytest.approx(mae, rel=2e-5), row
        assert row.rmse == pytest.approx(rmse, rel=2e-5), row
        seen += 1
    assert seen == len(expected)

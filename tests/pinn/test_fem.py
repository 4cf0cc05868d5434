"""The 2D ground truth: plane-strain P2 finite elements of a layered plate (scikit-fem)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skfem", reason="scikit-fem (extra 'pinn') not installed")

from matforge.pinn.fem import LayeredPlate, solve_plate

POINTS = np.array([[0.3, 0.2], [1.0, 0.5], [1.7, 0.8], [2.0, 1.0], [0.0, 1.0]])


def test_one_layer_gives_the_uniform_closed_form_field():
    nu, modulus, pressure = 0.3, 3.0, 2.0
    plate = LayeredPlate((modulus, modulus, modulus), (0.3, 0.65), poisson=nu, traction=-pressure)
    found = solve_plate(plate, cells_x=10, cells_y=10).at(POINTS)
    expected = np.stack(
        [
            nu * (1 + nu) * pressure * POINTS[:, 0] / modulus,
            -(1 - nu**2) * pressure * POINTS[:, 1] / modulus,
        ],
        axis=1,
    )
    np.testing.assert_allclose(found, expected, atol=1e-12)


def test_layered_solution_is_mesh_converged_and_in_equilibrium():
    plate = LayeredPlate((2.0, 5.0, 1.0), (0.3, 0.65))
    coarse = solve_plate(plate, cells_x=20, cells_y=20)
    fine = solve_plate(plate, cells_x=40, cells_y=40)
    a, b = coarse.at(POINTS), fine.at(POINTS)
    assert np.abs(b - a).max() < 1e-3 * np.abs(b).max()
    # The supports carry the whole load: reaction = -traction x width.
    assert fine.bottom_reaction() == pytest.approx(-plate.traction * plate.width, rel=1e-10)
    # Softer layers compress more: the top moves down more than the 1D series estimate of
    # the stiffest layer alone and less than that of the softest.
    nu = plate.poisson
    top = -b[3, 1]
    assert (1 - nu**2) / max(plate.moduli) < top < (1 - nu**2) / min(plate.moduli)


def test_interfaces_must_increase():
    with pytest.raises(ValueError, match="increase"):
        LayeredPlate((1.0, 2.0), (1.5,))

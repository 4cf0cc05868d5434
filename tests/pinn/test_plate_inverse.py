"""2D plane strain: identification against scikit-fem ground truth, and the forward PINN."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skfem", reason="the 2D ground truth needs scikit-fem (extra 'pinn')")

from matforge.pinn.fem import LayeredPlate, solve_plate
from matforge.pinn.plate import (
    PlateLoading,
    PlateSettings,
    identify_plate,
    solve_plate_pinn,
)

# one cell of a laminate under a periodic load: rollers at x = 0, W and y = 0
PLATE = LayeredPlate(
    (1.0, 3.0, 0.5), (0.3, 0.65), width=2.0, height=1.0, load_variation=0.5, right_edge="roller"
)


# Fewer steps and points than the defaults keep the suite fast; the defaults (2000 + 500
# steps, 1000 points) do better still (benchmarks/pinn_inverse.py).
FAST = PlateSettings(adam_steps=1000, lbfgs_steps=300, collocation=500, resample_every=500)


@pytest.fixture(scope="module")
def fem():
    return solve_plate(PLATE)


# the same layers with a free edge at x = W and a uniform load: the interfaces meet the
# free edge in a stress singularity
FREE_EDGE = LayeredPlate((1.0, 3.0, 0.5), (0.3, 0.65), width=2.0, height=1.0)


@pytest.mark.slow
@pytest.mark.parametrize("plate", [PLATE, FREE_EDGE], ids=["laminate-cell", "free-edge"])
def test_identification_from_200_noise_free_fem_sensors(plate, fem):
    """Moduli within 3%, interfaces within 2% of the thickness."""
    solution = fem if plate is PLATE else solve_plate(plate)
    rng = np.random.default_rng(1)
    sensors = np.column_stack([rng.uniform(0, 2, 200), rng.uniform(0, 1, 200)])
    found = identify_plate(sensors, solution.at(sensors), PlateLoading.of(plate), settings=FAST)
    modulus_error = found.moduli / np.array(plate.moduli) - 1
    interface_error = (found.interfaces - np.array(plate.interfaces)) / plate.height
    assert np.abs(modulus_error).max() < 0.03, found.moduli
    assert np.abs(interface_error).max() < 0.02, found.interfaces
    assert found.history is not None
    assert set(found.history.terms) == {"data", "pde"}  # the free edge lies outside the PDE


@pytest.mark.slow
def test_forward_pinn_matches_the_finite_elements(fem):
    """The layers known, no data: the PINN's displacement field is within 1% relative L2
    of the FEM field on a 60 x 60 grid."""
    found = solve_plate_pinn(
        np.array(PLATE.moduli), np.array(PLATE.interfaces), PlateLoading.of(PLATE), FAST
    )
    grid = np.stack(
        np.meshgrid(np.linspace(0.01, 1.99, 60), np.linspace(0.01, 0.99, 60)), -1
    ).reshape(-1, 2)
    truth = fem.at(grid)
    error = np.linalg.norm(found.predict(grid) - truth) / np.linalg.norm(truth)
    assert error < 0.01, error


def test_loading_and_inputs_are_validated():
    with pytest.raises(ValueError, match="right_edge"):
        PlateLoading(right_edge="clamped")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="poisson"):
        PlateLoading(poisson=0.5)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        identify_plate(np.zeros((5, 2)), np.zeros((5, 3)), PlateLoading())
    with pytest.raises(ValueError, match="free_edge_margin"):
        PlateSettings(free_edge_margin=-0.1)
    with pytest.raises(ValueError, match="exceed"):
        identify_plate(
            np.full((5, 2), 0.5),
            np.ones((5, 2)),
            PlateLoading(),
            settings=PlateSettings(min_thickness=0.4, adam_steps=0, lbfgs_steps=0),
        )
    assert PlateLoading.of(PLATE).right_edge == "roller"


def test_interface_term_and_gradient_norm_weights_join_the_loss(fem):
    """A few steps only: the optional interface-continuity term is evaluated and the
    gradient-norm strategy moves the data and interface weights off their start values."""
    rng = np.random.default_rng(0)
    sensors = np.column_stack([rng.uniform(0, 2, 50), rng.uniform(0, 1, 50)])
    settings = PlateSettings(
        adam_steps=201,
        lbfgs_steps=0,
        collocation=200,
        interface_weight=1.0,
        weighting="gradient-norm",
        resample_every=100,
        candidates=1000,
    )
    found = identify_plate(sensors, fem.at(sensors), PlateLoading.of(PLATE), settings=settings)
    history = found.history
    assert set(history.terms) == {"data", "pde", "interface"}
    assert np.isfinite(history.terms["interface"]).all()
    assert history.weights["data"][-1] != pytest.approx(100.0)
    assert history.weights["interface"][-1] != pytest.approx(1.0)
    assert history.weights["pde"][-1] == 1.0

"""The volume-fraction projections: feasibility, equality with scipy's QP solution, and
backward passes equal to finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from matforge.core.errors import ConfigError
from matforge.microstructure.projection import (
    fraction_violation,
    project_fraction,
    project_phases,
    project_slices,
)


def _qp(y: np.ndarray, equalities: np.ndarray, targets: np.ndarray, upper: float | None):
    """min 0.5 |x - y|^2 s.t. A x = t, 0 <= x <= upper, by SLSQP (exact Hessian = I)."""
    constraints = {
        "type": "eq",
        "fun": lambda x: equalities @ x - targets,
        "jac": lambda x: equalities,
    }
    result = minimize(
        lambda x: 0.5 * np.sum((x - y) ** 2),
        np.clip(y, 0, upper if upper is not None else None),
        jac=lambda x: x - y,
        bounds=[(0.0, upper)] * y.size,
        constraints=[constraints],
        method="SLSQP",
        options={"ftol": 1e-16, "maxiter": 500},
    )
    # status 8 ("positive directional derivative for linesearch") is the SLSQP of scipy
    # < 1.16 (DoWhy in the test extra pins scipy <= 1.15.3) stopping at machine precision
    # under ftol=1e-16; accepted where x is feasible (its equality to the projection to
    # 1e-10 is what the tests check)
    feasible = np.abs(equalities @ result.x - targets).max() < 1e-12
    assert result.success or (result.status == 8 and feasible), result.message
    return result.x


@pytest.mark.parametrize("phi", [0.05, 0.35, 0.5, 0.93])
def test_two_phase_projection_equals_scipy_qp(phi):
    rng = np.random.default_rng(1)
    y = rng.normal(0.5, 0.6, size=(6, 7))
    x = project_fraction(torch.tensor(y), phi).numpy()
    reference = _qp(y.ravel(), np.ones((1, y.size)) / y.size, np.array([phi]), 1.0)
    assert np.abs(x.ravel() - reference).max() < 1e-10
    assert abs(x.mean() - phi) < 1e-14
    assert x.min() >= 0
    assert x.max() <= 1


def test_projection_batched_2d_3d_and_precisions():
    generator = torch.Generator().manual_seed(0)
    y2 = torch.randn(5, 64, 64, generator=generator, dtype=torch.float64) * 3
    phi = torch.tensor([0.2, 0.35, 0.5, 0.0, 1.0], dtype=torch.float64)
    x2 = project_fraction(y2, phi)
    assert fraction_violation(x2, phi).max() < 1e-12
    y3 = torch.randn(3, 32, 32, 32, generator=generator)  # float32
    x3 = project_fraction(y3, 0.35, spatial_dims=3)
    assert x3.dtype == torch.float32
    assert fraction_violation(x3.double(), 0.35, spatial_dims=3).max() < 1e-6
    assert float(x3.min()) >= 0
    assert float(x3.max()) <= 1
    # already feasible fields are fixed points
    assert torch.allclose(project_fraction(x2, phi), x2, atol=1e-13)


def test_projection_backward_equals_finite_differences():
    generator = torch.Generator().manual_seed(3)
    y = torch.randn(2, 5, 6, generator=generator, dtype=torch.float64, requires_grad=True)
    phi = torch.tensor([0.3, 0.6], dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, 5, 6, generator=generator, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda a, b: (project_fraction(a, b) * weights).sum(), (y, phi), eps=1e-7, atol=1e-7
    )


def test_slices_each_get_their_fraction():
    generator = torch.Generator().manual_seed(4)
    y = torch.randn(2, 16, 8, generator=generator, dtype=torch.float64, requires_grad=True)
    phi = torch.linspace(0.2, 0.6, 8, dtype=torch.float64)
    x = project_slices(y, phi, axis=-1)
    assert torch.allclose(x.mean(dim=1), phi.expand(2, 8), atol=1e-13)
    for column in range(8):  # the slice is exactly the two-phase projection of that slice
        assert torch.allclose(
            x[:, :, column], project_fraction(y[:, :, column], phi[column], spatial_dims=1)
        )
    assert torch.autograd.gradcheck(lambda a: project_slices(a, phi, axis=-1).pow(3).sum(), (y,))


def test_three_phase_projection_equals_scipy_qp_and_backward():
    rng = np.random.default_rng(2)
    fractions = np.array([0.5, 0.3, 0.2])
    y = rng.normal(0.3, 0.5, size=(3, 4, 5))  # (K, H, W)
    x = project_phases(torch.tensor(y), fractions).numpy()
    voxels = 20
    rows = np.zeros((voxels + 2, y.size))  # the third total follows from the others
    flat_index = np.arange(y.size).reshape(3, voxels)
    for v in range(voxels):
        rows[v, flat_index[:, v]] = 1.0
    for k in range(2):
        rows[voxels + k, flat_index[k]] = 1.0 / voxels
    targets = np.concatenate([np.ones(voxels), fractions[:2]])
    reference = _qp(y.ravel(), rows, targets, None).reshape(3, 4, 5)
    assert np.abs(x - reference).max() < 1e-10
    assert np.allclose(x.sum(axis=0), 1.0, atol=1e-13)
    assert np.allclose(x.reshape(3, -1).mean(axis=1), fractions, atol=1e-13)
    weights = torch.tensor(rng.normal(size=y.shape))
    tensor = torch.tensor(y, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a: (project_phases(a, fractions) * weights).sum(), (tensor,), eps=1e-7, atol=1e-7
    )


def test_bad_fractions_are_named():
    with pytest.raises(ConfigError, match="volume fraction"):
        project_fraction(torch.zeros(2, 4, 4), 1.5)
    with pytest.raises(ConfigError, match="sum"):
        project_phases(torch.zeros(3, 4, 4), [0.5, 0.4, 0.2])

"""The FFT-preconditioned homogenization solver: laminates exact, random media inside the
Hashin-Shtrikman bounds, equal to a sparse direct finite-volume solve, gradients equal to
finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from matforge.core.errors import ConfigError
from matforge.microstructure.homogenization import (
    effective_conductivity,
    hashin_shtrikman_bounds,
    mixture_conductivity,
)
from matforge.microstructure.sources import gaussian_random_field


def test_laminates_are_exact_in_2d_and_3d():
    k = torch.ones(1, 10, 7, dtype=torch.float64)
    k[:, 2:6, :] = 25.0  # layers normal to axis 0: in series along 0, in parallel along 1
    tensor = effective_conductivity(k).tensor[0]
    series = 1 / (0.4 / 25 + 0.6 / 1)
    parallel = 0.4 * 25 + 0.6
    assert torch.allclose(
        tensor,
        torch.tensor([[series, 0], [0, parallel]], dtype=torch.float64),
        rtol=1e-9,
        atol=1e-12,
    )
    k3 = torch.full((1, 6, 5, 4), 2.0, dtype=torch.float64)
    k3[:, :, :, :1] = 0.5
    diagonal = effective_conductivity(k3, spatial_dims=3).tensor[0].diagonal()
    expected = torch.tensor(
        [0.75 * 2 + 0.25 * 0.5, 0.75 * 2 + 0.25 * 0.5, 1 / (0.75 / 2 + 0.25 / 0.5)],
        dtype=torch.float64,
    )
    assert torch.allclose(diagonal, expected, rtol=1e-9)


@pytest.mark.parametrize("phi", [0.2, 0.5])
def test_random_media_lie_within_hashin_shtrikman_bounds(phi):
    x = gaussian_random_field(6, (48, 48), phi, 2.5, generator=torch.Generator().manual_seed(1))
    result = effective_conductivity(mixture_conductivity(x, (1.0, 20.0)))
    assert result.converged
    isotropic = result.tensor.diagonal(dim1=-2, dim2=-1).mean(-1)
    lower, upper = hashin_shtrikman_bounds(phi, (1.0, 20.0))
    assert (isotropic > lower).all()
    assert (isotropic < upper).all()
    # a wrong solver (the arithmetic or harmonic mean) would not lie strictly inside
    assert lower > 1 / (phi / 20 + (1 - phi))
    assert upper < phi * 20 + (1 - phi)


def _direct_finite_volume(k: np.ndarray) -> np.ndarray:
    """Sparse LU of the same finite-volume equations (harmonic face means, periodic)."""
    n0, n1 = k.shape
    size = n0 * n1
    index = np.arange(size).reshape(n0, n1)
    tensor = np.zeros((2, 2))
    for load in range(2):
        rows, cols, vals = [], [], []
        rhs = np.zeros(size)
        faces = []
        for axis in range(2):
            neighbour = np.roll(k, -1, axis=axis)
            kf = 2 * k * neighbour / (k + neighbour)
            right = np.roll(index, -1, axis=axis)
            faces.append(kf)
            for a, b, w in zip(index.ravel(), right.ravel(), kf.ravel(), strict=True):
                rows += [a, a, b, b]
                cols += [a, b, b, a]
                vals += [w, -w, w, -w]
                if axis == load:  # flux k_f (E + phi_b - phi_a) leaves a, enters b
                    rhs[a] += w
                    rhs[b] -= w
        matrix = sp.csr_matrix((vals, (rows, cols)), shape=(size, size)).tolil()
        matrix[0, :] = 0
        matrix[0, 0] = 1  # pin phi at one voxel (periodic potentials are defined up to a constant)
        rhs[0] = 0
        phi = spla.spsolve(matrix.tocsr(), rhs).reshape(n0, n1)
        for axis in range(2):
            gradient = np.roll(phi, -1, axis=axis) - phi + (axis == load)
            tensor[axis, load] = np.mean(faces[axis] * gradient)
    return tensor


def test_equals_sparse_direct_finite_volume_solve():
    rng = np.random.default_rng(0)
    k = np.exp(rng.normal(size=(12, 9)) * 1.5)
    fft = effective_conductivity(torch.tensor(k)[None]).tensor[0].numpy()
    direct = _direct_finite_volume(k)
    assert np.abs(fft - direct).max() / np.abs(direct).max() < 1e-8


def test_gradient_is_envelope_theorem_and_matches_finite_differences():
    generator = torch.Generator().manual_seed(2)
    k = torch.exp(torch.randn(1, 5, 4, generator=generator, dtype=torch.float64)).requires_grad_()
    weights = torch.randn(1, 2, 2, generator=generator, dtype=torch.float64)

    def objective(field: torch.Tensor) -> torch.Tensor:
        return (effective_conductivity(field, tolerance=1e-13).tensor * weights).sum()

    assert torch.autograd.gradcheck(objective, (k,), eps=1e-6, atol=1e-7)


def test_non_convergence_is_reported_and_bad_input_named():
    x = gaussian_random_field(2, (32, 32), 0.35, 2.0, generator=torch.Generator().manual_seed(3))
    result = effective_conductivity(mixture_conductivity(x, (1e-3, 1.0)), max_iterations=3)
    assert not result.converged
    assert result.residual > 1e-10
    with pytest.raises(ConfigError, match="positive"):
        effective_conductivity(torch.zeros(1, 4, 4))

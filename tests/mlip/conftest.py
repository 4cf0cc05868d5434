"""Fixtures of the mlip tests."""

from __future__ import annotations

import pytest
import torch

from matforge.mlip.potential import LinearModel, Potential
from matforge.mlip.snap import Bispectrum, SnapParameters
from matforge.mlip.zbl import ZBL

RADIUS = {"Ta": 0.5, "W": 0.45}
WEIGHT = {"Ta": 1.0, "W": 0.8}
CHARGE = {"Ta": 73.0, "W": 74.0}


def random_snap(
    elements=("Ta",), twojmax=4, seed=0, *, zbl=(2.0, 2.9), scale=0.01, **options
) -> Potential:
    """A SNAP with random coefficients (+ ZBL unless zbl=None); options go to SnapParameters."""
    parameters = SnapParameters(
        twojmax,
        4.7,
        {e: RADIUS[e] for e in elements},
        {e: WEIGHT[e] for e in elements},
        **options,
    )
    descriptor = Bispectrum(parameters)
    model = LinearModel(len(elements), descriptor.n_features)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.coefficients.copy_(
            scale * torch.randn(model.coefficients.shape, generator=g, dtype=torch.float64)
        )
    reference = None
    if zbl is not None:
        reference = ZBL({e: CHARGE[e] for e in elements}, *zbl)
    return Potential(descriptor, model, reference)


@pytest.fixture(scope="session")
def snap_factory():
    return random_snap

"""Fixtures of the mlip tests."""

from __future__ import annotations

import numpy as np
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


@pytest.fixture(scope="session")
def ta_fitsnap(shared_data):
    """FitSNAP's Ta set (2J = 6, its snapparam) and matforge's linear system of it, built
    once for the session: the design-matrix and the coefficient tests share it (the
    descriptors of all 363 configurations take about a minute on 2 cores)."""
    from matforge.mlip.data import read_fitsnap_groups
    from matforge.mlip.lammps_files import read_snapcoeff, read_snapparam
    from matforge.mlip.linear import assemble
    from matforge.mlip.snap import Bispectrum

    root = shared_data / "mlip" / "Ta_JCP2014"
    if not root.is_dir():
        pytest.skip(f"FitSNAP's Ta data set is absent from {root}")
    output = root / "20May21_Standard"
    radius, weight, coefficients = read_snapcoeff(output / "Ta_pot.snapcoeff")
    parameters = read_snapparam(output / "Ta_pot.snapparam", radius, weight)
    structures = read_fitsnap_groups(root / "JSON")
    potential = Potential(Bispectrum(parameters), LinearModel(1, 30), ZBL({"Ta": 73.0}, 4.0, 4.8))
    return {
        "structures": structures,
        "parameters": parameters,
        "system": assemble(potential, structures),
        "coefficients": coefficients["Ta"],
        "metrics": output / "Ta_metrics.md",
        "descriptors": np.load(output / "Descriptors.npy"),
    }

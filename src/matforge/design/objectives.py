"""Objectives a `CallableOracle` can point at from a config (`module:function`).

Each takes compositions x (n, d) and the design's element symbols, returns (n,) values.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from matforge.core.elements import property_vector


def density(x: torch.Tensor, elements: Sequence[str]) -> torch.Tensor:
    """Rule-of-mixtures density (g/cm^3): the alloy's molar mass over the sum of the
    elements' molar volumes (ideal mixing of volumes), element data from mendeleev."""
    mass = torch.tensor(property_vector(elements, "atomic_mass"), dtype=torch.float64)
    rho = torch.tensor(property_vector(elements, "density"), dtype=torch.float64)
    x = torch.as_tensor(x, dtype=torch.float64)
    x = x / x.sum(-1, keepdim=True)
    return (x * mass).sum(-1) / (x * mass / rho).sum(-1)


def negative_density(x: torch.Tensor, elements: Sequence[str]) -> torch.Tensor:
    """-density, so that maximizing it finds the lightest alloy."""
    return -density(x, elements)

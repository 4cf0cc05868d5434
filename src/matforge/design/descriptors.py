"""Composition descriptors of high-entropy-alloy phase and strength rules, in torch.

* delta: atomic size mismatch, 100 sqrt(sum c_i (1 - r_i / r_mean)^2), metallic radii (CN 12)
  (Y. Zhang et al., Adv. Eng. Mater. 10 (2008) 534);
* vec: valence electron concentration sum c_i VEC_i (S. Guo et al., J. Appl. Phys. 109
  (2011) 103505);
* electronegativity_difference: sqrt(sum c_i (chi_i - chi_mean)^2), Pauling scale
  (S. Fang et al., J. Non-Cryst. Solids 321 (2003) 120).

* mixing_enthalpy: the regular-solution estimate sum_{i<j} 4 dH_ij c_i c_j (kJ/mol) with
  dH_ij the equiatomic binary enthalpy of Miedema's model, as A. Takeuchi and A. Inoue
  tabulate it (Mater. Trans. 46 (2005) 2817): dH_ij = c_i c^s_j dH(i in j) at c = 1/2, with
  dH(i in j) = V_i^(2/3) / <n_ws^(-1/3)> (-P dphi*^2 + Q dn_ws^(1/3)^2), P = 14.1,
  Q/P = 9.4, surface fractions c^s from V^(2/3) (F. R. de Boer et al., Cohesion in Metals,
  1988). Miedema's parameters phi*, n_ws and V come from mendeleev. Only for transition
  metals (groups 3-11): pairs with a p-block metal such as Al need the hybridization term
  R, whose element parameters mendeleev does not carry, so they are refused by name.

Element data come from `matforge.core.elements` (mendeleev).

`DescriptorFeatures` is a BoTorch input transform: a model fitted on compositions sees
[composition, descriptors], and acquisition functions still take plain compositions.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from botorch.models.transforms.input import InputTransform

from matforge.core.elements import property_vector
from matforge.core.errors import ConfigError

DESCRIPTORS = ("delta", "vec", "electronegativity_difference", "mixing_enthalpy")
#: Defined for every element with a metallic radius and electronegativity.
DEFAULT_DESCRIPTORS = DESCRIPTORS[:3]

#: Miedema constants for two transition metals (de Boer et al. 1988).
MIEDEMA_P = 14.1
MIEDEMA_Q_OVER_P = 9.4


@functools.cache
def _mendeleev_elements():  # type: ignore[no-untyped-def]
    from mendeleev.fetch import fetch_table

    return fetch_table("elements").set_index("symbol")


def miedema_parameters(elements: Sequence[str]) -> torch.Tensor:
    """(E, 3): phi* (V), n_ws^(1/3) (d.u.^(1/3)), V^(2/3) (cm^2) of transition metals."""
    rows = _mendeleev_elements().loc[list(elements)]
    outside = [
        e
        for e, block, group in zip(elements, rows["block"], rows["group_id"], strict=True)
        if block != "d" or not 3 <= float(group) <= 11
    ]
    if outside:
        raise ConfigError(
            f"mixing_enthalpy covers transition metals (groups 3-11) only, not {outside}: "
            "Miedema's hybridization term for p-block partners is not available"
        )
    values = rows[["en_miedema", "miedema_electron_density", "miedema_molar_volume"]]
    data = torch.tensor(values.to_numpy(dtype=float), dtype=torch.float64)
    # mendeleev stores n_ws and the molar volume V; the model uses n_ws^(1/3) and V^(2/3).
    return torch.stack([data[:, 0], data[:, 1] ** (1 / 3), data[:, 2] ** (2 / 3)], dim=1)


def binary_mixing_enthalpies(elements: Sequence[str]) -> torch.Tensor:
    """(E, E) equiatomic Miedema enthalpies dH_ij (kJ/mol), zero diagonal."""
    phi, n13, v23 = miedema_parameters(elements).unbind(dim=1)
    mean_inverse_density = 0.5 * (1 / n13[:, None] + 1 / n13[None, :])
    bracket = MIEDEMA_P * (
        -((phi[:, None] - phi[None, :]) ** 2)
        + MIEDEMA_Q_OVER_P * (n13[:, None] - n13[None, :]) ** 2
    )
    solution = v23[:, None] / mean_inverse_density * bracket  # i dissolved in j
    surface_j = v23[None, :] / (v23[:, None] + v23[None, :])
    return 0.5 * surface_j * solution


@functools.lru_cache(maxsize=64)
def _element_constants(elements: tuple[str, ...], name: str) -> torch.Tensor:
    """The per-element vector (or, for the mixing enthalpy, pair matrix) a descriptor
    needs, built once per element tuple: a surrogate evaluates descriptors at every step
    of its hyperparameter fit."""
    if name == "delta":
        return torch.tensor(property_vector(elements, "metallic_radius"), dtype=torch.float64)
    if name == "vec":
        return torch.tensor(property_vector(elements, "vec"), dtype=torch.float64)
    if name == "mixing_enthalpy":
        return 4 * binary_mixing_enthalpies(elements)
    return torch.tensor(property_vector(elements, "electronegativity"), dtype=torch.float64)


def _normalized(x: torch.Tensor) -> torch.Tensor:
    return x / x.sum(dim=-1, keepdim=True)


def descriptor_matrix(
    x: torch.Tensor, elements: Sequence[str], names: Sequence[str] = DEFAULT_DESCRIPTORS
) -> torch.Tensor:
    """Descriptors `names` of compositions x (..., len(elements)) -> (..., len(names))."""
    unknown = [n for n in names if n not in DESCRIPTORS]
    if unknown:
        raise ConfigError(f"unknown descriptor(s) {unknown}; available: {list(DESCRIPTORS)}")
    c = _normalized(x)
    columns = []
    for name in names:
        constants = _element_constants(tuple(elements), name).to(dtype=x.dtype, device=x.device)
        if name == "delta":
            mean = (c * constants).sum(-1, keepdim=True)
            columns.append(100 * ((c * (1 - constants / mean) ** 2).sum(-1) + 1e-30).sqrt())
        elif name == "vec":
            columns.append((c * constants).sum(-1))
        elif name == "mixing_enthalpy":
            columns.append(0.5 * torch.einsum("...i,ij,...j->...", c, constants, c))
        else:
            chi = constants
            mean = (c * chi).sum(-1, keepdim=True)
            columns.append(((c * (chi - mean) ** 2).sum(-1) + 1e-30).sqrt())
    return torch.stack(columns, dim=-1)


class DescriptorFeatures(InputTransform, torch.nn.Module):
    """Appends descriptors to compositions: (..., d) -> (..., d + len(names))."""

    def __init__(self, elements: Sequence[str], names: Sequence[str] = DEFAULT_DESCRIPTORS) -> None:
        super().__init__()
        self.elements = tuple(elements)
        self.names = tuple(names)
        descriptor_matrix(torch.full((1, len(self.elements)), 1.0), self.elements, self.names)
        self.transform_on_train = True
        self.transform_on_eval = True
        self.transform_on_fantasize = True

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # noqa: N803 (BoTorch's name)
        return torch.cat([X, descriptor_matrix(X, self.elements, self.names)], dim=-1)

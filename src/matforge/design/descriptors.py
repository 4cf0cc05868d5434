"""Composition descriptors of high-entropy-alloy phase and strength rules, in torch.

* delta: atomic size mismatch, 100 sqrt(sum c_i (1 - r_i / r_mean)^2), metallic radii (CN 12)
  (Y. Zhang et al., Adv. Eng. Mater. 10 (2008) 534);
* vec: valence electron concentration sum c_i VEC_i (S. Guo et al., J. Appl. Phys. 109
  (2011) 103505);
* electronegativity_difference: sqrt(sum c_i (chi_i - chi_mean)^2), Pauling scale
  (S. Fang et al., J. Non-Cryst. Solids 321 (2003) 120).

Element data come from `matforge.core.elements` (mendeleev). The mixing enthalpy of the
issue's list is not here yet: it needs Miedema's binary enthalpies (Takeuchi and Inoue's
table), which mendeleev does not carry.

`DescriptorFeatures` is a BoTorch input transform: a model fitted on compositions sees
[composition, descriptors], and acquisition functions still take plain compositions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from botorch.models.transforms.input import InputTransform

from matforge.core.elements import property_vector
from matforge.core.errors import ConfigError

DESCRIPTORS = ("delta", "vec", "electronegativity_difference")


def _normalized(x: torch.Tensor) -> torch.Tensor:
    return x / x.sum(dim=-1, keepdim=True)


def descriptor_matrix(
    x: torch.Tensor, elements: Sequence[str], names: Sequence[str] = DESCRIPTORS
) -> torch.Tensor:
    """Descriptors `names` of compositions x (..., len(elements)) -> (..., len(names))."""
    unknown = [n for n in names if n not in DESCRIPTORS]
    if unknown:
        raise ConfigError(f"unknown descriptor(s) {unknown}; available: {list(DESCRIPTORS)}")
    c = _normalized(x)
    columns = []
    for name in names:
        if name == "delta":
            r = torch.tensor(property_vector(elements, "metallic_radius"), dtype=x.dtype)
            mean = (c * r).sum(-1, keepdim=True)
            columns.append(100 * ((c * (1 - r / mean) ** 2).sum(-1) + 1e-30).sqrt())
        elif name == "vec":
            v = torch.tensor(property_vector(elements, "vec"), dtype=x.dtype)
            columns.append((c * v).sum(-1))
        else:
            chi = torch.tensor(property_vector(elements, "electronegativity"), dtype=x.dtype)
            mean = (c * chi).sum(-1, keepdim=True)
            columns.append(((c * (chi - mean) ** 2).sum(-1) + 1e-30).sqrt())
    return torch.stack(columns, dim=-1)


class DescriptorFeatures(InputTransform, torch.nn.Module):
    """Appends descriptors to compositions: (..., d) -> (..., d + len(names))."""

    def __init__(self, elements: Sequence[str], names: Sequence[str] = DESCRIPTORS) -> None:
        super().__init__()
        self.elements = tuple(elements)
        self.names = tuple(names)
        descriptor_matrix(torch.full((1, len(self.elements)), 1.0), self.elements, self.names)
        self.transform_on_train = True
        self.transform_on_eval = True
        self.transform_on_fantasize = True

    def transform(self, X: torch.Tensor) -> torch.Tensor:  # noqa: N803 (BoTorch's name)
        return torch.cat([X, descriptor_matrix(X, self.elements, self.names)], dim=-1)

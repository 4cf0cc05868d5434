"""Compositions as padded sets of (element, fraction) pairs, and element embeddings.

`batch_compositions` turns `Composition`s into a `CompositionBatch`: element indices
(atomic number Z; 0 pads) and fractions (0 pads), one row per composition, columns in the
composition's own order. Elements with zero fraction are dropped, so "FeNi" and
"FeNiCo0" give the same set. Set encoders use `mask` (fraction > 0) and never see padding.

`ElementEmbedding` maps Z to a vector: ``"properties"`` is a learned linear map of the
element's standardized properties from `matforge.core.elements` (metallic and covalent
radius, Pauling electronegativity, valence electron count, melting point, density,
atomic mass and number, group, period; a missing value is 0 after standardization plus a
missing-flag column), so an element unseen in training still has a meaningful vector;
``"learned"`` is a free vector per element (nn.Embedding); ``"both"`` sums the two.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from matforge.core.composition import Composition
from matforge.core.errors import ConfigError

__all__ = ["CompositionBatch", "ElementEmbedding", "batch_compositions", "element_features"]

MAX_Z = 118
EmbeddingKind = Literal["properties", "learned", "both"]


@dataclass
class CompositionBatch:
    elements: torch.Tensor  # (n, k) long, atomic numbers, 0 = padding
    fractions: torch.Tensor  # (n, k) float, 0 = padding

    @property
    def mask(self) -> torch.Tensor:
        return self.fractions > 0

    def __len__(self) -> int:
        return self.elements.shape[0]

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> CompositionBatch:
        fractions = self.fractions.to(device=device, dtype=dtype or self.fractions.dtype)
        return CompositionBatch(self.elements.to(device), fractions)

    def __getitem__(self, index: torch.Tensor | slice) -> CompositionBatch:
        elements, fractions = self.elements[index], self.fractions[index]
        width = int((fractions > 0).sum(1).max()) if len(fractions) else 1
        return CompositionBatch(elements[:, :width], fractions[:, :width])


@functools.cache
def _atomic_numbers() -> dict[str, int]:
    from matforge.core.elements import element_table

    return {s: int(z) for s, z in element_table()["atomic_number"].items()}


def batch_compositions(compositions: Sequence[Composition]) -> CompositionBatch:
    numbers = _atomic_numbers()
    width = max((sum(1 for v in c.fractions.values() if v > 0) for c in compositions), default=1)
    elements = np.zeros((len(compositions), max(width, 1)), dtype=np.int64)
    fractions = np.zeros((len(compositions), max(width, 1)), dtype=np.float64)
    for row, composition in enumerate(compositions):
        column = 0
        for symbol, fraction in composition.fractions.items():
            if fraction <= 0:
                continue
            elements[row, column] = numbers[symbol]
            fractions[row, column] = fraction
            column += 1
    return CompositionBatch(torch.from_numpy(elements), torch.from_numpy(fractions))


@functools.cache
def element_features() -> torch.Tensor:
    """(MAX_Z + 1, features) standardized element properties; row 0 (padding) is zero."""
    from matforge.core.elements import PROPERTIES, element_table

    table = element_table().set_index("atomic_number", drop=False).reindex(range(1, MAX_Z + 1))
    values = table[list(PROPERTIES)].to_numpy(dtype=float)
    missing = np.isnan(values)
    mean = np.nanmean(values, axis=0)
    std = np.nanstd(values, axis=0)
    standardized = np.where(missing, 0.0, (values - mean) / np.where(std > 0, std, 1.0))
    features = np.concatenate([standardized, missing.astype(float)], axis=1)
    return torch.from_numpy(np.vstack([np.zeros(features.shape[1]), features]))


class ElementEmbedding(nn.Module):
    def __init__(self, size: int, kind: EmbeddingKind = "properties") -> None:
        super().__init__()
        if kind not in ("properties", "learned", "both"):
            raise ConfigError(f"embedding must be properties, learned or both, got {kind!r}")
        self.kind = kind
        features = element_features().float()
        self.register_buffer("features", features, persistent=False)
        self.project = nn.Linear(features.shape[1], size) if kind != "learned" else None
        self.table = nn.Embedding(MAX_Z + 1, size, padding_idx=0) if kind != "properties" else None

    def forward(self, elements: torch.Tensor) -> torch.Tensor:
        out = 0
        if self.project is not None:
            out = self.project(self.features.to(self.project.weight.dtype)[elements])
        if self.table is not None:
            out = out + self.table(elements)
        return out

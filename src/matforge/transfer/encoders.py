"""Permutation-invariant encoders of a composition, a set of (element, fraction) pairs.

Both map a `CompositionBatch` to one vector per composition and are exactly invariant to
the order of the elements, and to zero-fraction elements (masked out; `featurize` drops
them too), so quinary and senary alloys go through the same network.

- `DeepSetsEncoder` (Zaheer et al. 2017): rho of two pooled sums of per-element features
  phi(e_i, enc(f_i)): weighted by the fractions, and the plain mean over the elements.
- `AttentionEncoder`: each element's embedding plus a fractional encoding of its amount
  (CrabNet, Wang et al. 2021: sinusoids of the fraction on a linear and a log scale),
  transformer self-attention among the elements of a composition, then Roost's weighted
  attention pooling (Goodall & Lee 2020): a_i = f_i^p exp(g_i) / sum_j f_j^p exp(g_j)
  with a learned exponent p,
  out = sum_i a_i m(x_i).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from matforge.transfer.featurize import CompositionBatch, ElementEmbedding, EmbeddingKind

__all__ = ["AttentionEncoder", "DeepSetsEncoder", "FractionalEncoding", "SetEncoder"]


class FractionalEncoding(nn.Module):
    """Sinusoidal encoding of a fraction in (0, 1] on a linear and a log scale (CrabNet's
    scales: x and min(1, 0.0025 log2(x)^2), each times a resolution, against frequencies
    50^(-2i / (size / 2))). CrabNet's resolution is 5000; a lower one gives smoother
    features (on steels_yield, 500 had the lower validation MAE: see the README)."""

    def __init__(self, size: int, resolution: float = 5000.0) -> None:
        super().__init__()
        half = size // 2  # half for the linear scale, half for the log scale
        steps = torch.arange(0, half, 2, dtype=torch.float64)
        frequencies = torch.exp(steps * (-math.log(50.0) / max(half, 1)))
        self.register_buffer("frequencies", frequencies, persistent=False)
        self.size = size
        self.resolution = resolution

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        angles = x.unsqueeze(-1) * self.resolution * self.frequencies.to(x.dtype)
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)

    def forward(self, fractions: torch.Tensor) -> torch.Tensor:
        safe = fractions.clamp(min=1e-6)
        linear = self._encode(safe)
        logarithmic = self._encode((0.0025 * torch.log2(safe) ** 2).clamp(max=1.0))
        out = torch.cat([linear, logarithmic], dim=-1)
        return nn.functional.pad(out, (0, self.size - out.shape[-1]))


class SetEncoder(nn.Module):
    """Base: `embedding` maps Z to vectors; `forward(batch)` -> (n, output_size)."""

    output_size: int

    def __init__(self, size: int, embedding: EmbeddingKind, resolution: float = 5000.0) -> None:
        super().__init__()
        self.embedding = ElementEmbedding(size, embedding)
        self.fractional = FractionalEncoding(size, resolution)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.SiLU()]
    return nn.Sequential(*layers[:-1])


class DeepSetsEncoder(SetEncoder):
    def __init__(
        self,
        size: int = 64,
        depth: int = 2,
        embedding: EmbeddingKind = "properties",
        resolution: float = 5000.0,
    ):
        super().__init__(size, embedding, resolution)
        self.phi = _mlp([2 * size] + [size] * depth)
        self.rho = _mlp([2 * size] + [size] * depth)
        self.output_size = size

    def forward(self, batch: CompositionBatch) -> torch.Tensor:
        fractions = batch.fractions.to(self.phi[0].weight.dtype)
        mask = batch.mask.unsqueeze(-1).to(fractions.dtype)
        features = torch.cat([self.embedding(batch.elements), self.fractional(fractions)], dim=-1)
        per_element = self.phi(features) * mask
        # the fraction-weighted sum (the alloy's average) and the plain mean over its
        # elements (so that a minor element, 0.1% carbon in a steel, is not weighted away)
        weighted = (per_element * fractions.unsqueeze(-1)).sum(dim=1)
        plain = per_element.sum(dim=1) / mask.sum(dim=1)
        return self.rho(torch.cat([weighted, plain], dim=-1))


class AttentionEncoder(SetEncoder):
    def __init__(
        self,
        size: int = 64,
        layers: int = 2,
        heads: int = 4,
        embedding: EmbeddingKind = "properties",
        dropout: float = 0.0,
        resolution: float = 5000.0,
    ) -> None:
        super().__init__(size, embedding, resolution)
        layer = nn.TransformerEncoderLayer(
            size, heads, dim_feedforward=2 * size, dropout=dropout, batch_first=True
        )
        self.attention = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.gate = nn.Linear(size, 1)
        self.power = nn.Parameter(torch.ones(()))  # Roost's learnable exponent of f_i
        self.message = _mlp([size, size, size])
        self.output_size = size

    def forward(self, batch: CompositionBatch) -> torch.Tensor:
        dtype = self.gate.weight.dtype
        fractions = batch.fractions.to(dtype)
        mask = batch.mask
        x = self.embedding(batch.elements) + self.fractional(fractions)
        x = self.attention(x, src_key_padding_mask=~mask)
        # Roost's weighted softmax: fraction-weighted, padding excluded
        logits = self.gate(x).squeeze(-1).masked_fill(~mask, float("-inf"))
        logits = logits - logits.max(dim=1, keepdim=True).values
        weights = fractions.clamp(min=1e-12) ** self.power * torch.exp(logits)
        weights = weights.masked_fill(~mask, 0.0)
        weights = weights / weights.sum(dim=1, keepdim=True)
        return (weights.unsqueeze(-1) * self.message(x)).sum(dim=1)

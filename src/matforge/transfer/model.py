"""A composition regressor: set encoder + head, with the target's scaling kept inside.

`ModelSpec` is everything needed to rebuild a model (saved with its weights);
`SetRegressor.forward` returns standardized predictions (what is trained),
`predict` the target in its own units.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn

from matforge.core.errors import ConfigError
from matforge.transfer.encoders import AttentionEncoder, DeepSetsEncoder, SetEncoder
from matforge.transfer.featurize import CompositionBatch, EmbeddingKind

__all__ = ["ModelSpec", "SetRegressor"]


@dataclass(frozen=True)
class ModelSpec:
    encoder: Literal["deepsets", "attention"] = "deepsets"
    size: int = 64
    depth: int = 2  # Deep Sets: layers of phi and rho; attention: transformer layers
    heads: int = 4
    embedding: EmbeddingKind = "properties"
    head: tuple[int, ...] = (64,)
    fraction_resolution: float = 5000.0  # CrabNet's; see FractionalEncoding

    def __post_init__(self) -> None:
        if self.encoder not in ("deepsets", "attention"):
            raise ConfigError(f"encoder must be deepsets or attention, got {self.encoder!r}")
        if self.size < 2 or self.depth < 1 or self.heads < 1 or self.size % self.heads:
            raise ConfigError("size >= 2, depth >= 1, and size divisible by heads are needed")
        if not self.fraction_resolution > 0:
            raise ConfigError(f"fraction_resolution must be > 0, got {self.fraction_resolution}")

    def build_encoder(self) -> SetEncoder:
        if self.encoder == "deepsets":
            return DeepSetsEncoder(
                self.size, self.depth, self.embedding, resolution=self.fraction_resolution
            )
        return AttentionEncoder(
            self.size, self.depth, self.heads, self.embedding, resolution=self.fraction_resolution
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "head": list(self.head)}


def _head(inputs: int, hidden: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [nn.Linear(inputs, size), nn.SiLU()]
        inputs = size
    layers.append(nn.Linear(inputs, 1))
    return nn.Sequential(*layers)


class SetRegressor(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.encoder = spec.build_encoder()
        self.head = _head(self.encoder.output_size, spec.head)
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_scale", torch.ones(()))

    def forward(self, batch: CompositionBatch) -> torch.Tensor:
        return self.head(self.encoder(batch)).squeeze(-1)

    def set_target_scaling(self, targets: torch.Tensor) -> None:
        self.target_mean.fill_(float(targets.mean()))
        scale = float(targets.std()) if len(targets) > 1 else 1.0
        self.target_scale.fill_(scale if scale > 0 else 1.0)

    def standardize(self, targets: torch.Tensor) -> torch.Tensor:
        return (targets - self.target_mean) / self.target_scale

    @torch.no_grad()
    def predict(self, batch: CompositionBatch, chunk: int = 4096) -> torch.Tensor:
        was_training = self.training
        self.eval()
        device = self.target_mean.device
        parts = [
            self(batch[start : start + chunk].to(device)) for start in range(0, len(batch), chunk)
        ]
        self.train(was_training)
        return torch.cat(parts) * self.target_scale + self.target_mean

    def with_new_head(self, seed: int) -> SetRegressor:
        """A copy with the encoder's weights and a freshly initialized head."""
        torch.manual_seed(seed)
        model = copy.deepcopy(self)
        model.head = _head(model.encoder.output_size, self.spec.head).to(self.target_mean.device)
        return model

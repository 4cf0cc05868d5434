"""Conditional generators of microstructures whose last layer enforces the volume fraction.

`Decoder` maps a latent field z and a condition c = (phi, length scale) to a field in
[0, 1]: convolutions and transposed convolutions -> logits -> sigmoid -> `OutputConstraint`. With
``constraint="projection"`` the last step is the exact projection onto {mean = phi}, so
every sample meets its fraction to rounding; with ``"penalty"`` it is left out and the
training loss carries a penalty on (mean - phi)^2 instead (the usual soft approach, kept
for comparison). `ConditionalVAE` pairs a decoder with a convolutional encoder;
`Critic` is the Wasserstein critic of the WGAN-GP. 2D (64 x 64 and other powers of two)
and 3D (32^3) share the code through the `dims` argument.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from matforge.core.errors import ConfigError
from matforge.microstructure.projection import project_fraction

Constraint = Literal["projection", "penalty"]

__all__ = ["ConditionalVAE", "Constraint", "Critic", "Decoder", "Encoder", "LatentEncoder"]

CONDITIONS = 2  # (phi, length scale / size)


def _layers(size: int, dims: int) -> int:
    steps = int(math.log2(size)) - 2  # down to 4 voxels per side
    if 2 ** (steps + 2) != size or steps < 1:
        raise ConfigError(f"microstructure size {size} must be a power of two >= 8")
    if dims not in (2, 3):
        raise ConfigError(f"dims must be 2 or 3, got {dims}")
    return steps


def _conv(dims: int):
    return nn.Conv2d if dims == 2 else nn.Conv3d


LATENT_STRIDE = 4  # the latent code is a field on a grid 4x coarser than the output


def latent_shape(size: int, dims: int, channels: int) -> tuple[int, ...]:
    return (channels, *([size // LATENT_STRIDE] * dims))


def _planes(condition: torch.Tensor, like: torch.Tensor, dims: int) -> torch.Tensor:
    """Condition values broadcast to constant channels of `like`'s spatial shape."""
    shape = like.shape[-dims:]
    return condition.reshape(*condition.shape, *([1] * dims)).expand(-1, -1, *shape)


class Decoder(nn.Module):
    """(z, c) -> field (n, *[size] * dims) in [0, 1] with mean phi (projection) or not.

    z is a latent field (n, channels, *[size / 4] * dims) with a standard normal prior:
    fully convolutional (circular padding), so generated textures are statistically
    homogeneous and periodic like the training volume elements, and a global latent
    vector does not have to encode every local detail of a random texture.
    """

    def __init__(
        self,
        size: int = 64,
        dims: int = 2,
        latent: int = 8,
        width: int = 32,
        constraint: Constraint = "projection",
    ) -> None:
        super().__init__()
        _layers(size, dims)
        self.size, self.dims, self.latent, self.constraint = size, dims, latent, constraint
        conv = _conv(dims)
        self.body = nn.Sequential(
            conv(latent + CONDITIONS, 2 * width, 3, padding=1, padding_mode="circular"),
            nn.SiLU(),
            conv(2 * width, 2 * width, 3, padding=1, padding_mode="circular"),
            nn.SiLU(),
            # nearest-neighbour upsampling + convolution: no checkerboard artefacts of
            # strided transposed convolutions, which would show in S2 at short lags
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv(2 * width, 2 * width, 3, padding=1, padding_mode="circular"),
            nn.GroupNorm(8, 2 * width),
            nn.SiLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv(2 * width, width, 3, padding=1, padding_mode="circular"),
            nn.GroupNorm(8, width),
            nn.SiLU(),
            conv(width, width, 3, padding=1, padding_mode="circular"),
            nn.SiLU(),
            conv(width, 1, 3, padding=1, padding_mode="circular"),
        )

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return latent_shape(self.size, self.dims, self.latent)

    def logits(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([z, _planes(condition, z, self.dims)], dim=1))[:, 0]

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        relaxed = torch.sigmoid(self.logits(z, condition))
        if self.constraint == "projection":
            return project_fraction(relaxed, condition[:, 0], spatial_dims=self.dims)
        return relaxed


class LatentEncoder(nn.Module):
    """q(z | x, c): two strided convolutions to the latent grid, mean and log-variance."""

    def __init__(self, dims: int = 2, latent: int = 8, width: int = 32) -> None:
        super().__init__()
        conv = _conv(dims)
        self.dims = dims
        self.body = nn.Sequential(
            conv(1 + CONDITIONS, width, 4, stride=2, padding=1, padding_mode="circular"),
            nn.SiLU(),
            conv(width, 2 * width, 4, stride=2, padding=1, padding_mode="circular"),
            nn.SiLU(),
            conv(2 * width, 2 * latent, 3, padding=1, padding_mode="circular"),
        )

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([x.unsqueeze(1), _planes(condition, x, self.dims)], dim=1))


class Encoder(nn.Module):
    """field (n, *spatial) and c -> features; strided convolutions down to 4 per side."""

    def __init__(self, size: int = 64, dims: int = 2, width: int = 32, outputs: int = 64) -> None:
        super().__init__()
        steps = _layers(size, dims)
        layers: list[nn.Module] = []
        channels = 1 + CONDITIONS
        for index in range(steps):
            out = width * 2**index
            layers += [
                _conv(dims)(channels, out, 4, stride=2, padding=1, padding_mode="circular"),
                nn.LeakyReLU(0.2),
            ]
            channels = out
        self.body = nn.Sequential(*layers)
        self.dims = dims
        self.head = nn.Linear(channels * 4**dims + CONDITIONS, outputs)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        planes = _planes(condition, x, self.dims)
        features = self.body(torch.cat([x.unsqueeze(1), planes], dim=1)).flatten(1)
        return self.head(torch.cat([features, condition], dim=1))


class ConditionalVAE(nn.Module):
    """Encoder q(z | x, c) and the constrained decoder p(x | z, c)."""

    def __init__(
        self,
        size: int = 64,
        dims: int = 2,
        latent: int = 8,
        width: int = 32,
        constraint: Constraint = "projection",
    ) -> None:
        super().__init__()
        self.encoder = LatentEncoder(dims, latent, width)
        self.decoder = Decoder(size, dims, latent, width, constraint)
        self.latent = latent

    def forward(
        self, x: torch.Tensor, condition: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, log_variance = self.encoder(x, condition).chunk(2, dim=1)
        log_variance = log_variance.clamp(-12, 8)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
        return self.decoder(z, condition), mean, log_variance


class Critic(nn.Module):
    """Wasserstein critic f(x, c) (no normalization layers: the gradient penalty needs
    per-sample gradients)."""

    def __init__(self, size: int = 64, dims: int = 2, width: int = 32) -> None:
        super().__init__()
        self.features = Encoder(size, dims, width, 64)
        self.out = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(64, 1))

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x, condition))[:, 0]

"""Training of the conditional VAE and WGAN-GP on a set of microstructures.

Both trainers take a `MicrostructureSet` (binary fields with their fraction and length
scale), run within an epoch or wall-time budget, and return a `GenerativeModel`: the
trained decoder with what is needed to sample it. The fraction constraint is either the
decoder's projection layer (exact) or a penalty weight * voxels * (mean - phi)^2 in the
loss (``constraint="penalty"``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from matforge.core.errors import ConfigError
from matforge.core.progress import get_logger, track
from matforge.microstructure.models import ConditionalVAE, Constraint, Critic, Decoder

log = get_logger(__name__)

LENGTH_UNIT = 8.0  # voxels; the length-scale condition is length / LENGTH_UNIT

__all__ = [
    "GenerativeModel",
    "MicrostructureSet",
    "TrainSettings",
    "conditions",
    "train_vae",
    "train_wgan",
]


def conditions(phi: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """The decoder's condition vectors (n, 2) from fractions and length scales (voxels)."""
    return torch.stack([phi, length / LENGTH_UNIT], dim=1)


@dataclass
class MicrostructureSet:
    """Binary fields (n, *spatial), their phase fractions and length scales (voxels)."""

    fields: torch.Tensor
    phi: torch.Tensor
    length: torch.Tensor

    def __post_init__(self) -> None:
        n = self.fields.shape[0]
        if self.phi.shape != (n,) or self.length.shape != (n,):
            raise ConfigError("phi and length need one value per field")

    @property
    def dims(self) -> int:
        return self.fields.dim() - 1

    @property
    def size(self) -> int:
        return self.fields.shape[1]

    def subset(self, index: torch.Tensor) -> MicrostructureSet:
        return MicrostructureSet(self.fields[index], self.phi[index], self.length[index])

    def __len__(self) -> int:
        return self.fields.shape[0]


@dataclass
class TrainSettings:
    kind: Literal["vae", "wgan"] = "vae"
    constraint: Constraint = "projection"
    latent: int = 8  # channels of the latent field (a grid 4x coarser than the output)
    width: int = 32
    epochs: int = 30
    max_seconds: float | None = None
    batch_size: int = 32
    learning_rate: float = 1e-3
    beta: float = 1.0  # VAE: weight of the KL term
    penalty: float = 10.0  # weight of voxels * (mean - phi)^2 for constraint="penalty"
    critic_steps: int = 5  # WGAN: critic updates per generator update
    gradient_penalty: float = 10.0
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.kind not in ("vae", "wgan"):
            raise ConfigError(f"model kind must be 'vae' or 'wgan', got {self.kind!r}")
        if self.constraint not in ("projection", "penalty"):
            raise ConfigError(
                f"constraint must be 'projection' or 'penalty', got {self.constraint!r}"
            )
        if min(self.latent, self.width, self.epochs, self.batch_size) < 1:
            raise ConfigError("latent, width, epochs and batch_size must be positive")


@dataclass
class GenerativeModel:
    """A trained decoder and how to sample it."""

    decoder: Decoder
    settings: TrainSettings
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def dims(self) -> int:
        return self.decoder.dims

    @property
    def size(self) -> int:
        return self.decoder.size

    def condition(
        self, phi: float | torch.Tensor, length: float | torch.Tensor, n: int
    ) -> torch.Tensor:
        parameter = next(self.decoder.parameters())
        phi_t = torch.as_tensor(phi, dtype=parameter.dtype, device=parameter.device).expand(n)
        length_t = torch.as_tensor(length, dtype=parameter.dtype, device=parameter.device).expand(n)
        return conditions(phi_t, length_t)

    def latent_draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        parameter = next(self.decoder.parameters())
        z = torch.randn(n, *self.decoder.latent_shape, generator=generator, dtype=parameter.dtype)
        return z.to(parameter.device)

    def generate(
        self,
        phi: float,
        n: int,
        length: float,
        *,
        generator: torch.Generator | None = None,
        batch: int = 64,
    ) -> torch.Tensor:
        """n fields (n, *spatial) at fraction phi and length scale `length` (voxels)."""
        if not 0 < phi < 1:
            raise ConfigError(f"volume fraction must lie in (0, 1), got {phi}")
        samples = []
        with torch.no_grad():
            for start in range(0, n, batch):
                count = min(batch, n - start)
                z = self.latent_draw(count, generator)
                samples.append(self.decoder(z, self.condition(phi, length, count)))
        return torch.cat(samples)


def _penalty(x: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    means = x.flatten(start_dim=1).mean(dim=1)
    voxels = x[0].numel()
    return voxels * ((means - phi) ** 2).mean()


def _on_device(data: MicrostructureSet, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The fields and their condition vectors as float32 tensors on the training device."""
    fields = data.fields.to(device=device, dtype=torch.float32)
    return fields, conditions(data.phi, data.length).to(device=device, dtype=torch.float32)


def _batches(n: int, size: int, generator: torch.Generator) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    return [order[i : i + size] for i in range(0, n, size)]


def train_vae(data: MicrostructureSet, settings: TrainSettings) -> GenerativeModel:
    """Fit a conditional VAE (ELBO: Bernoulli likelihood of each voxel + beta KL)."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    device = torch.device(settings.device)
    model = ConditionalVAE(
        data.size, data.dims, settings.latent, settings.width, settings.constraint
    )
    model = model.to(device=device, dtype=torch.float32)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    fields, cond = _on_device(data, device)
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    for epoch in track(range(settings.epochs), description="VAE epochs"):
        totals = {"reconstruction": 0.0, "kl": 0.0, "penalty": 0.0}
        batches = _batches(len(data), settings.batch_size, generator)
        for index in batches:
            x = fields[index.to(device)]
            c = cond[index.to(device)]
            recon, mean, log_variance = model(x, c)
            p = recon.clamp(1e-6, 1 - 1e-6)
            reconstruction = nn.functional.binary_cross_entropy(p, x, reduction="sum") / len(index)
            kl = -0.5 * (1 + log_variance - mean**2 - log_variance.exp()).flatten(1).sum(1).mean()
            loss = reconstruction + settings.beta * kl
            if settings.constraint == "penalty":
                penalty = _penalty(recon, c[:, 0])
                loss = loss + settings.penalty * penalty
                totals["penalty"] += float(penalty.detach()) / len(batches)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            totals["reconstruction"] += float(reconstruction.detach()) / len(batches)
            totals["kl"] += float(kl.detach()) / len(batches)
        elapsed = time.perf_counter() - start
        history.append({"epoch": epoch + 1, "seconds": elapsed, **totals})
        if settings.max_seconds is not None and elapsed > settings.max_seconds:
            log.info("VAE: time budget reached after %d epochs", epoch + 1)
            break
    model.eval()
    return GenerativeModel(model.decoder, settings, history, time.perf_counter() - start)


def train_wgan(data: MicrostructureSet, settings: TrainSettings) -> GenerativeModel:
    """Fit a conditional WGAN-GP (Gulrajani et al. 2017: critic steps per generator step,
    gradient penalty on interpolates, Adam(betas=(0, 0.9)))."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    device = torch.device(settings.device)
    decoder = Decoder(data.size, data.dims, settings.latent, settings.width, settings.constraint)
    critic = Critic(data.size, data.dims, settings.width)
    decoder = decoder.to(device=device, dtype=torch.float32)
    critic = critic.to(device=device, dtype=torch.float32)
    optimizer_g = torch.optim.Adam(
        decoder.parameters(), lr=settings.learning_rate, betas=(0.0, 0.9)
    )
    optimizer_c = torch.optim.Adam(critic.parameters(), lr=settings.learning_rate, betas=(0.0, 0.9))
    fields, cond = _on_device(data, device)
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    step = 0
    for epoch in track(range(settings.epochs), description="WGAN epochs"):
        totals = {"critic": 0.0, "wasserstein": 0.0, "penalty": 0.0}
        batches = _batches(len(data), settings.batch_size, generator)
        for index in batches:
            x = fields[index.to(device)]
            c = cond[index.to(device)]
            z = torch.randn(len(index), *decoder.latent_shape, device=device)
            with torch.no_grad():
                fake = decoder(z, c)
            mix = torch.rand(len(index), *([1] * data.dims), device=device)
            between = (mix * x + (1 - mix) * fake).requires_grad_(True)
            score = critic(between, c)
            (slope,) = torch.autograd.grad(score.sum(), between, create_graph=True)
            gradient_penalty = ((slope.flatten(1).norm(dim=1) - 1) ** 2).mean()
            distance = critic(x, c).mean() - critic(fake, c).mean()
            loss_c = -distance + settings.gradient_penalty * gradient_penalty
            optimizer_c.zero_grad()
            loss_c.backward()
            optimizer_c.step()
            totals["critic"] += float(loss_c.detach()) / len(batches)
            totals["wasserstein"] += float(distance.detach()) / len(batches)
            step += 1
            if step % settings.critic_steps:
                continue
            z = torch.randn(len(index), *decoder.latent_shape, device=device)
            fake = decoder(z, c)
            loss_g = -critic(fake, c).mean()
            if settings.constraint == "penalty":
                penalty = _penalty(fake, c[:, 0])
                loss_g = loss_g + settings.penalty * penalty
                totals["penalty"] += float(penalty.detach()) * settings.critic_steps / len(batches)
            optimizer_g.zero_grad()
            loss_g.backward()
            optimizer_g.step()
        elapsed = time.perf_counter() - start
        history.append({"epoch": epoch + 1, "seconds": elapsed, **totals})
        if settings.max_seconds is not None and elapsed > settings.max_seconds:
            log.info("WGAN: time budget reached after %d epochs", epoch + 1)
            break
    decoder.eval()
    return GenerativeModel(decoder, settings, history, time.perf_counter() - start)

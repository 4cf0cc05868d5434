"""Inverse design: a microstructure at an exact volume fraction with a target effective
conductivity, by gradient descent on the generator's latent field.

The chain latent z -> decoder (projection layer: mean = phi exactly) -> voxel
conductivities -> FFT homogenization (envelope-theorem gradient) is differentiable end to
end. Several starts run as one batch; the best one is returned with the whole history.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from matforge.core.errors import ConfigError
from matforge.core.progress import track
from matforge.microstructure.homogenization import effective_conductivity, mixture_conductivity
from matforge.microstructure.training import GenerativeModel

__all__ = ["DesignResult", "DesignSettings", "design_microstructure", "scalar_conductivity"]


def scalar_conductivity(tensor: torch.Tensor, direction: str = "mean") -> torch.Tensor:
    """The designed quantity: 'mean' of the diagonal (isotropic part) or 'x'/'y'/'z'."""
    if direction == "mean":
        return tensor.diagonal(dim1=-2, dim2=-1).mean(-1)
    axes = {"x": 0, "y": 1, "z": 2}
    if direction not in axes or axes[direction] >= tensor.shape[-1]:
        raise ConfigError(f"direction must be 'mean' or an axis of the field, got {direction!r}")
    return tensor[..., axes[direction], axes[direction]]


@dataclass
class DesignSettings:
    conductivities: tuple[float, float] = (0.1, 1.0)  # matrix (x = 0), phase (x = 1)
    direction: str = "mean"
    starts: int = 8
    steps: int = 150
    learning_rate: float = 0.05
    prior_weight: float = 1e-4  # keeps z where the decoder was trained (per latent value)
    tolerance: float = 0.005  # stop when every start's relative error is below this
    seed: int = 0


@dataclass
class DesignResult:
    field: torch.Tensor  # the best design, (*spatial)
    conductivity: float
    target: float
    relative_error: float
    phi: float
    fraction_error: float
    latent: torch.Tensor
    history: list[dict[str, float]] = field(default_factory=list)
    start_conductivities: list[float] = field(default_factory=list)
    converged_solves: bool = True


def design_microstructure(
    model: GenerativeModel,
    phi: float,
    target: float,
    *,
    length: float,
    settings: DesignSettings | None = None,
) -> DesignResult:
    """Optimize the latent field so that the decoded microstructure (mean exactly phi)
    has effective conductivity `target` (in the units of `settings.conductivities`)."""
    settings = settings or DesignSettings()
    if model.decoder.constraint != "projection":
        raise ConfigError("inverse design needs a model trained with the projection layer")
    if not 0 < phi < 1 or target <= 0:
        raise ConfigError(f"need 0 < phi < 1 and a positive target, got {phi}, {target}")
    low, high = sorted(settings.conductivities)
    if not low < target < high:
        raise ConfigError(
            f"target conductivity {target} lies outside the phases' range [{low}, {high}]"
        )
    # a float64 copy, frozen: the caller's model is left as it was
    designer = GenerativeModel(copy.deepcopy(model.decoder).double(), model.settings)
    decoder = designer.decoder.requires_grad_(False)
    generator = torch.Generator().manual_seed(settings.seed)
    z = designer.latent_draw(settings.starts, generator).requires_grad_(True)
    condition = designer.condition(phi, length, settings.starts)
    optimizer = torch.optim.Adam([z], lr=settings.learning_rate)
    history: list[dict[str, float]] = []
    start_values: list[float] = []
    converged = True
    for step in track(range(settings.steps), description="design steps"):
        x = decoder(z, condition)
        result = effective_conductivity(
            mixture_conductivity(x, settings.conductivities), spatial_dims=model.dims
        )
        converged &= result.converged
        value = scalar_conductivity(result.tensor, settings.direction)
        relative = (value - target) / target
        errors = relative.detach().abs()
        if step == 0:
            start_values = value.detach().tolist()
        history.append(
            {
                "step": step,
                "best_relative_error": float(errors.min()),
                "median_relative_error": float(errors.median()),
            }
        )
        if float(errors.max()) < settings.tolerance:
            break
        prior = settings.prior_weight * z.pow(2).flatten(1).mean(1)
        loss = (relative**2 + prior).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        x = decoder(z, condition)
        result = effective_conductivity(
            mixture_conductivity(x, settings.conductivities), spatial_dims=model.dims
        )
        value = scalar_conductivity(result.tensor, settings.direction)
    errors = ((value - target) / target).abs()
    best = int(errors.argmin())
    return DesignResult(
        field=x[best],
        conductivity=float(value[best]),
        target=target,
        relative_error=float(errors[best]),
        phi=phi,
        fraction_error=float((x[best].mean() - phi).abs()),
        latent=z[best].detach(),
        history=history,
        start_conductivities=start_values,
        converged_solves=converged and result.converged,
    )


def conductivity_range(
    model: GenerativeModel,
    phi: float,
    length: float,
    conductivities: Sequence[float],
    *,
    n: int = 64,
    seed: int = 0,
    direction: str = "mean",
) -> torch.Tensor:
    """Effective conductivities of n generated samples: where targets are attainable."""
    samples = model.generate(phi, n, length, generator=torch.Generator().manual_seed(seed))
    result = effective_conductivity(
        mixture_conductivity(samples.double(), conductivities), spatial_dims=model.dims
    )
    return scalar_conductivity(result.tensor, direction)

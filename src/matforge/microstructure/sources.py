"""Training microstructures: Cahn-Hilliard spinodal decomposition, thresholded Gaussian
random fields, and the user's own image stacks.

All fields are (n, *spatial) tensors; binary ones hold 0 (matrix) and 1 (the phase whose
volume fraction phi is prescribed). Periodic boundaries throughout, as for a
representative volume element.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from matforge.core.errors import DataError

__all__ = [
    "cahn_hilliard",
    "gaussian_random_field",
    "load_images",
    "threshold_fraction",
    "wavenumbers",
]


def wavenumbers(shape: Sequence[int], *, device=None, dtype=torch.float64) -> list[torch.Tensor]:
    """Angular wavenumbers 2 pi f of a periodic grid of unit spacing, broadcast per axis."""
    axes = []
    for axis, size in enumerate(shape):
        k = 2 * math.pi * torch.fft.fftfreq(size, device=device, dtype=dtype)
        view = [1] * len(shape)
        view[axis] = size
        axes.append(k.reshape(view))
    return axes


def threshold_fraction(field: torch.Tensor, phi: float, *, spatial_dims: int = 2) -> torch.Tensor:
    """Binary fields: the round(phi * N) largest voxels of each sample become 1.

    The binary fraction is phi to within half a voxel (1 / 2N), the closest a binary image
    can come.
    """
    flat = field.flatten(start_dim=field.dim() - spatial_dims)
    count = round(phi * flat.shape[-1])
    order = torch.argsort(flat, dim=-1, descending=True)
    binary = torch.zeros_like(flat)
    binary.scatter_(-1, order[..., :count], 1.0)
    return binary.reshape(field.shape)


def gaussian_random_field(
    n: int,
    shape: Sequence[int],
    phi: float,
    correlation_length: float,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    binary: bool = True,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Thresholded Gaussian random fields (level-cut model, Berk/Teubner-Strey family).

    White noise filtered by exp(-k^2 l^2 / 4) has the Gaussian covariance
    exp(-r^2 / (2 l^2)) with l = `correlation_length` (voxels); cutting it at the quantile
    1 - phi gives the phase fraction phi (exactly round(phi N) voxels).
    """
    if not 0 < phi < 1:
        raise DataError(f"volume fraction must lie in (0, 1), got {phi}")
    if correlation_length <= 0:
        raise DataError(f"correlation length must be positive, got {correlation_length}")
    noise = torch.randn(n, *shape, generator=generator, dtype=dtype).to(device)
    k2 = sum(k**2 for k in wavenumbers(shape, device=device, dtype=dtype))
    spectrum = torch.exp(-k2 * correlation_length**2 / 4)
    field = torch.fft.ifftn(
        torch.fft.fftn(noise, dim=_axes(shape)) * spectrum, dim=_axes(shape)
    ).real
    return threshold_fraction(field, phi, spatial_dims=len(shape)) if binary else field


def _axes(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(range(-len(shape), 0))


def cahn_hilliard(
    n: int,
    shape: Sequence[int],
    *,
    composition: float = 0.0,
    mobility: float = 1.0,
    gradient_energy: float = 1.0,
    time: float = 200.0,
    dt: float = 0.5,
    noise: float = 0.05,
    stabilization: float = 2.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Spinodal decomposition by the Cahn-Hilliard equation, semi-implicit spectral steps.

    dc/dt = M lap(c^3 - c - kappa lap c) on a periodic grid of unit spacing, c in [-1, 1]
    quenched to `composition` plus uniform noise of amplitude `noise`. The stiff terms are
    implicit (kappa k^4, and a stabilizing A k^2 that is added on both sides, Eyre's
    splitting), the nonlinear one explicit: unconditionally stable for A >= 2 in practice.
    Domains coarsen as t^(1/3); the length scale grows with `time` and sqrt(kappa).
    Returns the concentration field (n, *shape); threshold it with `threshold_fraction`.
    """
    if not -1 < composition < 1:
        raise DataError(f"quench composition must lie in (-1, 1), got {composition}")
    if min(mobility, gradient_energy, time, dt) <= 0:
        raise DataError("mobility, gradient_energy, time and dt must be positive")
    axes = _axes(shape)
    fluctuation = noise * (2 * torch.rand(n, *shape, generator=generator, dtype=dtype) - 1)
    fluctuation = fluctuation - fluctuation.mean(dim=axes, keepdim=True)
    c = (composition + fluctuation).to(device)  # the dynamics conserve this mean exactly
    k2 = sum(k**2 for k in wavenumbers(shape, device=device, dtype=dtype))
    implicit = 1 + dt * mobility * (gradient_energy * k2**2 + stabilization * k2)
    for _ in range(max(1, round(time / dt))):
        nonlinear = torch.fft.fftn(c**3 - c, dim=axes)
        c_hat = torch.fft.fftn(c, dim=axes)
        c_hat = (
            c_hat * (1 + dt * mobility * stabilization * k2) - dt * mobility * k2 * nonlinear
        ) / implicit
        c = torch.fft.ifftn(c_hat, dim=axes).real
    return c


_IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".npy", ".npz"}


def _read_array(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            if len(archive.files) != 1:
                raise DataError(
                    f"{path}: expected one array in the .npz file, found {archive.files}"
                )
            return archive[archive.files[0]]
    from PIL import Image, ImageSequence

    with Image.open(path) as image:
        frames = [
            np.asarray(
                frame.convert("L") if frame.mode not in ("1", "L", "I;16", "I", "F") else frame
            )
            for frame in ImageSequence.Iterator(image)
        ]
    return frames[0] if len(frames) == 1 else np.stack(frames)


def load_images(
    paths: Sequence[str | Path],
    *,
    spatial_dims: int = 2,
    shape: Sequence[int] | None = None,
    threshold: float | None = None,
) -> torch.Tensor:
    """Binary microstructures from PNG, TIFF (multi-page = a 3D stack) or NumPy files.

    A file holds one image of `spatial_dims` dims or a stack with one more leading axis.
    Images must have exactly two grey levels (the larger becomes phase 1) unless a
    `threshold` is given; all must share one shape (or equal `shape`). Returns (n, *shape)
    float64 of 0/1. Errors name the file and what was expected.
    """
    images: list[np.ndarray] = []
    files = [Path(p) for p in paths]
    if not files:
        raise DataError("no image files given")
    expected = tuple(shape) if shape is not None else None
    for path in files:
        if path.suffix.lower() not in _IMAGE_SUFFIXES:
            raise DataError(
                f"{path}: unsupported image type; expected one of {sorted(_IMAGE_SUFFIXES)}"
            )
        if not path.is_file():
            raise DataError(f"{path}: no such image file")
        try:
            array = _read_array(path)
        except DataError:
            raise
        except Exception as error:  # PIL and numpy raise many kinds for a damaged file
            raise DataError(f"{path}: cannot read the image ({error})") from None
        if array.ndim == spatial_dims:
            array = array[None]
        if array.ndim != spatial_dims + 1:
            raise DataError(
                f"{path}: array of shape {array.shape} is neither one {spatial_dims}D image "
                f"nor a stack of them"
            )
        expected = expected or array.shape[1:]
        if array.shape[1:] != expected:
            raise DataError(f"{path}: image shape {array.shape[1:]}, expected {expected}")
        values = array.astype(np.float64)
        if threshold is not None:
            binary = values > threshold
        else:
            levels = np.unique(values)
            if levels.size > 2:
                raise DataError(
                    f"{path}: not a binary image ({levels.size} grey levels, e.g. "
                    f"{levels[:4].tolist()}); binarize it or give a threshold"
                )
            binary = values == levels.max() if levels.size == 2 else np.zeros_like(values, bool)
        images.append(binary)
    return torch.from_numpy(np.concatenate(images).astype(np.float64))

"""Microstructure statistics: two-point correlation, chord lengths, specific surface,
percolation.

Fields are (n, *spatial) tensors or arrays with values in [0, 1] (the phase of interest
is 1). The correlation and surface statistics accept grey fields (a relaxed generator
output) and reduce to the usual definitions on binary ones; chords and percolation need
binary fields.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "chord_lengths",
    "percolates",
    "radial_average",
    "specific_surface",
    "two_point_correlation",
]


def two_point_correlation(x: torch.Tensor, *, spatial_dims: int = 2, periodic: bool = True):
    """S2(r) = <x(s) x(s + r)> for every lag r, by FFT; shape (n, *spatial), lag 0 first.

    periodic=True: wrap-around lags (a periodic volume element). periodic=False: the
    zero-padded, overlap-normalized estimate over lags |r_i| < N_i, centred (shape
    (n, 2N_1 - 1, ...)); this is porespy's `two_point_correlation` before radial binning.
    """
    axes = tuple(range(-spatial_dims, 0))
    shape = x.shape[-spatial_dims:]
    if periodic:
        spectrum = torch.fft.rfftn(x, dim=axes)
        voxels = float(np.prod(shape))
        return torch.fft.irfftn(spectrum.abs() ** 2, s=shape, dim=axes) / voxels
    padded = tuple(2 * s for s in shape)
    spectrum = torch.fft.rfftn(x, s=padded, dim=axes)
    correlation = torch.fft.irfftn(spectrum.abs() ** 2, s=padded, dim=axes)
    ones = torch.ones(shape, dtype=x.dtype, device=x.device)
    overlap = torch.fft.irfftn(torch.fft.rfftn(ones, s=padded).abs() ** 2, s=padded)
    s2 = torch.fft.fftshift(correlation / overlap.clamp(min=1), dim=axes)
    keep = tuple(slice(p // 2 - (n - 1), p // 2 + n) for p, n in zip(padded, shape, strict=True))
    return s2[(..., *keep)]


def lag_distances(shape: Sequence[int], *, centred: bool = False) -> torch.Tensor:
    """|r| of every lag of a periodic map (minimum image), or of a centred map."""
    grids = []
    for size in shape:
        index = torch.arange(size, dtype=torch.float64)
        grids.append(index - size // 2 if centred else torch.minimum(index, size - index))
    mesh = torch.meshgrid(*grids, indexing="ij")
    return torch.sqrt(sum(g**2 for g in mesh))


def radial_average(
    s2: torch.Tensor,
    bins: torch.Tensor | int | None = None,
    *,
    spatial_dims: int = 2,
    centred: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of a lag map over rings [b_i, b_i+1); returns (bin centres, (n, bins) means).

    Default bins: integer edges 0, 1, ..., min(N)/2, as porespy uses for bins=100 on
    images up to 200 voxels (bins=an int: that many equal bins up to min(N) // 2).
    """
    shape = s2.shape[-spatial_dims:]
    distance = lag_distances(shape, centred=centred).to(s2.device)
    # a centred map of 2N - 1 lags comes from an image of N voxels: bins reach N // 2
    r_max = int(min(shape) // 2 if not centred else min(((n + 1) // 2) // 2 for n in shape))
    if bins is None or isinstance(bins, int):
        size = max(1, int(np.ceil(r_max / (bins or 100))))
        bins = torch.arange(0, r_max + size, size, dtype=torch.float64)
    bins = bins.to(torch.float64)
    index = torch.bucketize(distance.flatten(), bins, right=True) - 1
    valid = (index >= 0) & (index < bins.numel() - 1)
    flat = s2.flatten(start_dim=s2.dim() - spatial_dims)[..., valid]
    index = index[valid].to(s2.device)
    counts = torch.bincount(index, minlength=bins.numel() - 1).to(s2.dtype)
    sums = torch.zeros(*flat.shape[:-1], bins.numel() - 1, dtype=s2.dtype, device=s2.device)
    sums.index_add_(-1, index, flat)
    return 0.5 * (bins[1:] + bins[:-1]), sums / counts.clamp(min=1)


def chord_lengths(
    x: np.ndarray | torch.Tensor, axis: int = 0, *, phase: int = 1, periodic: bool = False
) -> np.ndarray:
    """Lengths (voxels) of all runs of `phase` along `axis` in every line of a binary image.

    periodic=False drops the runs that touch either end of their line (they are cut by the
    image border), as porespy's `apply_chords(trim_edges=True)` does; periodic=True joins a
    run that leaves one end with the one that enters the other.
    """
    image = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x) == phase
    lines = np.moveaxis(image, axis, -1).reshape(-1, image.shape[axis]).astype(np.int8)
    if periodic:
        # rotate each line so that it starts at a voxel of the other phase (lines all of
        # `phase` are single chords of the full length)
        full = lines.all(axis=1)
        start = np.argmin(lines, axis=1)
        rolled = np.take_along_axis(
            lines, (start[:, None] + np.arange(lines.shape[1])) % lines.shape[1], 1
        )
        lengths = _runs(rolled, trim=False)
        return np.concatenate([lengths, np.full(int(full.sum()), lines.shape[1])])
    return _runs(lines, trim=True)


def _runs(lines: np.ndarray, *, trim: bool) -> np.ndarray:
    padded = np.pad(lines, ((0, 0), (1, 1)))
    steps = np.diff(padded, axis=1)
    _rows_start, starts = np.nonzero(steps == 1)
    _, ends = np.nonzero(steps == -1)
    lengths = ends - starts
    if trim:
        inside = (starts > 0) & (ends < lines.shape[1])
        lengths = lengths[inside]
    return lengths


def specific_surface(x: torch.Tensor, *, spatial_dims: int = 2) -> torch.Tensor:
    """Interface area per volume, in 1/voxel: sum over the faces between neighbouring
    voxels of |x(s) - x(s + e_i)| divided by the number of voxels (periodic).

    On a binary image this counts the faces between the phases (a digital, anisotropic
    measure: a circle's perimeter comes out 4/pi too long); differentiable on grey fields.
    """
    total = torch.zeros(x.shape[: x.dim() - spatial_dims], dtype=x.dtype, device=x.device)
    for axis in range(-spatial_dims, 0):
        total = total + (x - torch.roll(x, 1, dims=axis)).abs().flatten(
            start_dim=-spatial_dims
        ).sum(-1)
    voxels = float(np.prod(x.shape[-spatial_dims:]))
    return total / voxels


def percolates(x: np.ndarray | torch.Tensor, axis: int = 0, *, phase: int = 1) -> bool:
    """Whether a face-connected cluster of `phase` joins the two faces normal to `axis`."""
    from scipy import ndimage

    image = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x) == phase
    labels, _ = ndimage.label(image)
    first = np.take(labels, 0, axis=axis)
    last = np.take(labels, -1, axis=axis)
    common = np.intersect1d(first[first > 0], last[last > 0])
    return bool(common.size)

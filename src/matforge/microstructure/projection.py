"""Exact Euclidean projections onto volume-fraction constraints, with implicit backward.

The hard constraint of a generated microstructure is its phase fraction. The closest field
(in the Euclidean norm) to a relaxed field ``y`` that meets it is

* two phases: ``x = clip(y - tau, 0, 1)`` with the scalar ``tau`` that makes
  ``mean(x) = phi`` (projection onto the capped simplex). ``sum clip(y - tau, 0, 1)`` is
  piecewise linear and decreasing in ``tau`` with kinks at ``y_i`` and ``y_i - 1``; the
  kinks are sorted, the bracketing piece found by a batched search, and ``tau`` solved on
  that piece in closed form: exact up to rounding, no iteration tolerance.
* K phases: ``x[v, k] = max(0, y[v, k] - a_v - b_k)``, each voxel on the probability
  simplex and each phase at its total. For fixed phase prices ``b`` every voxel is a
  sort-based simplex projection; ``b`` solves a K-dimensional piecewise-linear equation by
  semismooth Newton (finite termination on the piece that holds the solution).

Both are piecewise affine; the backward passes apply the derivative of the active piece
(implicit differentiation of the optimality conditions), not autograd through a solver.
A per-slice constraint is the two-phase projection with one fraction per slice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from matforge.core.errors import ConfigError

__all__ = [
    "fraction_violation",
    "project_fraction",
    "project_phases",
    "project_slices",
]


def _check_phi(phi: torch.Tensor) -> None:
    if not torch.isfinite(phi).all() or (phi < 0).any() or (phi > 1).any():
        raise ConfigError(f"volume fraction must lie in [0, 1], got {phi.flatten()[:4].tolist()}")


def _solve_tau(y: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """Rows y (B, n), targets phi (B,): tau with sum clip(y - tau, 0, 1) = n phi, exactly."""
    n = y.shape[1]
    target = phi * n
    values, _ = torch.sort(y, dim=1)
    prefix = torch.cat([torch.zeros_like(values[:, :1]), values.cumsum(dim=1)], dim=1)
    kinks, _ = torch.sort(torch.cat([values, values - 1.0], dim=1), dim=1)

    def pieces(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # per row and candidate tau: #voxels at 1 (y - t >= 1), #strictly between, their sum
        at_one = n - torch.searchsorted(values, t + 1.0, right=False)
        above_zero = n - torch.searchsorted(values, t, right=True)
        between = above_zero - at_one
        start = n - above_zero
        total = prefix.gather(1, start + between) - prefix.gather(1, start)
        return at_one, between, total

    ones, between, sums = pieces(kinks)
    mass = ones + sums - between * kinks  # decreasing in the kink position
    # first kink whose mass is <= target: the solution lies between it and the one before
    index = torch.searchsorted(-mass.contiguous(), -target[:, None], right=False).clamp(
        1, 2 * n - 1
    )
    middle = 0.5 * (kinks.gather(1, index - 1) + kinks.gather(1, index))
    ones, between, sums = pieces(middle)
    ones, between, sums = ones[:, 0], between[:, 0], sums[:, 0]
    safe = between.clamp(min=1)
    tau = (ones + sums - target) / safe
    # a flat piece (no voxel strictly inside (0, 1)) is met by any tau on it
    return torch.where(between > 0, tau, middle[:, 0])


class _CappedSimplex(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        tau = _solve_tau(y.detach().to(torch.float64), phi.detach().to(torch.float64))
        x = (y.to(torch.float64) - tau[:, None]).clamp(0.0, 1.0)
        inside = (x > 0) & (x < 1)
        ctx.save_for_backward(inside)
        return x.to(y.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        (inside,) = ctx.saved_tensors
        mask = inside.to(grad.dtype)
        count = mask.sum(dim=1).clamp(min=1)
        mean_inside = (grad * mask).sum(dim=1) / count
        grad_y = mask * (grad - mean_inside[:, None])
        grad_phi = grad.shape[1] * mean_inside * (mask.sum(dim=1) > 0)
        return grad_y, grad_phi


def _flatten(y: torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """(..., *spatial) -> (samples, voxels)."""
    if y.dim() < spatial_dims:
        raise ConfigError(f"field of shape {tuple(y.shape)} has fewer than {spatial_dims} dims")
    return y.reshape(-1, math.prod(y.shape[y.dim() - spatial_dims :]))


def _fractions(phi: float | torch.Tensor, rows: int, like: torch.Tensor) -> torch.Tensor:
    phi = torch.as_tensor(phi, dtype=like.dtype, device=like.device)
    _check_phi(phi.detach())
    return phi.expand(rows) if phi.dim() == 0 else phi.reshape(rows)


def project_fraction(
    y: torch.Tensor, phi: float | torch.Tensor, *, spatial_dims: int = 2
) -> torch.Tensor:
    """Closest field to ``y`` with every voxel in [0, 1] and mean ``phi``.

    y: (..., *spatial) with `spatial_dims` trailing spatial axes (2 or 3); phi: a number or
    one fraction per sample (shape of the leading axes). Differentiable in y and phi; the
    constraint holds to rounding (1e-15 relative in float64, computed in float64 always).
    """
    flat = _flatten(y, spatial_dims)
    fractions = _fractions(phi, flat.shape[0], flat)
    return _CappedSimplex.apply(flat, fractions).reshape(y.shape)


def project_slices(
    y: torch.Tensor, phi: torch.Tensor, *, axis: int = -1, spatial_dims: int = 2
) -> torch.Tensor:
    """Per-slice fractions: every slice normal to `axis` gets its own mean phi[..., i].

    A graded electrode, for example: phi has the leading (batch) shape of y plus the length
    of y along `axis` (or just that length, shared by the batch).
    """
    axis = axis % y.dim()
    if axis < y.dim() - spatial_dims:
        raise ConfigError(f"slice axis {axis} is not one of the {spatial_dims} spatial axes")
    moved = y.movedim(axis, -1)
    slices = moved.shape[-1]
    rows = moved.movedim(-1, y.dim() - spatial_dims)  # slices become a batch axis
    phi = torch.as_tensor(phi, dtype=y.dtype, device=y.device)
    lead = rows.shape[: y.dim() - spatial_dims + 1]
    if phi.shape[-1:] != (slices,):
        raise ConfigError(f"per-slice fractions need {slices} values along the last axis")
    projected = project_fraction(rows, phi.expand(lead).reshape(-1), spatial_dims=spatial_dims - 1)
    return projected.movedim(y.dim() - spatial_dims, -1).movedim(-1, axis)


def _project_simplex_rows(z: torch.Tensor) -> torch.Tensor:
    """Each row of z (..., K) projected onto the probability simplex (sort-based, exact)."""
    k = z.shape[-1]
    values, _ = torch.sort(z, dim=-1, descending=True)
    cumulative = values.cumsum(dim=-1) - 1.0
    ranks = torch.arange(1, k + 1, dtype=z.dtype, device=z.device)
    support = (values - cumulative / ranks > 0).sum(dim=-1, keepdim=True)
    shift = cumulative.gather(-1, support - 1) / support.to(z.dtype)
    return (z - shift).clamp(min=0.0)


def _phase_system(active: torch.Tensor) -> torch.Tensor:
    """d(phase totals)/d(prices b) on an active pattern (B, V, K): symmetric, (B, K, K).

    On the support x_vk = y_vk - a_v - b_k, with a_v fixed by the voxel's sum; the totals
    move by J db with J_kl = -(n_k delta_kl - sum_v s_vk s_vl / |S_v|). J 1 = 0 (a common
    shift of b changes nothing), hence the pseudo-inverse below.
    """
    weights = active / active.sum(dim=-1, keepdim=True).clamp(min=1)
    diagonal = torch.diag_embed(active.sum(dim=1))
    return -(diagonal - torch.einsum("bvk,bvl->bkl", active, weights))


def _phase_prices(y: torch.Tensor, totals: torch.Tensor, iterations: int = 200) -> torch.Tensor:
    """Semismooth Newton on b: sum_v simplex(y_v - b)_k = totals_k for each phase k."""
    batch, voxels, k = y.shape
    prices = torch.zeros(batch, k, dtype=y.dtype, device=y.device)

    def residual_of(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _project_simplex_rows(y - b[:, None, :])
        return x, x.sum(dim=1) - totals

    x, residual = residual_of(prices)
    for _ in range(iterations):
        if float(residual.abs().max()) <= 1e-12:
            return prices
        pseudo = torch.linalg.pinv(_phase_system((x > 0).to(y.dtype)), hermitian=True)
        step = (pseudo @ residual.unsqueeze(-1)).squeeze(-1)
        # where every voxel is pure the map is flat: move b along the residual instead
        flat = step.norm(dim=1) < 1e-14 * (1 + residual.norm(dim=1))
        step = torch.where(flat[:, None], -residual / voxels, step)
        norm = residual.norm(dim=1)
        length = torch.ones(batch, 1, dtype=y.dtype, device=y.device)
        for _ in range(40):  # halve while the residual grows
            trial = prices - length * step
            trial_x, trial_residual = residual_of(trial)
            worse = trial_residual.norm(dim=1) > norm
            if not worse.any():
                break
            length = torch.where(worse[:, None], 0.5 * length, length)
        prices, x, residual = trial, trial_x, trial_residual
    raise ConfigError(
        f"phase projection did not converge: largest total off by {float(residual.abs().max()):.3g}"
    )


class _PhaseProjection(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y: torch.Tensor, totals: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y64 = y.detach().to(torch.float64)
        prices = _phase_prices(y64, totals.detach().to(torch.float64))
        x = _project_simplex_rows(y64 - prices[:, None, :])
        ctx.save_for_backward(x > 0)
        return x.to(y.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        (support,) = ctx.saved_tensors
        active = support.to(grad.dtype)
        count = active.sum(dim=-1, keepdim=True).clamp(min=1)
        # dx = c - (db_k - mean_{S_v} db) on the support, c = dy centred over the voxel's
        # support, J db = dT - sum_v c. The adjoint of that map, applied to grad:
        g = (grad - (grad * active).sum(dim=-1, keepdim=True) / count) * active
        pseudo = torch.linalg.pinv(_phase_system(active), hermitian=True)
        grad_totals = (pseudo @ g.sum(dim=1).unsqueeze(-1)).squeeze(-1)
        grad_totals = -grad_totals  # <g, dx> = -<sum_v g_v, db> and db = J^+ (dT - C)
        correction = (grad_totals[:, None, :] * active).sum(dim=-1, keepdim=True) / count
        grad_y = g - (grad_totals[:, None, :] - correction) * active
        return grad_y, grad_totals


def project_phases(
    y: torch.Tensor, fractions: Sequence[float] | torch.Tensor, *, spatial_dims: int = 2
) -> torch.Tensor:
    """K-phase fields: y (..., K, *spatial) -> x with x[:, k] >= 0, sum_k x = 1 per voxel
    and mean over voxels of x[:, k] = fractions[k] (which must sum to 1)."""
    fractions = torch.as_tensor(fractions, dtype=torch.float64)
    if fractions.dim() != 1 or (fractions < 0).any() or abs(float(fractions.sum()) - 1) > 1e-9:
        raise ConfigError(f"phase fractions must be K >= 2 numbers summing to 1, got {fractions}")
    if y.dim() < spatial_dims + 1 or y.shape[-spatial_dims - 1] != fractions.numel():
        raise ConfigError(
            f"field of shape {tuple(y.shape)} needs {fractions.numel()} phases on axis "
            f"{-spatial_dims - 1}"
        )
    k = fractions.numel()
    phase_axis = y.dim() - spatial_dims - 1
    moved = y.movedim(phase_axis, -1)
    shape = moved.shape
    rows = moved.reshape(-1, math.prod(shape[phase_axis:-1]), k)
    voxels = rows.shape[1]
    totals = (fractions * voxels).to(rows.dtype).expand(rows.shape[0], k).contiguous()
    x = _PhaseProjection.apply(rows, totals)
    return x.reshape(shape).movedim(-1, phase_axis)


def fraction_violation(x: torch.Tensor, phi: float | torch.Tensor, *, spatial_dims: int = 2):
    """|mean(x) - phi| per sample (leading axes)."""
    means = x.flatten(start_dim=x.dim() - spatial_dims).mean(dim=-1)
    return (means - torch.as_tensor(phi, dtype=x.dtype, device=x.device)).abs()

"""Derivatives of an equilibrium with respect to bulk composition and temperature (IFT).

At a converged equilibrium the KKT residual F(z; x_bulk, T) = 0 holds for the unknowns
z = (site fractions, set amounts, chemical potentials, sublattice multipliers). With the
set of stable composition sets held fixed, the implicit function theorem gives

    dz/dp = -J^{-1} dF/dp,        J = dF/dz,  p = (x_bulk, T),

one batched solve with C + 1 right-hand sides per arrangement of sets. Site fractions held
at their lower bound stay there (their rows become dy = 0).

Phase boundaries: the derivative is that of the equilibrium with the current phase set. On
a boundary, where a phase is about to appear or vanish, it is one-sided: it describes the
side on which the reported phase set holds; a phase not present has zero amount and zero
derivative, even though an infinitesimal step to the other side would create it.

Bulk mole fractions are differentiated independently: moving along (1, ..., 1) changes the
total amount of matter, which scales the set amounts and leaves mu and site fractions
unchanged. Differentiate through a parametrization of the simplex (e.g. a softmax) to stay
on it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from matforge.calphad.model import STANDARD_PRESSURE, PhaseDerivatives, PhaseModel
from matforge.calphad.newton import MIN_SITE_FRACTION, Layout, solve_batched
from matforge.calphad.solver import EquilibriumResult, equilibrium

STATUS_OK = "ok"
STATUS_SINGULAR = "singular"
STATUS_NOT_CONVERGED = "not_converged"


@dataclass(frozen=True)
class EquilibriumSensitivities:
    """Per-phase outputs of N equilibria and their derivatives (NaN where not converged:
    amounts, compositions, mu and every derivative of that condition).

    `phases` orders the P phase columns. Phase amounts sum over a phase's composition sets;
    a phase's composition is the amount-weighted mean over its sets (zero when absent).
    Derivatives: d_*_d_bulk has a trailing axis over the C bulk mole fractions, d_*_dT is
    per kelvin.
    """

    phases: tuple[str, ...]
    elements: tuple[str, ...]
    amounts: torch.Tensor  # (N, P)
    chemical_potentials: torch.Tensor  # (N, C)
    compositions: torch.Tensor  # (N, P, C)
    d_amounts_d_bulk: torch.Tensor  # (N, P, C)
    d_amounts_dT: torch.Tensor  # (N, P)  # noqa: N815
    d_mu_d_bulk: torch.Tensor  # (N, C, C)
    d_mu_dT: torch.Tensor  # (N, C)  # noqa: N815
    d_compositions_d_bulk: torch.Tensor  # (N, P, C, C)
    d_compositions_dT: torch.Tensor  # (N, P, C)  # noqa: N815
    #: Per condition: STATUS_OK, STATUS_SINGULAR (converged, but the KKT Jacobian is
    #: singular there: the derivatives are its least-squares solution, one of many) or
    #: STATUS_NOT_CONVERGED (every output NaN).
    status: tuple[str, ...] = ()

    @property
    def failed(self) -> torch.Tensor:
        """(N,) True where the outputs are NaN (the equilibrium did not converge)."""
        return torch.tensor([s == STATUS_NOT_CONVERGED for s in self.status], dtype=torch.bool)

    @property
    def singular(self) -> torch.Tensor:
        """(N,) True where the derivatives come from a least-squares solve."""
        return torch.tensor([s == STATUS_SINGULAR for s in self.status], dtype=torch.bool)


def _parameter_derivatives(
    layout: Layout, z: torch.Tensor, derivatives: Sequence[PhaseDerivatives]
) -> torch.Tensor:
    """dF/dp for p = (x_bulk..., T), shape (B, D, C + 1), from each set's derivatives."""
    batch, c = z.shape[0], layout.n_elements
    out = torch.zeros(batch, layout.size, c + 1, dtype=z.dtype)
    balance_rows = torch.arange(layout.mu.start, layout.mu.stop)
    out[:, balance_rows, torch.arange(c)] = -1.0
    for s, (d, ys) in enumerate(zip(derivatives, layout.y_slices, strict=True)):
        out[:, ys, c] = d.gradient_dt
        out[:, layout.phi.start + s, c] = d.gibbs_dt
    return out


def _state_derivatives(
    layout: Layout,
    z: torch.Tensor,
    temperature: torch.Tensor,
    pressure: float,
    derivatives: Sequence[PhaseDerivatives],
) -> tuple[torch.Tensor, torch.Tensor]:
    """dz/dp (B, D, C + 1) at converged states z of one layout, and (B,) True where the
    Jacobian is singular (dz/dp is then the least-squares solution, not unique)."""
    bulk = torch.zeros(z.shape[0], layout.n_elements, dtype=z.dtype)
    _, jacobian, at_bound = layout.system(z, temperature, bulk, pressure)
    rhs = -_parameter_derivatives(layout, z, derivatives)
    fixed = at_bound & (torch.arange(layout.size) < layout.n_y)
    eye = torch.eye(layout.size, dtype=z.dtype).expand_as(jacobian)
    jacobian = torch.where(fixed[:, :, None], eye, jacobian)
    rhs = torch.where(fixed[:, :, None], torch.zeros_like(rhs), rhs)
    scale = torch.ones_like(z)
    scale[:, : layout.n_y] = z[:, : layout.n_y]
    scaled = scale[:, :, None] * jacobian * scale[:, None, :]
    solution, singular = solve_batched(scaled, scale[:, :, None] * rhs)
    return scale[:, :, None] * solution, singular


def sensitivities(
    models: Mapping[str, PhaseModel],
    result: EquilibriumResult,
    *,
    pressure: float = STANDARD_PRESSURE,
) -> EquilibriumSensitivities:
    """Phase amounts, mu and phase compositions of `result`, with their IFT derivatives."""
    phases = tuple(sorted(models))
    column = {p: i for i, p in enumerate(phases)}
    n, c, p = len(result.points), len(result.elements), len(phases)
    nan = torch.nan
    # Rows of unconverged conditions stay NaN throughout (converged rows are filled below).
    amounts = torch.full((n, p), nan, dtype=torch.float64)
    mu = torch.full((n, c), nan, dtype=torch.float64)
    compositions = torch.full((n, p, c), nan, dtype=torch.float64)
    d_amounts = torch.full((n, p, c + 1), nan, dtype=torch.float64)
    d_mu = torch.full((n, c, c + 1), nan, dtype=torch.float64)
    d_compositions = torch.full((n, p, c, c + 1), nan, dtype=torch.float64)
    groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
    status = [STATUS_NOT_CONVERGED] * n
    for index, point in enumerate(result.points):
        if point.converged:
            mu[index] = point.chemical_potentials
            groups[tuple(s.phase for s in point.sets)].append(index)
    for set_phases, members in groups.items():
        layout = Layout(set_phases, models, c)
        z = layout.pack(
            [result.points[i].sets for i in members],
            torch.stack([result.points[i].chemical_potentials for i in members]),
        )
        z[:, : layout.n_y] = z[:, : layout.n_y].clamp(min=MIN_SITE_FRACTION)
        temperature = result.temperature[members]
        derivatives = [
            model.derivatives(z[:, ys], temperature, z[:, layout.mu], pressure)
            for model, ys in zip(layout.models, layout.y_slices, strict=True)
        ]
        dz, singular = _state_derivatives(layout, z, temperature, pressure, derivatives)
        for i, flag in zip(members, singular.tolist(), strict=True):
            status[i] = STATUS_SINGULAR if flag else STATUS_OK
        rows = torch.tensor(members)
        amounts[rows] = 0.0
        compositions[rows] = 0.0
        d_amounts[rows] = 0.0
        d_compositions[rows] = 0.0
        d_mu[rows] = dz[:, layout.mu]
        # Per phase: amount A = sum phi_s, composition X = sum phi_s x_s / A.
        weighted = torch.zeros(len(members), p, c, dtype=torch.float64)
        d_weighted = torch.zeros(len(members), p, c, c + 1, dtype=torch.float64)
        for s, (d, ys) in enumerate(zip(derivatives, layout.y_slices, strict=True)):
            col = column[set_phases[s]]
            phi = z[:, layout.phi.start + s]
            d_phi = dz[:, layout.phi.start + s]  # (B, C + 1)
            dx = d.composition_jacobian @ dz[:, ys]  # (B, C, C + 1)
            amounts[rows, col] += phi
            d_amounts[rows, col] += d_phi
            weighted[:, col] += phi[:, None] * d.composition
            d_weighted[:, col] += (
                d_phi[:, None, :] * d.composition[:, :, None] + phi[:, None, None] * dx
            )
        total = amounts[rows][:, :, None]
        present = total > 0
        safe = torch.where(present, total, torch.ones_like(total))
        compositions[rows] = torch.where(present, weighted / safe, torch.zeros_like(weighted))
        d_total = d_amounts[rows][:, :, None, :]  # (B, P, 1, C + 1)
        quotient = (d_weighted - compositions[rows][..., None] * d_total) / safe[..., None]
        d_compositions[rows] = torch.where(present[..., None], quotient, torch.zeros_like(quotient))
    return EquilibriumSensitivities(
        phases=phases,
        elements=result.elements,
        amounts=amounts,
        chemical_potentials=mu,
        compositions=compositions,
        d_amounts_d_bulk=d_amounts[..., :c],
        d_amounts_dT=d_amounts[..., c],
        d_mu_d_bulk=d_mu[..., :c],
        d_mu_dT=d_mu[..., c],
        d_compositions_d_bulk=d_compositions[..., :c],
        d_compositions_dT=d_compositions[..., c],
        status=tuple(status),
    )


class _EquilibriumFunction(torch.autograd.Function):
    """Forward: the solver; backward: the IFT Jacobians computed at the solution."""

    @staticmethod
    def forward(ctx, bulk, temperature, models, options):  # type: ignore[no-untyped-def,override]
        result = equilibrium(models, temperature.detach(), bulk.detach(), **options)
        sens = sensitivities(models, result, pressure=options.get("pressure", STANDARD_PRESSURE))
        ctx.sens = sens
        ctx.temperature_shape = temperature.shape
        ctx.bulk_shape = bulk.shape
        return sens.amounts, sens.chemical_potentials, sens.compositions

    @staticmethod
    def backward(ctx, g_amounts, g_mu, g_compositions):  # type: ignore[no-untyped-def,override]
        sens: EquilibriumSensitivities = ctx.sens
        grad_bulk = (
            torch.einsum("np,npc->nc", g_amounts, sens.d_amounts_d_bulk)
            + torch.einsum("nk,nkc->nc", g_mu, sens.d_mu_d_bulk)
            + torch.einsum("npk,npkc->nc", g_compositions, sens.d_compositions_d_bulk)
        )
        grad_t = (
            (g_amounts * sens.d_amounts_dT).sum(dim=1)
            + (g_mu * sens.d_mu_dT).sum(dim=1)
            + (g_compositions * sens.d_compositions_dT).sum(dim=(1, 2))
        )
        if len(ctx.temperature_shape) == 0 or ctx.temperature_shape.numel() == 1:
            grad_t = grad_t.sum().reshape(ctx.temperature_shape)
        return grad_bulk.reshape(ctx.bulk_shape), grad_t, None, None


def differentiable_equilibrium(
    models: Mapping[str, PhaseModel],
    temperature: torch.Tensor,
    bulk: torch.Tensor,
    **options: object,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Phase amounts (N, P), mu (N, C), phase compositions (N, P, C) with autograd.

    `loss.backward()` through these gives d/d(bulk) and d/dT by the implicit function
    theorem (see module docstring for phase boundaries); phases are ordered as
    `sorted(models)`. `options` go to `equilibrium`.
    """
    bulk = torch.as_tensor(bulk, dtype=torch.float64)
    temperature = torch.as_tensor(temperature, dtype=torch.float64)
    return _EquilibriumFunction.apply(bulk, temperature, models, options)

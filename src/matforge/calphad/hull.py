"""Global start of the equilibrium solver: the lower convex hull of sampled phase points.

Each phase's internal degrees of freedom (site fractions) are sampled; every sample is a
candidate point with a molar Gibbs energy G_j(T) and a composition x_j. The equilibrium of
these points at bulk composition x is the linear program

    minimize  sum_j lambda_j G_j   subject to   sum_j lambda_j x_j = x,  lambda >= 0,

whose solution is the lower convex hull of G over composition at x: at most C points (C
components) carry weight, and its dual gives the chemical potentials mu, with the driving
force G_j - mu . x_j >= 0 for every point. This is the start pycalphad also uses before its
Newton refinement. Here it is solved by a revised simplex method run on all N conditions at
once: each iteration is one batched (N, C, C) solve and one (N, M) driving-force evaluation.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from matforge.calphad.model import PhaseModel

#: Optimality tolerance of the simplex, J/mol: far above float64 noise on G ~ 1e5 J/mol,
#: far below any energy difference that matters.
DRIVING_FORCE_TOL = 1e-6
_PIVOT_TOL = 1e-12
#: Artificial starting points sit this far (J/mol) above the highest real point.
_ARTIFICIAL_HEIGHT = 1e6
_MAX_ENDMEMBERS = 2000
#: Candidate columns per condition after pricing against all points (see lower_convex_hull).
_PRICED_COLUMNS = 64
#: Binary conditions per distinct temperature from which one planar hull per temperature
#: (`binary_lower_hull`) beats the batched simplex.
_SHARED_HULL_RATIO = 4
#: Random points per phase: this times its degrees of freedom squared, at most
#: `points_per_phase` (150 for a binary solution, 2,000 for four or more).
SAMPLES_PER_DOF_SQUARED = 150


@dataclass(frozen=True)
class CandidatePoints:
    """Sampled site fractions of every phase, stacked: point j belongs to phase_of[j]."""

    phases: tuple[str, ...]
    phase_of: torch.Tensor  # (M,) long
    site_fractions: tuple[torch.Tensor, ...]  # per phase, (M_p, n_y)
    composition: torch.Tensor  # (M, C)

    def gibbs(
        self, models: Mapping[str, PhaseModel], temperature: torch.Tensor, pressure: float
    ) -> torch.Tensor:
        """G of every point at each temperature: shape (K, M) for K temperatures."""
        columns = []
        for name, y in zip(self.phases, self.site_fractions, strict=True):
            k, m = temperature.shape[0], y.shape[0]
            y_rep = y.repeat(k, 1)
            t_rep = temperature.repeat_interleave(m)
            columns.append(models[name].gibbs(y_rep, t_rep, pressure).reshape(k, m))
        return torch.cat(columns, dim=1)


def _endmembers(model: PhaseModel) -> torch.Tensor:
    """Every combination of one pure constituent per sublattice (capped)."""
    offsets = [0]
    for constituents in model.constituents:
        offsets.append(offsets[-1] + len(constituents))
    rows = []
    for combo in itertools.islice(
        itertools.product(*[range(len(c)) for c in model.constituents]), _MAX_ENDMEMBERS
    ):
        row = torch.zeros(model.n_site_fractions, dtype=torch.float64)
        for sublattice, choice in enumerate(combo):
            row[offsets[sublattice] + choice] = 1.0
        rows.append(row)
    return torch.stack(rows)


def _disordered(model: PhaseModel, y: torch.Tensor) -> torch.Tensor:
    """y with site fractions averaged over sublattices that hold the same constituents.

    For an order-disorder phase (B2, L12 modelled on two or four such sublattices) this is
    the disordered state; random draws of the ordered sublattices almost never come close
    to it, yet it is where the phase is stable above its ordering temperature. Empty for
    a phase without such sublattices.
    """
    groups: dict[tuple[str, ...], list[int]] = {}
    for sublattice, constituents in enumerate(model.constituents):
        groups.setdefault(constituents, []).append(sublattice)
    starts = [0]
    for constituents in model.constituents:
        starts.append(starts[-1] + len(constituents))
    shared = [members for members in groups.values() if len(members) > 1]
    if not shared:
        return y[:0]
    y = y.clone()
    for members in shared:
        width = len(model.constituents[members[0]])
        blocks = [y[:, starts[m] : starts[m] + width] for m in members]
        average = torch.stack(blocks).mean(dim=0)
        for m in members:
            y[:, starts[m] : starts[m] + width] = average
    return y


def sample_points(
    models: Mapping[str, PhaseModel],
    points_per_phase: int = 2000,
    *,
    generator: torch.Generator | None = None,
) -> CandidatePoints:
    """Endmembers, uniform and face-crowded random site fractions of each phase, with x.

    Points whose composition is undefined (a phase holding only vacancies) are dropped.
    """
    phases, phase_of, site_fractions, compositions = [], [], [], []
    for index, (name, model) in enumerate(sorted(models.items())):
        # A phase with few internal degrees of freedom needs few points to cover them.
        count = min(points_per_phase, SAMPLES_PER_DOF_SQUARED * model.degrees_of_freedom**2)
        uniform = model.sample_site_fractions(count, generator=generator)
        # Cubed exponential draws crowd each sublattice's faces and edges: ordered phases are
        # stable with nearly pure sublattices, a region uniform draws rarely visit.
        faces = model.sample_site_fractions(count // 2, generator=generator, power=3.0)
        y = torch.cat([_endmembers(model), uniform, faces])
        y = torch.cat([y, _disordered(model, torch.cat([uniform, faces]))])
        x = model.composition(y)
        keep = torch.isfinite(x).all(dim=1)
        y, x = y[keep], x[keep]
        phases.append(name)
        phase_of.append(torch.full((y.shape[0],), index, dtype=torch.long))
        site_fractions.append(y)
        compositions.append(x)
    return CandidatePoints(
        tuple(phases), torch.cat(phase_of), tuple(site_fractions), torch.cat(compositions)
    )


@dataclass(frozen=True)
class HullResult:
    """Per condition: the C hull points (indices into the candidates) and their weights."""

    points: torch.Tensor  # (N, C) long; -1 marks an artificial point left in the basis
    weights: torch.Tensor  # (N, C) phase amounts (moles of atoms per mole of atoms)
    chemical_potentials: torch.Tensor  # (N, C), J/mol
    gibbs: torch.Tensor  # (N,) total molar Gibbs energy
    converged: torch.Tensor  # (N,) bool
    iterations: int


def lower_convex_hull(
    gibbs: torch.Tensor,
    composition: torch.Tensor,
    bulk: torch.Tensor,
    *,
    rows: torch.Tensor | None = None,
    max_iterations: int = 500,
    coarse_stride: int = 8,
) -> HullResult:
    """Solve the point-equilibrium LP for N conditions at once.

    gibbs: (K, M) energies of the M candidate points, one row per distinct temperature;
    rows: (N,) the row of `gibbs` for each condition (default: K = N, row n for condition n);
    composition: (M, C) the points' mole fractions; bulk: (N, C) the bulk mole fractions.

    Column generation: the simplex first runs on every `coarse_stride`-th point, whose
    (N, M / stride) driving forces are cheap to scan, then goes on from that basis with
    all points; there most conditions are already optimal after one pass, so the exact
    solution of the full LP costs little more than the coarse one. Binary systems on the
    CPU whose conditions share temperatures take `binary_lower_hull` instead: the same
    solution from one planar hull per temperature.
    """
    if rows is None:
        rows = torch.arange(gibbs.shape[0], device=gibbs.device)
    if (
        composition.shape[1] == 2
        and gibbs.device.type == "cpu"
        and gibbs.shape[0] * _SHARED_HULL_RATIO <= rows.shape[0]
        # Every condition must lie within the points' span (else the LP reports it).
        and bool((bulk[:, 1] >= composition[:, 1].min()).all())
        and bool((bulk[:, 1] <= composition[:, 1].max()).all())
    ):
        from scipy.spatial import QhullError

        try:
            return binary_lower_hull(gibbs, composition, bulk, rows)
        except QhullError:  # degenerate point sets (e.g. collinear): the LP copes
            pass
    gibbs = gibbs[rows]
    n, m = gibbs.shape
    c = composition.shape[1]
    dtype, device = gibbs.dtype, gibbs.device
    # Artificial pure-component points (indices m..m+c-1) make the first basis feasible.
    height = gibbs.max(dim=1).values + _ARTIFICIAL_HEIGHT
    g_all = torch.cat([gibbs, height[:, None].expand(n, c)], dim=1)
    x_all = torch.cat([composition, torch.eye(c, dtype=dtype, device=device)])
    state = _SimplexState(
        basis=(m + torch.arange(c, device=device)).expand(n, c).clone(),
        weights=bulk.clone(),
        mu=torch.zeros(n, c, dtype=dtype, device=device),
        converged=torch.zeros(n, dtype=torch.bool, device=device),
    )
    everything = torch.arange(m + c, device=device)
    coarse = everything[(everything % coarse_stride == 0) | (everything >= m)]
    iterations = _simplex(state, g_all[:, coarse], x_all, coarse, max_iterations)
    # Pricing against every point: a condition whose best point prices below its
    # tangent plane goes on with its own most negative points as candidate columns.
    pending = torch.arange(n, device=device)
    for _ in range(max_iterations):
        g_p = g_all if pending.numel() == n else g_all[pending]
        driving = torch.addmm(g_p, state.mu[pending], x_all.T, alpha=-1.0)
        optimal = driving.min(dim=1).values >= -DRIVING_FORCE_TOL
        state.converged[pending] = optimal
        pending = pending[~optimal]
        if pending.numel() == 0:
            break
        columns = (
            driving[~optimal]
            .topk(min(_PRICED_COLUMNS, driving.shape[1]), dim=1, largest=False)
            .indices
        )
        columns = torch.cat([state.basis[pending], columns], dim=1)
        iterations += _simplex_rows(state, pending, g_all, x_all, columns, max_iterations)
    basis, weights, mu, converged = state.basis, state.weights, state.mu, state.converged
    total = (torch.gather(g_all, 1, basis) * weights).sum(dim=1)
    points = torch.where(basis >= m, torch.full_like(basis, -1), basis)
    return HullResult(points, weights, mu, total, converged, iterations)


@dataclass
class _SimplexState:
    basis: torch.Tensor  # (N, C) indices into all points
    weights: torch.Tensor  # (N, C)
    mu: torch.Tensor  # (N, C)
    converged: torch.Tensor  # (N,) bool


def _pivot(
    x_basis: torch.Tensor,
    entering: torch.Tensor,
    weights: torch.Tensor,
    basis: torch.Tensor,
    best: torch.Tensor,
    optimal: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pivot per row: (active rows, new weights, new basis); optimal rows keep theirs.

    Ratio test: how far the entering point (composition `entering`, index `best`) can go
    before a basis weight reaches zero; that basis point leaves. A row with no positive
    direction (unbounded ratio) cannot pivot and stops unconverged.
    """
    rows = torch.arange(weights.shape[0], device=weights.device)
    direction = torch.linalg.solve(x_basis.transpose(1, 2), entering.unsqueeze(-1))
    direction = direction.squeeze(-1)  # (P, C): change of each basis weight per unit
    ratios = torch.where(
        direction > _PIVOT_TOL, weights / direction, torch.full_like(weights, torch.inf)
    )
    leaving = ratios.argmin(dim=1)
    step = ratios[rows, leaving]
    active = ~optimal & torch.isfinite(step)
    new_weights = weights - step[:, None] * direction
    new_weights[rows, leaving] = step
    new_basis = basis.clone()
    new_basis[rows, leaving] = best
    return (
        active,
        torch.where(active[:, None], new_weights.clamp(min=0.0), weights),
        torch.where(active[:, None], new_basis, basis),
    )


def _simplex(
    state: _SimplexState,
    g_columns: torch.Tensor,
    x_all: torch.Tensor,
    columns: torch.Tensor,
    max_iterations: int,
) -> int:
    """Revised-simplex pivots over `columns` (indices into all points) until optimal.

    g_columns: (N, K) energies of those columns. Updates `state` in place; returns the
    number of iterations.
    """
    device = g_columns.device
    position = torch.full((x_all.shape[0],), -1, dtype=torch.long, device=device)
    position[columns] = torch.arange(columns.numel(), device=device)
    x_columns = x_all[columns]
    # Conditions leave the iteration once optimal: late iterations cost only what is left.
    pending = torch.arange(g_columns.shape[0], device=device)
    iteration = 0
    for iteration in range(1, max_iterations + 1):  # noqa: B007
        rows = torch.arange(pending.numel(), device=device)
        basis_p, weights_p = state.basis[pending], state.weights[pending]
        g_p = g_columns[pending]
        x_basis = x_all[basis_p]  # (P, C points, C components)
        # Every basis point is among the columns (the coarse ones are a subset of all).
        g_basis = torch.gather(g_p, 1, position[basis_p])
        mu_p = torch.linalg.solve(x_basis, g_basis.unsqueeze(-1)).squeeze(-1)
        state.mu[pending] = mu_p
        driving = torch.addmm(g_p, mu_p, x_columns.T, alpha=-1.0)  # (P, K)
        best_local = driving.argmin(dim=1)
        optimal = driving[rows, best_local] >= -DRIVING_FORCE_TOL
        best = columns[best_local]
        active, state.weights[pending], state.basis[pending] = _pivot(
            x_basis, x_all[best], weights_p, basis_p, best, optimal
        )
        state.converged[pending[optimal]] = True
        pending = pending[active]
        if pending.numel() == 0:
            break
    return iteration


def _simplex_rows(
    state: _SimplexState,
    pending: torch.Tensor,
    g_all: torch.Tensor,
    x_all: torch.Tensor,
    columns: torch.Tensor,
    max_iterations: int,
) -> int:
    """Simplex pivots for the conditions `pending`, each over its own columns (P, K).

    The first C columns of each row are its current basis. Updates `state` in place.
    """
    device = g_all.device
    c = x_all.shape[1]
    g_cols = torch.gather(g_all[pending], 1, columns)  # (P, K)
    x_cols = x_all[columns]  # (P, K, C)
    local = torch.arange(c, device=device).expand(pending.numel(), c).clone()
    weights = state.weights[pending].clone()
    active_rows = torch.arange(pending.numel(), device=device)
    iteration = 0
    for iteration in range(1, max_iterations + 1):  # noqa: B007
        r = active_rows
        rows = torch.arange(r.numel(), device=device)
        basis_p, weights_p = local[r], weights[r]
        x_basis = torch.gather(x_cols[r], 1, basis_p[:, :, None].expand(-1, -1, c))
        g_basis = torch.gather(g_cols[r], 1, basis_p)
        mu_p = torch.linalg.solve(x_basis, g_basis.unsqueeze(-1)).squeeze(-1)
        state.mu[pending[r]] = mu_p
        driving = g_cols[r] - torch.einsum("pkc,pc->pk", x_cols[r], mu_p)
        best = driving.argmin(dim=1)
        optimal = driving[rows, best] >= -DRIVING_FORCE_TOL
        active, weights[r], local[r] = _pivot(
            x_basis, x_cols[r][rows, best], weights_p, basis_p, best, optimal
        )
        active_rows = r[active]
        if active_rows.numel() == 0:
            break
    state.basis[pending] = torch.gather(columns, 1, local)
    state.weights[pending] = weights
    return iteration


def binary_lower_hull(
    gibbs: torch.Tensor, composition: torch.Tensor, bulk: torch.Tensor, rows: torch.Tensor
) -> HullResult:
    """The point-equilibrium LP of a binary system, from the lower hull of (x_B, G) points.

    With two components the LP's solution at x is the lower convex envelope of the points
    (x_B,j, G_j) at x: one planar convex hull (Qhull) per row of `gibbs` (a temperature),
    shared by every condition at that temperature, then a search for the lower edge that
    spans each condition's x_B. Same inputs and result as `lower_convex_hull`.
    """
    from scipy.spatial import ConvexHull

    x = composition[:, 1].numpy()
    energies = gibbs.numpy()
    bulk_b = bulk[:, 1].numpy()
    conditions = rows.numpy()
    n = bulk_b.shape[0]
    points = np.zeros((n, 2), dtype=np.int64)
    weights = np.zeros((n, 2))
    mu = np.zeros((n, 2))
    total = np.zeros(n)
    order = np.argsort(conditions, kind="stable")
    bounds = np.searchsorted(conditions[order], np.arange(gibbs.shape[0] + 1))
    for k in range(gibbs.shape[0]):
        members = order[bounds[k] : bounds[k + 1]]
        if members.size == 0:
            continue
        g = energies[k]
        # G spans ~1e5 J/mol and x one unit; scaling G (an affine map, same hull) keeps
        # Qhull's precision checks meaningful.
        scale = max(float(g.max() - g.min()), 1e-300)
        hull = ConvexHull(np.column_stack([x, (g - g.min()) / scale]))
        edges = hull.simplices[hull.equations[:, 1] < 0]  # outward normal points down
        in_order = x[edges[:, 0]] <= x[edges[:, 1]]
        left = np.where(in_order, edges[:, 0], edges[:, 1])
        right = np.where(in_order, edges[:, 1], edges[:, 0])
        by_x = np.argsort(x[left])
        left, right = left[by_x], right[by_x]
        edge = np.searchsorted(x[left], bulk_b[members], side="right") - 1
        edge = np.clip(edge, 0, left.size - 1)
        i, j = left[edge], right[edge]
        span = x[j] - x[i]
        share = np.clip((bulk_b[members] - x[i]) / span, 0.0, 1.0)
        slope = (g[j] - g[i]) / span
        mu_a = g[i] - slope * x[i]
        points[members] = np.column_stack([i, j])
        weights[members] = np.column_stack([1.0 - share, share])
        mu[members] = np.column_stack([mu_a, mu_a + slope])
        total[members] = (1.0 - share) * g[i] + share * g[j]
    return HullResult(
        torch.from_numpy(points),
        torch.from_numpy(weights),
        torch.from_numpy(mu),
        torch.from_numpy(total),
        torch.ones(n, dtype=torch.bool),
        0,
    )

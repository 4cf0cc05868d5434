"""The stability check: does any phase dip below the tangent plane of an equilibrium?

Each phase is relaxed from sampled starts to local minima of its driving force
G - mu . x, batched over conditions (see `unstable_sets`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from matforge.calphad.hull import CandidatePoints
from matforge.calphad.model import PhaseModel
from matforge.calphad.newton import MIN_SITE_FRACTION, CompositionSet, solve_batched

#: A candidate point this far (J/mol) below the tangent plane adds a composition set.
ADDITION_TOL = 1e-3
#: A sampled start this far (J/mol) above the tangent plane is not relaxed in the stability
#: check: relaxation lowers a sample's driving force by far less. The margin scales with the
#: squared sample spacing, n ** (-1 / dof) for n samples of a phase (see `relax_margin`).
RELAX_MARGIN = 5000.0
#: Curvature scale of the margin, J/mol per squared site-fraction spacing.
RELAX_MARGIN_CURVATURE = 1.5e5
#: Least margin, J/mol: a well-sampled phase still relaxes starts this close to the plane.
RELAX_MARGIN_FLOOR = 20.0
#: Sets of one phase closer than this (largest site-fraction difference) are one set.
SAME_SET_TOL = 0.05
#: The stability check relaxes each phase from this many sampled starts per condition,
#: each at least SPREAD (largest site-fraction difference) from the others and from the
#: phase's present sets, so a second basin (a miscibility gap, ordered beside disordered)
#: is found even when the best sample lies on a present set. Extra rows cost little: a
#: batched evaluation's time is mostly per operation, not per row.
STABILITY_STARTS = 6
SPREAD = 2 * SAME_SET_TOL


def _shifted_newton_step(
    hessian: torch.Tensor, gradient: torch.Tensor, constraint: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Step dy of the sublattice-constrained Newton system, Hessian shifted to be PD."""
    n, n_sub = y.shape[1], constraint.shape[0]
    eye = torch.eye(n, dtype=y.dtype, device=y.device)
    lowest = torch.linalg.eigvalsh(hessian)[:, 0]
    shift = (1e-6 * hessian.diagonal(dim1=1, dim2=2).abs().amax(dim=1) - lowest).clamp(min=0)
    hessian = hessian + shift[:, None, None] * eye
    # Variables u with dy = y du: the scaled Hessian y H y is O(RT) (see newton).
    kkt = torch.zeros(y.shape[0], n + n_sub, n + n_sub, dtype=y.dtype, device=y.device)
    kkt[:, :n, :n] = y[:, :, None] * hessian * y[:, None, :]
    kkt[:, :n, n:] = (constraint[None] * y[:, None, :]).transpose(1, 2)
    kkt[:, n:, :n] = constraint[None] * y[:, None, :]
    rhs = torch.cat([-y * gradient, y.new_zeros(y.shape[0], n_sub)], dim=1)
    # A singular system here only makes a worse trial step of the stability search,
    # which the line search and the final Newton check catch; nothing to report.
    step, _ = solve_batched(kkt, rhs.unsqueeze(-1))
    return step.squeeze(-1)[:, :n] * y


def _saddle_free_step(
    hessian: torch.Tensor, gradient: torch.Tensor, constraint: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Step dy: Newton on the null space of the sublattice sums, |eigenvalues| (floored).

    In variables u with dy = y du, where the scaled Hessian y H y is O(RT).
    """
    eye = torch.eye(y.shape[1], dtype=y.dtype, device=y.device)
    scaled = y[:, :, None] * hessian * y[:, None, :]
    gradient = y * gradient
    normals = constraint[None] * y[:, None, :]  # (B, n_sub, n), rows orthogonal
    normals = normals / normals.norm(dim=2, keepdim=True).clamp(min=1e-300)
    projector = eye - normals.transpose(1, 2) @ normals
    values, vectors = torch.linalg.eigh(projector @ scaled @ projector)
    floor = (1e-4 * values.abs().amax(dim=1, keepdim=True)).clamp(min=1e-8)
    inverse = (vectors / values.abs().clamp(min=floor)[:, None, :]) @ vectors.transpose(1, 2)
    return -(projector @ inverse @ projector @ gradient.unsqueeze(-1)).squeeze(-1) * y


def relax_sets(
    model: PhaseModel,
    y: torch.Tensor,
    mu: torch.Tensor,
    temperature: torch.Tensor,
    pressure: float,
    iterations: int = 40,
    tolerance: float = 1e-6,
    explore: bool = False,
) -> torch.Tensor:
    """Minimize G(y) - mu . x(y) over each sublattice's simplex, mu fixed (batched).

    A descent method: Newton steps, projected onto the sublattice constraints, cut back so
    that site fractions stay positive and the objective decreases (Armijo). It brings a
    start to its tangent point, where the full KKT Newton converges quadratically. Rows
    leave the batch once their predicted decrease falls below `tolerance` (J/mol), so later
    iterations cost only what is left.

    By default the Hessian is shifted to be positive definite, which keeps steps short: a
    set stays near its start (the hull point it refines). With `explore`, negative
    curvature is turned into ascent-free descent instead (saddle-free Newton), so a start
    on a non-convex slope travels to the bottom of its basin: the stability check's task.
    """
    index = torch.tensor(model.sublattice_of, device=y.device)
    n_sub = int(index.max()) + 1
    n = y.shape[1]
    constraint = torch.zeros(n_sub, n, dtype=y.dtype, device=y.device)
    constraint[index, torch.arange(n, device=y.device)] = 1.0
    eye = torch.eye(n, dtype=y.dtype, device=y.device)
    temperature = temperature.expand(y.shape[0]) if temperature.ndim == 0 else temperature

    def objective(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        gibbs, x = model.evaluate(values, temperature[rows], pressure)
        return gibbs - (mu[rows] * x).sum(dim=1)

    y = y.clamp(min=MIN_SITE_FRACTION)
    y = y / (y @ constraint.T)[:, index]
    if model.degrees_of_freedom == 0:  # a stoichiometric compound has nothing to relax
        return y
    active = torch.arange(y.shape[0], device=y.device)
    for _ in range(iterations):
        if active.numel() == 0:
            break
        ya = y[active]
        d = model.derivatives(ya, temperature[active], mu[active], pressure)
        hessian = 0.5 * (d.hessian + d.hessian.transpose(1, 2))
        gradient = d.gradient
        # A row with a non-finite derivative does not move (and is reported by Newton).
        finite = torch.isfinite(hessian).all(dim=(1, 2)) & torch.isfinite(gradient).all(dim=1)
        hessian = torch.where(finite[:, None, None], hessian, eye)
        gradient = torch.where(finite[:, None], gradient, torch.zeros_like(gradient))
        direction = _saddle_free_step if explore else _shifted_newton_step
        step = direction(hessian, gradient, constraint, ya)
        current = d.gibbs - (mu[active] * d.composition).sum(dim=1)
        decrease = (gradient * step).sum(dim=1)  # < 0 along a descent direction
        moving = (-decrease > tolerance) & finite
        # Longest step keeping every site fraction at or above its floor.
        room = torch.where(step < 0, (ya - MIN_SITE_FRACTION) / (-step), torch.full_like(ya, 2.0))
        alpha = room.amin(dim=1).clamp(max=1.0)
        pending = moving.clone()
        for _ in range(12):
            rows = torch.nonzero(pending).flatten()
            if rows.numel() == 0:
                break
            trial = (ya[rows] + alpha[rows, None] * step[rows]).clamp(min=MIN_SITE_FRACTION)
            value = objective(trial, active[rows])
            bound = current[rows] + 1e-4 * alpha[rows] * decrease[rows]
            accepted = value <= bound + 1e-12 * current[rows].abs()
            pending[rows[accepted]] = False
            alpha[rows[~accepted]] /= 2
        alpha = torch.where(moving, alpha, torch.zeros_like(alpha))
        ya = (ya + alpha[:, None] * step).clamp(min=MIN_SITE_FRACTION)
        y[active] = ya / (ya @ constraint.T)[:, index]
        active = active[moving & ((alpha[:, None] * step).abs().amax(dim=1) > 1e-12)]
    return y


def unstable_sets(
    models: Mapping[str, PhaseModel],
    candidates: CandidatePoints,
    point_gibbs: torch.Tensor,
    mu: torch.Tensor,
    temperature: torch.Tensor,
    pressure: float,
    present: Sequence[Sequence[CompositionSet]] | None = None,
) -> list[tuple[float, CompositionSet | None]]:
    """For each of B conditions, the phase that dips deepest below the tangent plane mu.

    Each phase starts from its sampled points of lowest driving force G - mu . x (up to
    STABILITY_STARTS, spread apart, none near a set of the phase already in the
    condition's equilibrium, `present`) and is relaxed, batched over the conditions, to
    the local minimum of G - mu . x, so a phase whose stable composition falls between
    samples is still found, and so is a second set of a present phase (a miscibility gap,
    or ordered beside disordered). Returns per condition (driving force, candidate set);
    the force is >= 0 when nothing dips below.
    """
    driving = torch.addmm(point_gibbs, mu, candidates.composition.T, alpha=-1.0)  # (B, M)
    present_layers = _present_layers(present or [])
    batch = driving.shape[0]
    best_force = torch.full((batch,), torch.inf, dtype=torch.float64)
    best_y: list[torch.Tensor | None] = [None] * batch
    best_phase = [""] * batch
    offset = 0
    for index, phase in enumerate(candidates.phases):
        count = candidates.site_fractions[index].shape[0]
        masked = driving[:, offset : offset + count].clone()
        offset += count
        points = candidates.site_fractions[index]
        margin = relax_margin(models[phase].degrees_of_freedom, points.shape[0])
        # Present sets of this phase, layered: layer k holds each condition's k-th set, so
        # that no condition appears twice in one layer.
        layers = present_layers.get(phase, [])
        for rows, sites in layers:
            masked[rows] = masked[rows].masked_fill(_near(points, sites), torch.inf)
        starts, start_rows = [], []
        # Masking only raises values: a condition without a start below the margin now
        # has none later either, so the search narrows to the conditions still in it.
        rows = torch.arange(batch)
        for _ in range(STABILITY_STARTS):
            value, local = masked.min(dim=1)
            below = value < margin
            if not bool(below.any()):
                break
            rows, masked = rows[below], masked[below]
            chosen = points[local[below]]
            starts.append(chosen)
            start_rows.append(rows)
            # The next start lies away from this one: another basin of G - mu . x.
            masked = masked.masked_fill(_near(points, chosen), torch.inf)
        if not starts:
            continue
        rows = torch.cat(start_rows)
        model = models[phase]
        y = relax_sets(
            model,
            _interior(model, torch.cat(starts)),
            mu[rows],
            temperature[rows],
            pressure,
            tolerance=0.1 * ADDITION_TOL,
            explore=True,
        )
        gibbs, x = model.evaluate(y, temperature[rows], pressure)
        force = gibbs - (mu[rows] * x).sum(dim=1)
        # A start that relaxed back onto a present set is that set, not a new one.
        for layer_rows, sites in layers:
            lookup = torch.full((batch, y.shape[1]), torch.inf, dtype=y.dtype)
            lookup[layer_rows] = sites
            same = (y - lookup[rows]).abs().amax(dim=1) < SAME_SET_TOL
            force = torch.where(same, torch.inf, force)
        force = torch.where(torch.isnan(force), torch.inf, force)
        # Each condition's best start of this phase, then whether it beats other phases.
        phase_best = torch.full((batch,), torch.inf, dtype=force.dtype)
        phase_best.scatter_reduce_(0, rows, force, "amin")
        better = phase_best < best_force
        winner = torch.full((batch,), -1, dtype=torch.long)
        hits = better[rows] & (force == phase_best[rows])
        winner[rows[hits]] = torch.nonzero(hits).flatten()
        chosen = torch.nonzero(better & (winner >= 0)).flatten()
        best_force[chosen] = phase_best[chosen]
        for b, y_row in zip(chosen.tolist(), y[winner[chosen]].unbind(0), strict=True):
            best_y[b] = y_row
            best_phase[b] = phase
    return [
        (force, CompositionSet(phase, y_row, 1e-9, added=True) if y_row is not None else None)
        for force, phase, y_row in zip(best_force.tolist(), best_phase, best_y, strict=True)
    ]


def relax_margin(dof: int, samples: int) -> float:
    """Sampled driving force (J/mol) above which a start is not worth relaxing.

    Between samples spaced h apart, G - mu . x can dip below the best nearby sample by about
    curvature * h**2. Measured on the agreement grids (Al-Zn, Cu-Mg, Al-Ni, Al-Co-Cr-Ni,
    Co-Cr-Fe-Mn-Ni), the smallest margin that changed no stability verdict was 50 J/mol for
    phases with 1-2 degrees of freedom, 200 for 3, 1000 for 4 and 5000 for 8. With the
    default sampling this gives 20 (the floor; curvature * h**2 is ~3) for 1, ~170 for 2,
    ~940 for 3, ~2700 for 4 and the 5000 cap from 5 on.
    """
    if dof == 0:
        return RELAX_MARGIN
    spacing = max(samples, 1) ** (-1.0 / dof)
    return min(RELAX_MARGIN, max(RELAX_MARGIN_FLOOR, RELAX_MARGIN_CURVATURE * spacing**2))


def _present_layers(
    present: Sequence[Sequence[CompositionSet]],
) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Per phase, (conditions, site fractions) of its k-th present set, for k = 0, 1, ..."""
    layers: dict[str, list[tuple[list[int], list[torch.Tensor]]]] = {}
    for b, sets in enumerate(present):
        seen: dict[str, int] = {}
        for s in sets:
            k = seen.get(s.phase, 0)
            seen[s.phase] = k + 1
            phase_layers = layers.setdefault(s.phase, [])
            if k == len(phase_layers):
                phase_layers.append(([], []))
            phase_layers[k][0].append(b)
            phase_layers[k][1].append(s.site_fractions)
    return {
        phase: [(torch.tensor(rows), torch.stack(sites)) for rows, sites in phase_layers]
        for phase, phase_layers in layers.items()
    }


def _interior(model: PhaseModel, y: torch.Tensor, weight: float = 0.02) -> torch.Tensor:
    """Starts moved slightly towards each sublattice's centre.

    A sampled start on a face of the simplex (an endmember, an edge) has site fractions at
    the floor; relaxation steps scale with y, so those would take many steps to grow.
    """
    index = torch.tensor(model.sublattice_of, device=y.device)
    counts = torch.bincount(index).to(y.dtype)[index]
    return (1 - weight) * y + weight / counts


def _near(points: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """(B, M) mask: point m within SPREAD of center b (largest site-fraction difference)."""
    return torch.cdist(centers, points, p=float("inf")) <= SPREAD


def same_set(phase: str, site_fractions: torch.Tensor, other: CompositionSet) -> bool:
    """Whether (phase, site_fractions) is `other`, to within SAME_SET_TOL."""
    return (
        phase == other.phase
        and float((site_fractions - other.site_fractions).abs().max()) < SAME_SET_TOL
    )

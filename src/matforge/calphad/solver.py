"""Batched equilibrium at fixed T, P and bulk composition: hull start, then Newton on KKT.

For a set of composition sets s (a phase, its site fractions y_s, its amount phi_s in moles
of atoms) and chemical potentials mu, equilibrium is the solution of

    dG_s/dy_i - mu . dx_s/dy_i - eta_{s,l(i)} = 0      (each site fraction i of each set)
    G_s(y_s) - mu . x_s(y_s)                    = 0      (each set touches the tangent plane)
    sum_s phi_s x_s(y_s) - x_bulk                = 0      (mass balance, one per element)
    sum_{i in l} y_i - 1                         = 0      (each sublattice l of each set)

with eta the sublattice multipliers (per mole of the set). Starting from the lower convex
hull of sampled points (`hull`), Newton steps solve this square system for all conditions
that share one layout of composition sets at once (a batched dense solve; the layouts of a
round step together, so each phase's derivatives are evaluated once per step). Sets whose
amount turns negative are removed; a candidate point below the refined tangent plane adds a
set (phase addition, and a second set of the same phase for miscibility gaps), or replaces
one by a simplex exchange when there are already as many sets as elements; then Newton
runs again, until neither happens. `_History` breaks the cycles this can fall into.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from matforge.calphad.hull import CandidatePoints, HullResult, lower_convex_hull, sample_points
from matforge.calphad.model import STANDARD_PRESSURE, PhaseModel
from matforge.calphad.newton import (
    NEGLIGIBLE_AMOUNT,
    CompositionSet,
    Layout,
    NewtonProblem,
    newton,
)
from matforge.calphad.ranges import warn_outside_ranges
from matforge.calphad.stability import (
    ADDITION_TOL,
    SAME_SET_TOL,
    relax_sets,
    same_set,
    unstable_sets,
)
from matforge.core.collection import paused_cycle_collection
from matforge.core.errors import DataError

#: Amount given to a newly added set (the others shrink in proportion): Newton restores
#: the mass balance, and a set that starts with some substance is not pushed out by the
#: first linearized steps, as one starting at zero amount often is.
ADDED_AMOUNT = 0.1


@dataclass
class PointResult:
    sets: list[CompositionSet]
    chemical_potentials: torch.Tensor  # (C,)
    gibbs: float
    converged: bool
    reason: str = ""
    #: False where mu is not unique: too few stable sets and internal degrees of freedom
    #: to fix the tangent plane (a stoichiometric compound alone at its own composition).
    unique_potentials: bool = True
    #: Newton steps of the final solve whose KKT Jacobian was singular and that were
    #: solved by least squares instead (0 for a regular path).
    least_squares_steps: int = 0

    @property
    def status(self) -> str:
        """'converged', 'converged_least_squares' (some Newton steps were least-squares
        solutions of a singular system) or 'not_converged: <reason>'."""
        if not self.converged:
            return f"not_converged: {self.reason}"
        return "converged_least_squares" if self.least_squares_steps else "converged"

    def phase_fractions(self) -> dict[str, float]:
        """Amount of each composition set; a second set of a phase is named PHASE#2."""
        fractions: dict[str, float] = {}
        for s in self.sets:
            name, k = s.phase, 2
            while name in fractions:
                name, k = f"{s.phase}#{k}", k + 1
            fractions[name] = s.amount
        return fractions


@dataclass
class EquilibriumResult:
    elements: tuple[str, ...]
    temperature: torch.Tensor
    bulk: torch.Tensor
    points: list[PointResult] = field(default_factory=list)

    @property
    def converged(self) -> torch.Tensor:
        return torch.tensor([p.converged for p in self.points], dtype=torch.bool)

    @property
    def status(self) -> list[str]:
        """Per condition, `PointResult.status`."""
        return [p.status for p in self.points]

    @property
    def chemical_potentials(self) -> torch.Tensor:
        return torch.stack([p.chemical_potentials for p in self.points])


@dataclass
class _History:
    """Per condition: arrangements of sets solved so far, and those whose newly added set
    Newton removed again at once (adding that candidate again would cycle)."""

    tried: set[tuple[str, ...]] = field(default_factory=set)
    rejected: set[tuple[str, ...]] = field(default_factory=set)


def _merge_sets(sets: list[CompositionSet]) -> list[CompositionSet]:
    """Merge composition sets of one phase closer than SAME_SET_TOL (amounts add up)."""
    merged: list[CompositionSet] = []
    for current in sets:
        for existing in merged:
            if same_set(current.phase, current.site_fractions, existing):
                total = existing.amount + current.amount
                if total > 0:
                    existing.site_fractions = (
                        existing.site_fractions * existing.amount
                        + current.site_fractions * current.amount
                    ) / total
                existing.amount = total
                break
        else:
            merged.append(
                CompositionSet(current.phase, current.site_fractions.clone(), current.amount)
            )
    return merged


def _exchange(
    models: Mapping[str, PhaseModel], sets: list[CompositionSet], candidate: CompositionSet
) -> list[CompositionSet]:
    """As many sets as elements and one more below the tangent plane: a simplex exchange.

    The candidate's composition is a combination w of the sets' compositions; moving an
    amount t into it changes each amount by -t w_s, and the first set to run out leaves
    (the ratio test of the hull's simplex method), so the mass balance still holds.
    """
    compositions = torch.stack(
        [models[s.phase].composition(s.site_fractions[None])[0] for s in sets], dim=1
    )
    x = models[candidate.phase].composition(candidate.site_fractions[None])[0]
    weights = torch.linalg.lstsq(compositions, x[:, None]).solution[:, 0]
    amounts = torch.tensor([s.amount for s in sets], dtype=torch.float64)
    ratios = torch.where(weights > 1e-12, amounts / weights, torch.inf)
    leaving = int(ratios.argmin())
    step = float(ratios[leaving]) if torch.isfinite(ratios[leaving]) else 0.0
    kept = [
        CompositionSet(s.phase, s.site_fractions, max(s.amount - step * float(w), 0.0))
        for i, (s, w) in enumerate(zip(sets, weights, strict=True))
        if i != leaving
    ]
    fresh = CompositionSet(candidate.phase, candidate.site_fractions, max(step, 1e-9), added=True)
    return [*kept, fresh]


def _initial_states(candidates: CandidatePoints, hull: HullResult) -> list[list[CompositionSet]]:
    """Each condition's composition sets from its hull points (artificial points dropped).

    Hull points of one phase closer than SAME_SET_TOL are merged as `_merge_sets` does
    (amount-weighted site fractions), batched over the conditions.
    """
    counts = torch.bincount(candidates.phase_of, minlength=len(candidates.phases))
    first = torch.cumsum(counts, 0) - counts
    valid = (hull.points >= 0) & (hull.weights > 1e-12)
    safe = hull.points.clamp(min=0)
    phase_index = candidates.phase_of[safe]
    local = safe - first[phase_index]
    n, c = hull.points.shape
    width = max(y.shape[1] for y in candidates.site_fractions)
    # Site fractions of each hull point, zero-padded to one width: (N, C, width).
    padded = torch.zeros(n, c, width, dtype=torch.float64)
    for p, y in enumerate(candidates.site_fractions):
        slots = phase_index == p
        padded[slots, : y.shape[1]] = y[local[slots]]
    weights = hull.weights.clone()
    merged_into = torch.zeros(n, c, dtype=torch.bool)
    for b in range(c):
        for a in range(b):
            merge = (
                valid[:, a]
                & valid[:, b]
                & (phase_index[:, a] == phase_index[:, b])
                & ((padded[:, a] - padded[:, b]).abs().amax(dim=1) < SAME_SET_TOL)
            )
            if not bool(merge.any()):
                continue
            total = weights[:, a] + weights[:, b]
            average = (padded[:, a] * weights[:, a, None] + padded[:, b] * weights[:, b, None]) / (
                total[:, None]
            )
            padded[:, a] = torch.where(merge[:, None], average, padded[:, a])
            weights[:, a] = torch.where(merge, total, weights[:, a])
            valid[:, b] &= ~merge
            merged_into[:, a] |= merge
    rows_of = [y.unbind(0) for y in candidates.site_fractions]
    changed = merged_into.any(dim=1).tolist()
    states = []
    for row, (ok, phases, locals_, amounts, was_merged) in enumerate(
        zip(
            valid.tolist(),
            phase_index.tolist(),
            local.tolist(),
            weights.tolist(),
            changed,
            strict=True,
        )
    ):
        states.append(
            [
                CompositionSet(
                    candidates.phases[p],
                    padded[row, slot, : candidates.site_fractions[p].shape[1]].clone()
                    if was_merged
                    else rows_of[p][i],
                    w,
                )
                for slot, (keep, p, i, w) in enumerate(
                    zip(ok, phases, locals_, amounts, strict=True)
                )
                if keep
            ]
        )
    return states


def _mergeable_rows(layout: Layout, z: torch.Tensor) -> torch.Tensor:
    """(B,) rows of z in which two sets of one phase are within SAME_SET_TOL."""
    mergeable = torch.zeros(z.shape[0], dtype=torch.bool)
    for a in range(layout.n_sets):
        for b in range(a + 1, layout.n_sets):
            if layout.phases[a] == layout.phases[b]:
                ya, yb = z[:, layout.y_slices[a]], z[:, layout.y_slices[b]]
                mergeable |= (ya - yb).abs().amax(dim=1) < SAME_SET_TOL
    return mergeable


def _validated_conditions(
    elements: Sequence[str], bulk: object, temperature: object
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bulk compositions on the simplex (renormalized in float64) and one T per condition."""
    bulk = torch.as_tensor(bulk, dtype=torch.float64)
    if bulk.ndim == 1:
        bulk = bulk[None]
    if bulk.ndim != 2 or bulk.shape[1] != len(elements):
        raise DataError(
            f"bulk compositions must have shape (N, {len(elements)}) with columns "
            f"{list(elements)}, got {tuple(bulk.shape)}"
        )
    if not bool(torch.isfinite(bulk).all()) or bool((bulk < 0).any()):
        raise DataError("bulk mole fractions must be finite and non-negative")
    totals = bulk.sum(dim=1)
    off = torch.nonzero((totals - 1.0).abs() > 1e-6).flatten()
    if off.numel():
        n = int(off[0])
        raise DataError(
            f"bulk composition {n} sums to {float(totals[n]):.8g}, not 1 "
            f"(mole fractions of {list(elements)})"
        )
    temperature = torch.as_tensor(temperature, dtype=torch.float64).reshape(-1)
    if temperature.numel() == 1:
        temperature = temperature.expand(bulk.shape[0]).clone()
    if temperature.shape[0] != bulk.shape[0]:
        raise DataError(f"{temperature.shape[0]} temperatures for {bulk.shape[0]} compositions")
    if not bool(torch.isfinite(temperature).all()) or bool((temperature <= 0).any()):
        raise DataError("temperatures must be finite and positive (kelvin)")
    # float32 inputs (0.65f + 0.35f != 1) would otherwise shift the mass balance by ~1e-8.
    return bulk / totals[:, None], temperature


def _relax_groups(
    models: Mapping[str, PhaseModel],
    layouts: list[tuple[Layout, torch.Tensor, list[int]]],
    temperature: torch.Tensor,
    pressure: float,
) -> None:
    """Relax every set of every group to its tangent point, one batch per phase (in place)."""
    work: dict[str, list[tuple[torch.Tensor, slice, slice, list[int]]]] = defaultdict(list)
    for layout, z, members in layouts:
        for phase, ys in zip(layout.phases, layout.y_slices, strict=True):
            work[phase].append((z, ys, layout.mu, members))
    for phase, items in work.items():
        y = torch.cat([z[:, ys] for z, ys, _, _ in items])
        mu = torch.cat([z[:, mus] for z, _, mus, _ in items])
        rows = [n for *_, members in items for n in members]
        # Newton finishes the job: a start within ~1 J/mol of the tangent point will do.
        relaxed = relax_sets(models[phase], y, mu, temperature[rows], pressure, tolerance=1.0)
        start = 0
        for z, ys, _, members in items:
            z[:, ys] = relaxed[start : start + len(members)]
            start += len(members)


def _retry_without_smallest(
    models: Mapping[str, PhaseModel],
    sets: list[CompositionSet],
    n_elements: int,
    tried: set[tuple[str, ...]],
) -> list[CompositionSet] | None:
    """`sets` less the smallest set whose removal leaves a new, feasible arrangement."""
    for leaving in sorted(range(len(sets)), key=lambda i: sets[i].amount):
        rest = [s for i, s in enumerate(sets) if i != leaving]
        freedom = sum(1 + models[s.phase].degrees_of_freedom for s in rest)
        if rest and freedom >= n_elements and tuple(sorted(s.phase for s in rest)) not in tried:
            return rest
    return None


def _round(
    models: Mapping[str, PhaseModel],
    candidates: CandidatePoints,
    point_gibbs: torch.Tensor,
    gibbs_row: torch.Tensor,
    states: list[list[CompositionSet]],
    mu: torch.Tensor,
    results: list[PointResult | None],
    pending: list[int],
    temperature: torch.Tensor,
    bulk: torch.Tensor,
    pressure: float,
    max_iterations: int,
    history: list[_History],
) -> list[int]:
    """One round for the pending conditions: relax, Newton, then remove or add sets.

    `point_gibbs` (K, M) holds the candidates' G at each distinct temperature, row
    `gibbs_row[n]` for condition n. Conditions that share an arrangement of composition
    sets are solved as one batch; the relaxation and the stability check are batched over
    all conditions of the round.
    `history` holds what each condition has tried so far, to break cycles. Returns the
    conditions that need another round.
    """
    groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
    starts: dict[int, list[CompositionSet]] = {}
    for n in pending:
        states[n].sort(key=lambda s: s.phase)
        arrangement = tuple(s.phase for s in states[n])
        groups[arrangement].append(n)
        history[n].tried.add(arrangement)
        # Sets are never modified in place, so the start is a shallow copy.
        starts[n] = list(states[n])
    n_elements = mu.shape[1]
    freedom = {phase: 1 + model.degrees_of_freedom for phase, model in models.items()}
    layouts = []
    for phases, members in groups.items():
        layout = Layout(phases, models, n_elements)
        layouts.append((layout, layout.pack([states[n] for n in members], mu[members]), members))
    _relax_groups(models, layouts, temperature, pressure)
    next_pending: list[int] = []
    finished: list[tuple[int, list[CompositionSet], str]] = []  # (condition, sets, failure)
    least_squares: dict[int, int] = {}
    problems, problem_members = [], []
    for layout, z, members in layouts:
        # Sets of one phase that relaxed to the same tangent point are one set; keeping
        # both would make the Newton system singular.
        keep = []
        for row, (n, merge) in enumerate(
            zip(members, _mergeable_rows(layout, z).tolist(), strict=True)
        ):
            if merge:
                states[n] = _merge_sets(layout.unpack(z[row : row + 1])[0])
                next_pending.append(n)
            else:
                keep.append(row)
        if not keep:
            continue
        kept = [members[row] for row in keep]
        added = torch.tensor([[s.added for s in states[n]] for n in kept])
        problems.append(NewtonProblem(layout, z[keep], temperature[kept], bulk[kept], added))
        problem_members.append(kept)
    outcomes = newton(models, problems, pressure, max_iterations)
    for problem, members, outcome in zip(problems, problem_members, outcomes, strict=True):
        layout = problem.layout
        mu[members] = outcome.z[:, layout.mu]
        for row, (n, sets) in enumerate(zip(members, layout.unpack(outcome.z), strict=True)):
            leaving = int(outcome.removed[row])
            if leaving >= 0 and states[n][leaving].added:
                history[n].rejected.add(layout.phases)
            if leaving >= 0:
                states[n] = [s for i, s in enumerate(sets) if i != leaving]
                next_pending.append(n)
            else:
                finished.append((n, sets, "" if outcome.converged[row] else outcome.reasons[row]))
                least_squares[n] = int(outcome.least_squares_steps[row])
    checked = [n for n, _, failure in finished if not failure]
    unstable = (
        dict(
            zip(
                checked,
                unstable_sets(
                    models,
                    candidates,
                    point_gibbs[gibbs_row[checked]],
                    mu[checked],
                    temperature[checked],
                    pressure,
                    [sets for n, sets, failure in finished if not failure],
                ),
                strict=True,
            )
        )
        if checked
        else {}
    )
    done = [n for n, _, _ in finished]
    gibbs_of = dict(zip(done, (mu[done] * bulk[done]).sum(dim=1).tolist(), strict=True))
    mu_of = dict(zip(done, mu[done].unbind(0), strict=True))
    for n, sets, failure in finished:
        gibbs = gibbs_of[n]
        if failure:
            # Newton from this start failed: start again without its smallest set, as
            # long as the rest can still meet the mass balance (enough sets and internal
            # degrees of freedom; stoichiometric compounds alone usually cannot).
            retry = _retry_without_smallest(models, starts[n], n_elements, history[n].tried)
            if retry is not None:
                states[n] = retry
                next_pending.append(n)
                continue
            results[n] = PointResult(
                sets, mu_of[n], gibbs, False, failure, least_squares_steps=least_squares[n]
            )
            continue
        # The candidate is never one of `sets`: unstable_sets skips those.
        force, candidate = unstable[n]
        if candidate is not None and force < -ADDITION_TOL:
            added = tuple(sorted([*(s.phase for s in sets), candidate.phase]))
            if len(sets) < n_elements and added not in history[n].rejected:
                share = ADDED_AMOUNT
                scaled = [
                    CompositionSet(s.phase, s.site_fractions, s.amount * (1 - share)) for s in sets
                ]
                candidate.amount = share
                states[n] = [*scaled, candidate]
            else:
                # Full, or the candidate added beside these sets left again at once: let
                # it replace a set instead.
                states[n] = _exchange(models, sets, candidate)
            next_pending.append(n)
            continue
        # A set left with no amount (a line compound at exactly its composition beside
        # another phase) is not part of the equilibrium.
        present = [s for s in sets if s.amount > NEGLIGIBLE_AMOUNT] or sets
        fixed = sum(freedom[s.phase] for s in present)
        results[n] = PointResult(
            present, mu_of[n], gibbs, True, "", fixed >= n_elements, least_squares[n]
        )
    return next_pending


@torch.no_grad()
@paused_cycle_collection()
def equilibrium(
    models: Mapping[str, PhaseModel],
    temperature: torch.Tensor,
    bulk: torch.Tensor,
    *,
    pressure: float = STANDARD_PRESSURE,
    points_per_phase: int = 2000,
    max_iterations: int = 60,
    max_rounds: int = 16,
    seed: int = 0,
    restarts: int = 2,
) -> EquilibriumResult:
    """Equilibrium of `models` for N conditions: temperature (N,), bulk mole fractions (N, C).

    Elements are ordered as the models' `elements` (alphabetical). A condition that does
    not converge is solved again from a hull of freshly sampled points (seed + 1, ...), up
    to `restarts` times: near a hard start (two ordered sets and a third phase, say) the
    path of phase additions and removals depends on the sample, and on rounding. Python's
    cyclic garbage collector is paused during the call (`paused_cycle_collection`).
    """
    elements = next(iter(models.values())).elements
    bulk, temperature = _validated_conditions(elements, bulk, temperature)
    warn_outside_ranges(models, torch.unique(temperature).tolist())
    options = (pressure, points_per_phase, max_iterations, max_rounds)
    points = _solve(models, temperature, bulk, *options, seed)
    for attempt in range(1, restarts + 1):
        failed = [n for n, p in enumerate(points) if not p.converged]
        if not failed:
            break
        again = _solve(models, temperature[failed], bulk[failed], *options, seed + attempt)
        for n, point in zip(failed, again, strict=True):
            if point.converged:
                points[n] = point
    return EquilibriumResult(tuple(elements), temperature, bulk, points)


def _solve(
    models: Mapping[str, PhaseModel],
    temperature: torch.Tensor,
    bulk: torch.Tensor,
    pressure: float,
    points_per_phase: int,
    max_iterations: int,
    max_rounds: int,
    seed: int,
) -> list[PointResult]:
    """One pass of the solver: hull start from sampled points, then rounds."""
    unique, inverse = torch.unique(temperature, return_inverse=True)
    candidates = sample_points(
        models, points_per_phase, generator=torch.Generator().manual_seed(seed)
    )
    point_gibbs = candidates.gibbs(models, unique, pressure)  # (K, M), K temperatures
    hull = lower_convex_hull(point_gibbs, candidates.composition, bulk, rows=inverse)
    states = _initial_states(candidates, hull)
    mu = hull.chemical_potentials.clone()
    results: list[PointResult | None] = [None] * len(temperature)

    # A condition whose LP did not reach optimality has no trustworthy start: it is
    # reported unconverged (and `equilibrium` solves it again from a fresh sample).
    def unconverged(n: int, reason: str) -> PointResult:
        return PointResult(states[n], mu[n].clone(), float((mu[n] * bulk[n]).sum()), False, reason)

    for n in torch.nonzero(~hull.converged).flatten().tolist():
        results[n] = unconverged(n, "the lower convex hull (LP start) did not reach optimality")
    pending = [n for n in range(len(temperature)) if results[n] is None]
    history = [_History() for _ in range(len(temperature))]
    for _ in range(max_rounds):
        pending = _round(
            models,
            candidates,
            point_gibbs,
            inverse,
            states,
            mu,
            results,
            pending,
            temperature,
            bulk,
            pressure,
            max_iterations,
            history,
        )
        if not pending:
            break
    for n in pending:
        results[n] = unconverged(n, "phase set did not settle")
    missing = [n for n, r in enumerate(results) if r is None]
    if missing:  # every condition leaves _round with a result or stays pending
        raise AssertionError(f"equilibrium conditions {missing[:5]} got no result")
    return results  # type: ignore[return-value]

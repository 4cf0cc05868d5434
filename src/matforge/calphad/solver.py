"""Batched equilibrium at fixed T, P and bulk composition: hull start, then Newton on KKT.

For a set of composition sets s (a phase, its site fractions y_s, its amount phi_s in moles
of atoms) and chemical potentials mu, equilibrium is the solution of

    dG_s/dy_i - mu . dx_s/dy_i - eta_{s,l(i)} = 0      (each site fraction i of each set)
    G_s(y_s) - mu . x_s(y_s)                    = 0      (each set touches the tangent plane)
    sum_s phi_s x_s(y_s) - x_bulk                = 0      (mass balance, one per element)
    sum_{i in l} y_i - 1                         = 0      (each sublattice l of each set)

with eta the sublattice multipliers (per mole of the set). Starting from the lower convex
hull of sampled points (`hull`), Newton steps solve this square system for all conditions
that share one layout of composition sets at once (a batched dense solve). Sets whose
amount turns negative are removed; a candidate point below the refined tangent plane adds a
set (phase addition, and a second set of the same phase for miscibility gaps); then Newton
runs again, until neither happens.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from matforge.calphad.hull import CandidatePoints, lower_convex_hull, sample_points
from matforge.calphad.model import STANDARD_PRESSURE, PhaseDerivatives, PhaseModel
from matforge.calphad.ranges import warn_outside_ranges
from matforge.core.errors import DataError

MIN_SITE_FRACTION = 1e-12
#: Convergence: residuals of the energy equations (J/mol) and of the balances. Energy
#: residuals also get ENERGY_RTOL times the largest |mu|: G of an order-disorder model sums
#: terms of 1e5 J/mol, so its rounding noise is ~1e-6 J/mol.
ENERGY_TOL = 1e-6
ENERGY_RTOL = 2e-10
BALANCE_TOL = 1e-10
#: Sets with a converged amount below this are dropped from the reported equilibrium.
NEGLIGIBLE_AMOUNT = 1e-10
#: Largest change of any site fraction in one Newton step.
MAX_SITE_STEP = 0.2
#: Amount given to a newly added set (the others shrink in proportion): Newton restores
#: the mass balance, and a set that starts with some substance is not pushed out by the
#: first linearized steps, as one starting at zero amount often is.
ADDED_AMOUNT = 0.1
#: Newton steps during which a newly added set is not removed for reaching zero amount.
PROTECTED_ITERATIONS = 4
#: A candidate point this far (J/mol) below the tangent plane adds a composition set.
ADDITION_TOL = 1e-3
#: A phase whose best sampled point lies this far (J/mol) above the tangent plane is not
#: relaxed in the stability check: relaxation lowers a sample's driving force by far less.
RELAX_MARGIN = 5000.0
#: Sets of one phase closer than this (largest site-fraction difference) are one set.
SAME_SET_TOL = 0.05
#: The stability check relaxes each phase from this many sampled starts per condition,
#: each at least SPREAD (largest site-fraction difference) from the others and from the
#: phase's present sets, so a second basin (a miscibility gap, ordered beside disordered)
#: is found even when the best sample lies on a present set. Extra rows cost little: a
#: batched evaluation's time is mostly per operation, not per row.
STABILITY_STARTS = 6
SPREAD = 2 * SAME_SET_TOL


@dataclass
class CompositionSet:
    phase: str
    site_fractions: torch.Tensor  # (n_y,)
    amount: float
    #: Just added by the stability check: Newton lets its amount dip below zero for its
    #: first PROTECTED_ITERATIONS steps (see _newton).
    added: bool = False


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
        return torch.tensor([p.converged for p in self.points])

    @property
    def chemical_potentials(self) -> torch.Tensor:
        return torch.stack([p.chemical_potentials for p in self.points])


def _solve(matrix: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Batched solve; singular batch elements get a least-squares solution instead."""
    solution, info = torch.linalg.solve_ex(matrix, rhs)
    failed = info != 0
    if bool(failed.any()):
        solution[failed] = torch.linalg.lstsq(matrix[failed], rhs[failed]).solution
    return solution


class _Layout:
    """Where each unknown and equation of one arrangement of composition sets lives."""

    def __init__(
        self, phases: Sequence[str], models: Mapping[str, PhaseModel], n_elements: int
    ) -> None:
        self.phases = tuple(phases)
        self.models = [models[p] for p in phases]
        self.y_slices, self.eta_index, offset, eta = [], [], 0, 0
        for model in self.models:
            self.y_slices.append(slice(offset, offset + model.n_site_fractions))
            offset += model.n_site_fractions
            self.eta_index.append(torch.tensor(model.sublattice_of) + eta)
            eta += model.n_sublattices
        self.n_y, self.n_sets, self.n_elements, self.n_eta = offset, len(phases), n_elements, eta
        self.phi = slice(self.n_y, self.n_y + self.n_sets)
        self.mu = slice(self.phi.stop, self.phi.stop + n_elements)
        self.eta = slice(self.mu.stop, self.mu.stop + eta)
        self.size = self.eta.stop

    def pack(self, set_lists: Sequence[Sequence[CompositionSet]], mu: torch.Tensor) -> torch.Tensor:
        """Unknowns z (B, size) from each row's sets (ordered as `phases`) and mu (B, C).

        Sublattice multipliers start at zero: they enter the equations linearly.
        """
        z = torch.zeros(len(set_lists), self.size, dtype=torch.float64)
        for row, sets in enumerate(set_lists):
            for s, ys in enumerate(self.y_slices):
                z[row, ys] = sets[s].site_fractions
                z[row, self.phi.start + s] = sets[s].amount
        z[:, self.mu] = mu
        return z

    def system(
        self,
        z: torch.Tensor,
        temperature: torch.Tensor,
        bulk: torch.Tensor,
        pressure: float,
        derivatives: Sequence[PhaseDerivatives] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Residual F (B, D), Jacobian J (B, D, D), and a mask of rows at a site bound.

        `derivatives` (one per set, at z) may be given when already evaluated.
        """
        batch = z.shape[0]
        residual = torch.zeros(batch, self.size, dtype=z.dtype)
        jacobian = torch.zeros(batch, self.size, self.size, dtype=z.dtype)
        at_bound = torch.zeros(batch, self.size, dtype=torch.bool)
        mu = z[:, self.mu]
        balance = self.mu  # mass-balance rows share the indices of the mu columns
        residual[:, balance] = -bulk
        for s, (model, ys) in enumerate(zip(self.models, self.y_slices, strict=True)):
            y = z[:, ys]
            d = (
                derivatives[s]
                if derivatives is not None
                else model.derivatives(y, temperature, mu, pressure)
            )
            gibbs, x, dx, tangent_slope = d.gibbs, d.composition, d.composition_jacobian, d.gradient
            eta = z[:, self.eta][:, self.eta_index[s]]
            residual[:, ys] = tangent_slope - eta
            at_bound[:, ys] = y <= MIN_SITE_FRACTION * 1.000001
            jacobian[:, ys, ys] = d.hessian
            jacobian[:, ys, self.mu] = -dx.transpose(1, 2)
            eta_cols = self.eta.start + self.eta_index[s]
            jacobian[:, torch.arange(ys.start, ys.stop), eta_cols] = -1.0
            row = self.phi.start + s  # the tangent equation of set s
            residual[:, row] = gibbs - (mu * x).sum(dim=1)
            jacobian[:, row, ys] = tangent_slope
            jacobian[:, row, self.mu] = -x
            phi = z[:, self.phi.start + s]
            residual[:, balance] += phi[:, None] * x
            jacobian[:, balance, ys] += phi[:, None, None] * dx
            jacobian[:, balance, self.phi.start + s] = x
            sums = torch.zeros(batch, self.n_eta, dtype=z.dtype)
            sums.index_add_(1, self.eta_index[s], y)
            used = torch.unique(self.eta_index[s])
            residual[:, self.eta.start + used] = sums[:, used] - 1.0
            jacobian[:, self.eta.start + self.eta_index[s], torch.arange(ys.start, ys.stop)] = 1.0
        return residual, jacobian, at_bound

    def tolerance(self, z: torch.Tensor) -> torch.Tensor:
        """Per-row convergence tolerance of the residual, shape (B, size)."""
        tol = torch.full_like(z, BALANCE_TOL)
        scale = ENERGY_TOL + ENERGY_RTOL * z[:, self.mu].abs().amax(dim=1, keepdim=True)
        tol[:, : self.phi.stop] = scale
        return tol


@dataclass
class _History:
    """Per condition: arrangements of sets solved so far, and those whose newly added set
    Newton removed again at once (adding that candidate again would cycle)."""

    tried: set[tuple[str, ...]] = field(default_factory=set)
    rejected: set[tuple[str, ...]] = field(default_factory=set)


@dataclass
class _NewtonOutcome:
    z: torch.Tensor
    converged: torch.Tensor  # (B,) bool
    removed: torch.Tensor  # (B,) long: the set whose amount reached zero, or -1
    reasons: list[str]


@dataclass
class _NewtonProblem:
    """One layout's rows for Newton: unknowns z (B, D) and the conditions of each row."""

    layout: _Layout
    z: torch.Tensor
    temperature: torch.Tensor
    bulk: torch.Tensor
    #: (B, n_sets): sets just added, allowed below zero amount for a few steps.
    added: torch.Tensor


def _slice_derivatives(d: PhaseDerivatives, start: int, stop: int) -> PhaseDerivatives:
    return PhaseDerivatives(
        *(getattr(d, f.name)[start:stop] for f in dataclasses.fields(PhaseDerivatives))
    )


def _derivatives_by_phase(
    models: Mapping[str, PhaseModel],
    requests: list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]],
    pressure: float,
) -> list[PhaseDerivatives]:
    """Derivatives for each (phase, y, T, mu) request, one evaluation per phase.

    A generated derivative program costs about the same for 10 rows as for 1,000, so the
    sets of every layout that share a phase are evaluated together.
    """
    by_phase: dict[str, list[int]] = defaultdict(list)
    for i, (phase, *_) in enumerate(requests):
        by_phase[phase].append(i)
    results: list[PhaseDerivatives | None] = [None] * len(requests)
    for phase, indices in by_phase.items():
        parts = [requests[i] for i in indices]
        d = models[phase].derivatives(
            torch.cat([y for _, y, _, _ in parts]),
            torch.cat([t for _, _, t, _ in parts]),
            torch.cat([mu for _, _, _, mu in parts]),
            pressure,
        )
        start = 0
        for i, (_, y, _, _) in zip(indices, parts, strict=True):
            results[i] = _slice_derivatives(d, start, start + y.shape[0])
            start += y.shape[0]
    return results  # type: ignore[return-value]


def _newton(
    models: Mapping[str, PhaseModel],
    problems: Sequence[_NewtonProblem],
    pressure: float,
    max_iterations: int,
) -> list[_NewtonOutcome]:
    """Newton on the KKT systems of several layouts, stepped together.

    A row stops early when a set's amount would turn negative. Such a set leaves the
    equilibrium (phase removal): the step is cut where its amount reaches zero and the row
    is returned with `removed` naming the set, to be solved again without it. Keeping
    amounts non-negative along the path avoids converging to a common tangent with a
    negative amount, from which removing sets can leave an infeasible set.

    A set just added starts at a negligible amount, and the first linearized steps, taken
    while mu and the other sets adjust to it, may well point below zero; it may dip there
    for PROTECTED_ITERATIONS steps before that removes it.
    """
    states = [_NewtonState.start(problem) for problem in problems]
    for iteration in range(max_iterations):
        active = [state for state in states if not bool(state.done.all())]
        if not active:
            break
        requests = [
            (phase, state.z[:, ys], state.problem.temperature, state.z[:, state.problem.layout.mu])
            for state in active
            for phase, ys in zip(
                state.problem.layout.phases, state.problem.layout.y_slices, strict=True
            )
        ]
        derivatives = iter(_derivatives_by_phase(models, requests, pressure))
        for state in active:
            layout = state.problem.layout
            sets = [next(derivatives) for _ in range(layout.n_sets)]
            state.step(
                iteration,
                layout.system(
                    state.z, state.problem.temperature, state.problem.bulk, pressure, sets
                ),
            )
    return [state.outcome() for state in states]


@dataclass
class _NewtonState:
    problem: _NewtonProblem
    z: torch.Tensor
    converged: torch.Tensor
    broken: torch.Tensor
    removed: torch.Tensor
    protected: torch.Tensor
    done: torch.Tensor

    @classmethod
    def start(cls, problem: _NewtonProblem) -> _NewtonState:
        batch = problem.z.shape[0]
        z = problem.z.clone()
        sites = slice(0, problem.layout.n_y)  # the site fractions of all sets come first
        # Site fractions of exactly 0 (endmember starts) make y*log(y) non-differentiable.
        z[:, sites] = z[:, sites].clamp(min=MIN_SITE_FRACTION)
        no = torch.zeros(batch, dtype=torch.bool)
        return cls(
            problem,
            z,
            converged=no.clone(),
            broken=no.clone(),
            removed=torch.full((batch,), -1, dtype=torch.long),
            protected=problem.added.clone(),
            done=no.clone(),
        )

    def step(self, iteration: int, system: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
        layout, z = self.problem.layout, self.z
        residual, jacobian, at_bound = system
        if iteration == PROTECTED_ITERATIONS:
            self.protected = torch.zeros_like(self.protected)
        sites = slice(0, layout.n_y)
        self.broken |= ~(
            torch.isfinite(residual).all(dim=1) & torch.isfinite(jacobian).all(dim=(1, 2))
        )
        # A site fraction held at its lower bound may keep a positive gradient (KKT).
        effective = torch.where(at_bound & (residual > 0), torch.zeros_like(residual), residual)
        self.converged = (effective.abs() <= layout.tolerance(z)).all(dim=1) & ~self.broken
        # Converged with a protected set below zero: that set leaves after all.
        lowest, most_negative = z[:, layout.phi].min(dim=1)
        negative = self.converged & (lowest < -NEGLIGIBLE_AMOUNT) & (self.removed < 0)
        self.removed = torch.where(negative, most_negative, self.removed)
        done = self.converged | self.broken | (self.removed >= 0)
        self.done = done
        if bool(done.all()):
            return
        safe_jacobian = torch.where(
            done[:, None, None], torch.eye(layout.size, dtype=z.dtype), jacobian
        )
        safe_residual = torch.where(done[:, None], torch.zeros_like(residual), residual)
        # Hessian entries grow like RT/y for small site fractions (condition numbers up to
        # 1e19); scaling site-fraction rows and columns by y makes those blocks O(RT).
        scale_vec = torch.ones_like(z)
        scale_vec[:, sites] = z[:, sites]
        scaled = scale_vec[:, :, None] * safe_jacobian * scale_vec[:, None, :]
        step = _solve(scaled, -(scale_vec * safe_residual).unsqueeze(-1))
        step = scale_vec * step.squeeze(-1)
        # Far from the solution a full step can throw site fractions across the whole
        # simplex; limiting their change keeps Newton in the basin it started in.
        largest = step[:, sites].abs().amax(dim=1)
        alpha = MAX_SITE_STEP / largest.clamp(min=MAX_SITE_STEP)
        phi, phi_step = z[:, layout.phi], step[:, layout.phi]
        to_zero = torch.where(
            (phi_step < 0) & ~self.protected,
            phi.clamp(min=0) / -phi_step,
            torch.full_like(phi, torch.inf),
        )
        first, leaving = to_zero.min(dim=1)
        hits = (first < alpha) & ~done & (layout.n_sets > 1)
        alpha = torch.where(hits, first, alpha)
        self.removed = torch.where(hits, leaving, self.removed)
        z = z + alpha.unsqueeze(-1) * step
        z[:, sites] = z[:, sites].clamp(min=MIN_SITE_FRACTION)
        self.z = z

    def outcome(self) -> _NewtonOutcome:
        reasons = [
            ""
            if c
            else ("non-finite Gibbs energy or derivative" if b else "Newton did not converge")
            for c, b in zip(self.converged.tolist(), self.broken.tolist(), strict=True)
        ]
        return _NewtonOutcome(self.z, self.converged & (self.removed < 0), self.removed, reasons)


def _shifted_newton_step(
    hessian: torch.Tensor, gradient: torch.Tensor, constraint: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Step dy of the sublattice-constrained Newton system, Hessian shifted to be PD."""
    n, n_sub = y.shape[1], constraint.shape[0]
    eye = torch.eye(n, dtype=y.dtype, device=y.device)
    lowest = torch.linalg.eigvalsh(hessian)[:, 0]
    shift = (1e-6 * hessian.diagonal(dim1=1, dim2=2).abs().amax(dim=1) - lowest).clamp(min=0)
    hessian = hessian + shift[:, None, None] * eye
    # Variables u with dy = y du: the scaled Hessian y H y is O(RT) (see _newton).
    kkt = torch.zeros(y.shape[0], n + n_sub, n + n_sub, dtype=y.dtype, device=y.device)
    kkt[:, :n, :n] = y[:, :, None] * hessian * y[:, None, :]
    kkt[:, :n, n:] = (constraint[None] * y[:, None, :]).transpose(1, 2)
    kkt[:, n:, :n] = constraint[None] * y[:, None, :]
    rhs = torch.cat([-y * gradient, y.new_zeros(y.shape[0], n_sub)], dim=1)
    return _solve(kkt, rhs.unsqueeze(-1)).squeeze(-1)[:, :n] * y


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


def _relax_sets(
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


def _unstable_sets(
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
    driving = point_gibbs - mu @ candidates.composition.T  # (B, M)
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
        # Present sets of this phase, layered: layer k holds each condition's k-th set, so
        # that no condition appears twice in one layer.
        layers = _present_layers(phase, present or [])
        for rows, sites in layers:
            masked[rows] = masked[rows].masked_fill(_near(points, sites), torch.inf)
        starts, start_rows = [], []
        for _ in range(STABILITY_STARTS):
            value, local = masked.min(dim=1)
            rows = torch.nonzero(value < RELAX_MARGIN).flatten()
            if rows.numel() == 0:
                break
            chosen = points[local[rows]]
            starts.append(chosen)
            start_rows.append(rows)
            # The next start lies away from this one: another basin of G - mu . x.
            masked[rows] = masked[rows].masked_fill(_near(points, chosen), torch.inf)
        if not starts:
            continue
        rows = torch.cat(start_rows)
        model = models[phase]
        y = _relax_sets(
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
        # Rows are unique within each start's chunk: update the best one chunk by chunk.
        start = 0
        for chunk in start_rows:
            stop = start + chunk.numel()
            better = force[start:stop] < best_force[chunk]
            best_force[chunk[better]] = force[start:stop][better]
            for i in torch.nonzero(better).flatten().tolist():
                best_y[int(chunk[i])] = y[start + i]
                best_phase[int(chunk[i])] = phase
            start = stop
    return [
        (
            float(best_force[b]),
            CompositionSet(best_phase[b], best_y[b], 1e-9, added=True)  # type: ignore[arg-type]
            if best_y[b] is not None
            else None,
        )
        for b in range(batch)
    ]


def _present_layers(
    phase: str, present: Sequence[Sequence[CompositionSet]]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(conditions, site fractions) of the k-th present set of `phase`, for k = 0, 1, ..."""
    layers: list[tuple[list[int], list[torch.Tensor]]] = []
    for b, sets in enumerate(present):
        k = 0
        for s in sets:
            if s.phase != phase:
                continue
            if k == len(layers):
                layers.append(([], []))
            layers[k][0].append(b)
            layers[k][1].append(s.site_fractions)
            k += 1
    return [(torch.tensor(rows), torch.stack(sites)) for rows, sites in layers if rows]


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


def _same_set(phase: str, site_fractions: torch.Tensor, other: CompositionSet) -> bool:
    """Whether (phase, site_fractions) is `other`, to within SAME_SET_TOL."""
    return (
        phase == other.phase
        and float((site_fractions - other.site_fractions).abs().max()) < SAME_SET_TOL
    )


def _merge_sets(sets: list[CompositionSet]) -> list[CompositionSet]:
    """Merge composition sets of one phase closer than SAME_SET_TOL (amounts add up)."""
    merged: list[CompositionSet] = []
    for current in sets:
        for existing in merged:
            if _same_set(current.phase, current.site_fractions, existing):
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


def _initial_sets(
    candidates: CandidatePoints, points: torch.Tensor, weights: torch.Tensor
) -> list[CompositionSet]:
    """Composition sets from the hull points of one condition (artificial points dropped)."""
    sets: list[CompositionSet] = []
    for index, weight in zip(points.tolist(), weights.tolist(), strict=True):
        if index < 0 or weight <= 1e-12:
            continue
        phase_index = int(candidates.phase_of[index])
        local = index - int((candidates.phase_of < phase_index).sum())
        y = candidates.site_fractions[phase_index][local]
        sets.append(CompositionSet(candidates.phases[phase_index], y.clone(), weight))
    return _merge_sets(sets)


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
    layouts: list[tuple[_Layout, torch.Tensor, list[int]]],
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
        relaxed = _relax_sets(models[phase], y, mu, temperature[rows], pressure, tolerance=1.0)
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


def _sets_of(layout: _Layout, z: torch.Tensor, row: int) -> list[CompositionSet]:
    """The composition sets of one row of unknowns z."""
    return [
        CompositionSet(phase, z[row, ys].clone(), float(z[row, layout.phi.start + s]))
        for s, (phase, ys) in enumerate(zip(layout.phases, layout.y_slices, strict=True))
    ]


def _round(
    models: Mapping[str, PhaseModel],
    candidates: CandidatePoints,
    point_gibbs: torch.Tensor,
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

    Conditions that share an arrangement of composition sets are solved as one batch; the
    relaxation and the stability check are batched over all conditions of the round.
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
        starts[n] = [CompositionSet(s.phase, s.site_fractions.clone(), s.amount) for s in states[n]]
    n_elements = mu.shape[1]
    layouts = []
    for phases, members in groups.items():
        layout = _Layout(phases, models, n_elements)
        layouts.append((layout, layout.pack([states[n] for n in members], mu[members]), members))
    _relax_groups(models, layouts, temperature, pressure)
    next_pending: list[int] = []
    finished: list[tuple[int, list[CompositionSet], str]] = []  # (condition, sets, failure)
    problems, problem_members = [], []
    for layout, z, members in layouts:
        # Sets of one phase that relaxed to the same tangent point are one set; keeping
        # both would make the Newton system singular.
        keep = []
        for row, n in enumerate(members):
            relaxed = _sets_of(layout, z, row)
            merged = _merge_sets(relaxed)
            if len(merged) < len(relaxed):
                states[n] = merged
                next_pending.append(n)
            else:
                keep.append(row)
        if not keep:
            continue
        kept = [members[row] for row in keep]
        added = torch.tensor([[s.added for s in states[n]] for n in kept])
        problems.append(_NewtonProblem(layout, z[keep], temperature[kept], bulk[kept], added))
        problem_members.append(kept)
    outcomes = _newton(models, problems, pressure, max_iterations)
    for problem, members, outcome in zip(problems, problem_members, outcomes, strict=True):
        layout = problem.layout
        for row, n in enumerate(members):
            mu[n] = outcome.z[row, layout.mu]
            sets = _sets_of(layout, outcome.z, row)
            leaving = int(outcome.removed[row])
            if leaving >= 0 and states[n][leaving].added:
                history[n].rejected.add(layout.phases)
            if leaving >= 0:
                states[n] = [s for i, s in enumerate(sets) if i != leaving]
                next_pending.append(n)
            else:
                finished.append((n, sets, "" if outcome.converged[row] else outcome.reasons[row]))
    checked = [n for n, _, failure in finished if not failure]
    unstable = (
        dict(
            zip(
                checked,
                _unstable_sets(
                    models,
                    candidates,
                    point_gibbs[checked],
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
    for n, sets, failure in finished:
        gibbs = float((mu[n] * bulk[n]).sum())
        if failure:
            # Newton from this start failed: start again without its smallest set, as
            # long as the rest can still meet the mass balance (enough sets and internal
            # degrees of freedom; stoichiometric compounds alone usually cannot).
            retry = _retry_without_smallest(models, starts[n], n_elements, history[n].tried)
            if retry is not None:
                states[n] = retry
                next_pending.append(n)
                continue
            results[n] = PointResult(sets, mu[n].clone(), gibbs, False, failure)
            continue
        # The candidate is never one of `sets`: _unstable_sets skips those.
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
        fixed = sum(1 + models[s.phase].degrees_of_freedom for s in present)
        results[n] = PointResult(present, mu[n].clone(), gibbs, True, "", fixed >= n_elements)
    return next_pending


@torch.no_grad()
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
) -> EquilibriumResult:
    """Equilibrium of `models` for N conditions: temperature (N,), bulk mole fractions (N, C).

    Elements are ordered as the models' `elements` (alphabetical).
    """
    elements = next(iter(models.values())).elements
    bulk, temperature = _validated_conditions(elements, bulk, temperature)
    unique, inverse = torch.unique(temperature, return_inverse=True)
    warn_outside_ranges(models, unique.tolist())
    candidates = sample_points(
        models, points_per_phase, generator=torch.Generator().manual_seed(seed)
    )
    point_gibbs = candidates.gibbs(models, unique, pressure)[inverse]
    hull = lower_convex_hull(point_gibbs, candidates.composition, bulk)
    states = [
        _initial_sets(candidates, hull.points[n], hull.weights[n]) for n in range(len(temperature))
    ]
    mu = hull.chemical_potentials.clone()
    results: list[PointResult | None] = [None] * len(temperature)
    pending = list(range(len(temperature)))
    history = [_History() for _ in pending]
    for _ in range(max_rounds):
        pending = _round(
            models,
            candidates,
            point_gibbs,
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
        results[n] = PointResult(
            states[n],
            mu[n].clone(),
            float((mu[n] * bulk[n]).sum()),
            False,
            "phase set did not settle",
        )
    return EquilibriumResult(
        tuple(elements), temperature, bulk, [r for r in results if r is not None]
    )

"""Newton's method on the KKT equilibrium conditions of composition sets (batched).

See `solver` for the equations. A `Layout` places the unknowns (site fractions, amounts,
chemical potentials, sublattice multipliers) of one arrangement of composition sets;
`newton` steps many layouts together, evaluating each phase's derivatives once per step.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from matforge.calphad.model import PhaseDerivatives, PhaseModel

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
#: Newton steps during which a newly added set is not removed for reaching zero amount.
PROTECTED_ITERATIONS = 4


@dataclass
class CompositionSet:
    phase: str
    site_fractions: torch.Tensor  # (n_y,)
    amount: float
    #: Just added by the stability check: Newton lets its amount dip below zero for its
    #: first PROTECTED_ITERATIONS steps (see newton).
    added: bool = False


def solve_batched(matrix: torch.Tensor, rhs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched solve: (solution, singular). Singular batch elements (LU breaks down) get
    the least-squares solution instead, and `singular` (B,) marks them, so that callers
    can report it per point."""
    solution, info = torch.linalg.solve_ex(matrix, rhs)
    singular = info != 0
    if bool(singular.any()):
        solution[singular] = torch.linalg.lstsq(matrix[singular], rhs[singular]).solution
    return solution, singular


class Layout:
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
        #: Layouts with equal structure have the same KKT system shape (see newton).
        shapes = [(model.n_site_fractions, tuple(model.sublattice_of)) for model in self.models]
        self.structure = (*shapes, n_elements)

    def pack(self, set_lists: Sequence[Sequence[CompositionSet]], mu: torch.Tensor) -> torch.Tensor:
        """Unknowns z (B, size) from each row's sets (ordered as `phases`) and mu (B, C).

        Sublattice multipliers start at zero: they enter the equations linearly.
        """
        z = torch.zeros(len(set_lists), self.size, dtype=torch.float64)
        for s, ys in enumerate(self.y_slices):
            z[:, ys] = torch.stack([sets[s].site_fractions for sets in set_lists])
        z[:, self.phi] = torch.tensor(
            [[c.amount for c in sets] for sets in set_lists], dtype=torch.float64
        ).reshape(len(set_lists), self.n_sets)
        z[:, self.mu] = mu
        return z

    def unpack(self, z: torch.Tensor) -> list[list[CompositionSet]]:
        """Each row's composition sets (copies, ordered as `phases`)."""
        columns = [z[:, ys].clone().unbind(0) for ys in self.y_slices]
        amounts = z[:, self.phi].tolist()
        return [
            [
                CompositionSet(phase, column[row], amount)
                for phase, column, amount in zip(self.phases, columns, row_amounts, strict=True)
            ]
            for row, row_amounts in enumerate(amounts)
        ]

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
class NewtonOutcome:
    z: torch.Tensor
    converged: torch.Tensor  # (B,) bool
    removed: torch.Tensor  # (B,) long: the set whose amount reached zero, or -1
    reasons: list[str]
    #: (B,) long: Newton steps whose Jacobian was singular (solved by least squares).
    least_squares_steps: torch.Tensor


@dataclass
class NewtonProblem:
    """One layout's rows for Newton: unknowns z (B, D) and the conditions of each row."""

    layout: Layout
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


def _clusters(problems: Sequence[NewtonProblem]) -> list[list[int]]:
    """Problems whose layouts have the same structure, grouped (indices into problems).

    The KKT system depends on each set's phase only through its derivatives, so layouts
    whose sets have the same site-fraction and sublattice shapes (FCC + LIQUID and
    FCC + HCP in a binary) are stepped as one batch.
    """
    clusters: dict[tuple, list[int]] = defaultdict(list)
    for i, problem in enumerate(problems):
        clusters[problem.layout.structure].append(i)
    return list(clusters.values())


def _joined(problems: Sequence[NewtonProblem]) -> NewtonProblem:
    if len(problems) == 1:
        return problems[0]
    return NewtonProblem(
        problems[0].layout,
        torch.cat([p.z for p in problems]),
        torch.cat([p.temperature for p in problems]),
        torch.cat([p.bulk for p in problems]),
        torch.cat([p.added for p in problems]),
    )


def newton(
    models: Mapping[str, PhaseModel],
    problems: Sequence[NewtonProblem],
    pressure: float,
    max_iterations: int,
) -> list[NewtonOutcome]:
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
    clusters = _clusters(problems)
    states = [_NewtonState.start(_joined([problems[i] for i in c])) for c in clusters]
    runs = [_phase_runs([problems[i] for i in c]) for c in clusters]
    for iteration in range(max_iterations):
        active = [
            (state, slots)
            for state, slots in zip(states, runs, strict=True)
            if not bool(state.done.all())
        ]
        if not active:
            break
        requests = [
            (
                phase,
                state.z[start:stop, ys],
                state.problem.temperature[start:stop],
                state.z[start:stop, state.problem.layout.mu],
            )
            for state, slots in active
            for ys, slot in zip(state.problem.layout.y_slices, slots, strict=True)
            for phase, start, stop in slot
        ]
        derivatives = iter(_derivatives_by_phase(models, requests, pressure))
        for state, slots in active:
            sets = [_joined_derivatives([next(derivatives) for _ in slot]) for slot in slots]
            state.step(
                iteration,
                state.problem.layout.system(
                    state.z, state.problem.temperature, state.problem.bulk, pressure, sets
                ),
            )
    outcomes: list[NewtonOutcome | None] = [None] * len(problems)
    for state, cluster in zip(states, clusters, strict=True):
        whole, start = state.outcome(), 0
        for i in cluster:
            stop = start + problems[i].z.shape[0]
            outcomes[i] = NewtonOutcome(
                whole.z[start:stop],
                whole.converged[start:stop],
                whole.removed[start:stop],
                whole.reasons[start:stop],
                whole.least_squares_steps[start:stop],
            )
            start = stop
    return outcomes  # type: ignore[return-value]


def _phase_runs(problems: Sequence[NewtonProblem]) -> list[list[tuple[str, int, int]]]:
    """Per set slot of joined problems: (phase, first row, end row) runs of one phase.

    Consecutive problems with the same phase in a slot form one run, so its derivatives
    are requested (and joined again) once.
    """
    slots: list[list[tuple[str, int, int]]] = [[] for _ in problems[0].layout.phases]
    start = 0
    for problem in problems:
        stop = start + problem.z.shape[0]
        for slot, phase in zip(slots, problem.layout.phases, strict=True):
            if slot and slot[-1][0] == phase:
                slot[-1] = (phase, slot[-1][1], stop)
            else:
                slot.append((phase, start, stop))
        start = stop
    return slots


def _joined_derivatives(parts: Sequence[PhaseDerivatives]) -> PhaseDerivatives:
    if len(parts) == 1:
        return parts[0]
    return PhaseDerivatives(
        *(
            torch.cat([getattr(d, f.name) for d in parts])
            for f in dataclasses.fields(PhaseDerivatives)
        )
    )


@dataclass
class _NewtonState:
    problem: NewtonProblem
    z: torch.Tensor
    converged: torch.Tensor
    broken: torch.Tensor
    removed: torch.Tensor
    protected: torch.Tensor
    done: torch.Tensor
    least_squares_steps: torch.Tensor

    @classmethod
    def start(cls, problem: NewtonProblem) -> _NewtonState:
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
            least_squares_steps=torch.zeros(batch, dtype=torch.long),
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
        step, singular = solve_batched(scaled, -(scale_vec * safe_residual).unsqueeze(-1))
        self.least_squares_steps += (singular & ~done).long()
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

    def outcome(self) -> NewtonOutcome:
        reasons = [
            ""
            if c
            else ("non-finite Gibbs energy or derivative" if b else "Newton did not converge")
            for c, b in zip(self.converged.tolist(), self.broken.tolist(), strict=True)
        ]
        return NewtonOutcome(
            self.z,
            self.converged & (self.removed < 0),
            self.removed,
            reasons,
            self.least_squares_steps,
        )

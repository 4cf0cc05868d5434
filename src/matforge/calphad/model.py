"""Phase models: pycalphad's symbolic Gibbs energy of each phase, as a batched torch function.

pycalphad's `Model` assembles the molar Gibbs energy of a phase from a database: reference
(pure-element) terms, ideal mixing on each sublattice, Redlich-Kister excess terms including
ternary ones, compound-energy terms of ordered and intermetallic phases, the order-disorder
partitioning, the Inden-Hillert-Jarl magnetic contribution and piecewise temperature ranges.
matforge keeps that model as pycalphad builds it and compiles it to torch (see `codegen`), so
G and the phase's composition x(y) can be evaluated for N points at once, in float64, on any
device, with autograd.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from matforge.calphad.codegen import TorchProgram, compile_expressions, program_key
from matforge.calphad.database import database_elements, load_database
from matforge.calphad.ranges import phase_temperature_range
from matforge.core.errors import DataError

if TYPE_CHECKING:
    from pycalphad import Database

#: Standard pressure (Pa), the default of every evaluation.
STANDARD_PRESSURE = 101325.0


@dataclass(frozen=True)
class PhaseDerivatives:
    """Analytic derivatives of one phase at N points, for chemical potentials mu.

    With L = G - mu . x (the driving-force function of the phase): gradient dL/dy (N, n),
    hessian d2L/dy2 (N, n, n), composition_jacobian dx/dy (N, C, n), gibbs_dt dG/dT (N,),
    gradient_dt d2L/dy dT (N, n).
    """

    gibbs: torch.Tensor
    composition: torch.Tensor
    gradient: torch.Tensor
    hessian: torch.Tensor
    composition_jacobian: torch.Tensor
    gibbs_dt: torch.Tensor
    gradient_dt: torch.Tensor


@dataclass(frozen=True)
class PhaseModel:
    """One phase's Gibbs energy G(y, T, P) (J per mole of atoms) and composition x(y).

    Site fractions are ordered as `site_fractions` (sublattice by sublattice, constituents
    sorted, as pycalphad orders them); `sublattice_of[i]` is the sublattice of site fraction
    i, whose fractions sum to one on each sublattice.
    """

    name: str
    elements: tuple[str, ...]
    constituents: tuple[tuple[str, ...], ...]
    site_ratios: tuple[float | str, ...]
    site_fractions: tuple[str, ...]
    sublattice_of: tuple[int, ...]
    program: TorchProgram = field(repr=False)
    #: The symbolic G, x and inputs (y..., T, P) the programs are compiled from.
    expressions: tuple[object, ...] = field(repr=False, compare=False, default=())
    symbols: tuple[object, ...] = field(repr=False, compare=False, default=())
    #: Temperatures (K) covered by the database's pieces of every function the model uses;
    #: outside, the first or last piece is extrapolated.
    temperature_range: tuple[float, float] = (0.0, math.inf)

    @property
    def n_site_fractions(self) -> int:
        return len(self.site_fractions)

    @property
    def n_sublattices(self) -> int:
        return max(self.sublattice_of) + 1

    @property
    def degrees_of_freedom(self) -> int:
        """Independent site fractions (each sublattice's fractions sum to one)."""
        return self.n_site_fractions - self.n_sublattices

    def sample_site_fractions(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        device: str | None = None,
        power: float = 1.0,
    ) -> torch.Tensor:
        """n random points on each sublattice's simplex, shape (N, n_site_fractions).

        Normalized exponential draws are Dirichlet(1, ..., 1), the uniform distribution on
        a simplex; raising the draws to `power` > 1 first moves the points towards the
        simplex's faces and corners.
        """
        draws = torch.empty(n, self.n_site_fractions, dtype=torch.float64, device=device)
        draws.exponential_(generator=generator)
        if power != 1.0:
            draws = draws**power
        index = torch.tensor(self.sublattice_of, device=draws.device)
        totals = torch.zeros(n, self.n_sublattices, dtype=draws.dtype, device=draws.device)
        totals.index_add_(1, index, draws)
        return draws / totals[:, index]

    def _inputs(
        self, y: torch.Tensor, temperature: torch.Tensor | float, pressure: torch.Tensor | float
    ) -> torch.Tensor:
        if y.ndim != 2 or y.shape[1] != self.n_site_fractions:
            raise DataError(
                f"phase {self.name}: expected site fractions of shape (N, "
                f"{self.n_site_fractions}) ordered as {list(self.site_fractions)}, "
                f"got {tuple(y.shape)}"
            )
        n = y.shape[0]
        t = torch.as_tensor(temperature, dtype=y.dtype, device=y.device).expand(n)
        p = torch.as_tensor(pressure, dtype=y.dtype, device=y.device).expand(n)
        return torch.cat([y, t[:, None], p[:, None]], dim=1)

    def evaluate(
        self,
        y: torch.Tensor,
        temperature: torch.Tensor | float,
        pressure: torch.Tensor | float = STANDARD_PRESSURE,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Molar Gibbs energy (N,) and mole fractions of `elements` (N, n_elements)."""
        outputs = self.program.stacked(self._inputs(y, temperature, pressure))
        return outputs[:, 0], outputs[:, 1:]

    def gibbs(
        self,
        y: torch.Tensor,
        temperature: torch.Tensor | float,
        pressure: torch.Tensor | float = STANDARD_PRESSURE,
    ) -> torch.Tensor:
        """Molar Gibbs energy, J/mol of atoms, shape (N,)."""
        return self.evaluate(y, temperature, pressure)[0]

    def composition(self, y: torch.Tensor) -> torch.Tensor:
        """Mole fractions of `elements` in the phase, shape (N, n_elements)."""
        return self.evaluate(y, 1000.0)[1]

    @cached_property
    def _derivative_program(self) -> TorchProgram:
        """G, x and the derivatives Newton needs, differentiated symbolically once.

        Symbolic derivatives with common subexpressions shared cost one generated call per
        batch, where autograd would need one backward pass per Hessian row.
        """
        import symengine

        n, c = self.n_site_fractions, len(self.elements)
        gibbs, *moles = self.expressions
        y, temperature = self.symbols[:n], self.symbols[n]
        mu = symengine.symbols([f"_MU{i}" for i in range(c)])
        lagrangian = gibbs - sum((m * x for m, x in zip(mu, moles, strict=True)), 0)
        gradient = [lagrangian.diff(s) for s in y]
        hessian = [gradient[i].diff(y[j]) for i in range(n) for j in range(i, n)]
        jacobian = [x.diff(s) for x in moles for s in y]
        outputs = [
            gibbs,
            *moles,
            *gradient,
            *hessian,
            *jacobian,
            gibbs.diff(temperature),
            *[g.diff(temperature) for g in gradient],
        ]
        name = f"phase_{self.name.replace('-', '_')}_derivatives"
        key = program_key(name, [str(e) for e in self.expressions], [str(s) for s in self.symbols])
        return compile_expressions(outputs, [*self.symbols, *mu], name=name, key=key)

    def derivatives(
        self,
        y: torch.Tensor,
        temperature: torch.Tensor | float,
        chemical_potentials: torch.Tensor,
        pressure: torch.Tensor | float = STANDARD_PRESSURE,
    ) -> PhaseDerivatives:
        """G, x and analytic first and second derivatives at N points (no autograd graph)."""
        n, c = self.n_site_fractions, len(self.elements)
        values = torch.cat([self._inputs(y, temperature, pressure), chemical_potentials], dim=1)
        out = self._derivative_program.stacked(values.detach())
        cursor = 1 + c
        gradient = out[:, cursor : cursor + n]
        cursor += n
        rows, cols = torch.triu_indices(n, n, device=out.device)
        hessian = out.new_empty(out.shape[0], n, n)
        upper = out[:, cursor : cursor + rows.numel()]
        hessian[:, rows, cols] = upper
        hessian[:, cols, rows] = upper
        cursor += rows.numel()
        jacobian = out[:, cursor : cursor + c * n].reshape(-1, c, n)
        cursor += c * n
        return PhaseDerivatives(
            gibbs=out[:, 0],
            composition=out[:, 1 : 1 + c],
            gradient=gradient,
            hessian=hessian,
            composition_jacobian=jacobian,
            gibbs_dt=out[:, cursor],
            gradient_dt=out[:, cursor + 1 : cursor + 1 + n],
        )


def _site_ratio(ratio: object) -> float | str:
    try:
        return float(ratio)  # type: ignore[arg-type]
    except (TypeError, RuntimeError):
        return str(ratio)


def _phase_model(
    db: Database, species: Sequence[str], phase: str, elements: Sequence[str]
) -> PhaseModel:
    from pycalphad import Model
    from pycalphad import variables as v

    try:
        model = Model(db, list(species), phase)
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"pycalphad cannot build phase {phase} for {'-'.join(elements)}: {exc}; "
            f"leave it out by listing the phases to use"
        ) from None
    site_fractions = list(model.site_fractions)
    constituents: list[tuple[str, ...]] = []
    sublattice_of: list[int] = []
    for index, sublattice in enumerate(model.constituents):
        names = tuple(sorted(str(s.name) for s in sublattice))
        constituents.append(names)
        sublattice_of += [index] * len(names)
    if len(sublattice_of) != len(site_fractions):
        raise DataError(f"phase {phase}: unexpected site-fraction layout {site_fractions}")
    inputs = [*site_fractions, v.T, v.P]
    expressions = [model.GM] + [model.moles(el) for el in elements]
    undefined = sorted({s for e in expressions for s in e.free_symbols} - set(inputs), key=str)
    if undefined:
        # A TDB may reference a FUNCTION it never defines; pycalphad evaluates it as zero.
        warnings.warn(
            f"phase {phase}: the database uses {[str(s) for s in undefined]} without defining "
            f"them; they are taken as 0, as pycalphad does",
            stacklevel=3,
        )
        zero = dict.fromkeys(undefined, 0)
        expressions = [e.subs(zero) for e in expressions]
    program = compile_expressions(expressions, inputs, name=f"phase_{phase.replace('-', '_')}")
    return PhaseModel(
        name=phase,
        elements=tuple(elements),
        constituents=tuple(constituents),
        # Ionic-liquid models have composition-dependent ratios: kept as expression text.
        site_ratios=tuple(_site_ratio(r) for r in model.site_ratios),
        site_fractions=tuple(
            f"{s.phase_name}:{s.sublattice_index}:{s.species.name}" for s in site_fractions
        ),
        sublattice_of=tuple(sublattice_of),
        program=program,
        expressions=tuple(expressions),
        symbols=tuple(inputs),
        temperature_range=phase_temperature_range(db, phase, species),
    )


def _check_names(
    requested: Iterable[str], available: Iterable[str], what: str, source: str
) -> list[str]:
    available_set = set(available)
    names = [str(n).upper() for n in requested]
    unknown = [n for n in names if n not in available_set]
    if unknown:
        raise DataError(
            f"unknown {what} {unknown} for {source}; it has: {', '.join(sorted(available_set))}"
        )
    return names


def build_phase_models(
    database: str | Path | Database,
    elements: Sequence[str],
    phases: Sequence[str] | None = None,
) -> dict[str, PhaseModel]:
    """Phase models of `elements` (vacancies added) for `phases` (default: all that apply).

    As in pycalphad, phases none of whose constituents are among the elements are dropped,
    and so are disordered parts that pycalphad models through their ordered phase.
    """
    from pycalphad.core.utils import filter_phases, unpack_species

    db = database if not isinstance(database, (str, Path)) else load_database(database)
    source = str(database) if isinstance(database, (str, Path)) else "the database"
    names = _check_names(elements, database_elements(db), "element(s)", source)
    if len(set(names)) != len(names):
        raise DataError(f"elements {names} contain duplicates")
    species_names = sorted(names) + (["VA"] if "VA" in db.elements else [])
    candidates = None
    if phases is not None:
        candidates = _check_names(phases, db.phases, "phase(s)", source)
    species = unpack_species(db, species_names)
    chosen = filter_phases(db, species, candidates)
    if not chosen:
        raise DataError(f"no phase of {source} is made of {names}")
    return {
        phase: _phase_model(db, species_names, phase, sorted(names)) for phase in sorted(chosen)
    }

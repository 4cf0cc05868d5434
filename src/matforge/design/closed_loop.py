"""The closed loop's oracle: strength from atoms, feasibility from CALPHAD.

`AtomisticOracle` answers the design loop (`design.loop.run_loop`) for compositions on a
grid: the Varvenne-Curtin yield strength (`design.strength.strength_from_properties`) from
the lattice constant, elastic constants and misfit volumes that `LearnedProperties`
computes with a potential trained by active learning as the design runs, and feasibility
(single FCC) from a CALPHAD model. `AtomisticSettings` is the design job's
`oracle.atomistic` section; `learned_properties` and `label_oracle` build its pieces
(`design.job` assembles them); `composition_grid` lists a design space's grid points.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field

from matforge.active.config import ExecutorSpec
from matforge.core.config import StrictModel
from matforge.core.errors import ConfigError
from matforge.design.atomistic import SupercellSpec
from matforge.design.feasibility import FeasibilityModel
from matforge.design.learned_properties import LearnedAnswer, LearnedProperties, composition_key
from matforge.design.loop import DesignHistory
from matforge.design.oracles import Observation
from matforge.design.property_uncertainty import DEFAULT_TOLERANCES
from matforge.design.space import DesignSpace
from matforge.design.strength import VarvenneCurtin, strength_from_properties
from matforge.mlip.job import SnapConfig

__all__ = ["AtomisticOracle", "AtomisticSettings", "composition_grid", "verify_best"]


class SupercellSettings(StrictModel):
    size: int = Field(2, ge=1, le=6, description="conventional FCC cells per edge")
    structures: int = Field(1, ge=1, le=20, description="random realizations averaged")
    swaps: int = Field(2, ge=1, le=20, description="swapped sites per element (misfits)")
    strain: float = Field(5e-3, gt=0, lt=0.05)
    fmax: float = Field(1e-3, gt=0, description="eV/A")


class AtomisticSettings(StrictModel):
    """`oracle.atomistic` of a design job (see examples/design_closed_loop.yaml)."""

    calculator: str = Field("emt", description="ASE calculator: the expensive truth")
    parameters: dict[str, Any] = Field(default_factory=dict)
    supercell: SupercellSettings = Field(default_factory=SupercellSettings)
    potential: SnapConfig
    threshold: float = Field(1.5, gt=1.0, description="MaxVol grade that asks for a label")
    stress_tolerance: float = Field(
        0.02, gt=0, description="GPa, a configuration's committee stress sd worth a label"
    )
    tolerances: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_TOLERANCES),
        description="relative tolerances of an answer (misfit: of the rms misfit)",
    )
    confidence: float = Field(2.0, gt=0, description="committee sds within the tolerances")
    calibrate: bool = Field(
        True, description="scale committee spreads by the labels' out-of-sample residuals"
    )
    acceptance: Literal["committee", "residual"] = Field(
        "committee",
        description="committee: an answer stands on the committee's spread of the "
        "properties; residual: every round labels all configurations an answer rests on, "
        "and it stands when the error measured against those labels is within `margin` of "
        "the tolerances",
    )
    margin: float = Field(
        0.5, gt=0, le=1, description="fraction of each tolerance a measured error may use"
    )
    relax_residual: bool = Field(
        True,
        description="residual acceptance: measure the error by relaxing every configuration "
        "again under the labels' forces and stresses (positions included), else to first "
        "order in the stresses",
    )
    newton_steps: int = Field(
        2,
        ge=1,
        le=2,
        description="relaxed residual: 2 confirms an answer the first Newton step accepts "
        "with a second step from the configurations the first relaxed to (labelled too), "
        "adding the second step's size to the measured error",
    )
    newton_fallback: int = Field(
        0,
        ge=0,
        le=50,
        description="residual acceptance: an answer the potential cannot vouch for after "
        "max_rounds goes on by up to this many labelled Newton steps toward the oracle's "
        "own properties before the oracle computes it directly (0: directly)",
    )
    newton_damping: float = Field(
        1.0,
        gt=0,
        le=1,
        description="the Newton fallback moves the positions by this fraction of a full "
        "step (0.5 converges where full steps grow)",
    )
    local_weight: float = Field(
        1.0,
        ge=1.0,
        description="the potential answering a composition weights that composition's own "
        "labels this many times more (1: one global fit answers all)",
    )
    committee: int = Field(8, ge=2, le=64)
    batch_size: int = Field(8, ge=1, le=100)
    max_rounds: int = Field(8, ge=1, le=100)
    verify: int = Field(
        3,
        ge=0,
        le=50,
        description="after the loop, the best feasible alloy is computed by the oracle's "
        "calculator directly, and again for the next best while an unverified one leads, "
        "up to this many",
    )
    untrusted: Literal["oracle", "flag"] = Field(
        "oracle",
        description="a composition still uncertain after max_rounds refits: computed by the "
        "oracle's calculator directly, or answered by the potential and flagged",
    )
    initial: int = Field(16, ge=1, le=10_000)
    energy_weight: float = Field(10.0, ge=0)
    force_weight: float = Field(1.0, ge=0)
    stress_weight: float = Field(3000.0, ge=0)
    alpha: float = Field(1e-10, ge=0)
    database: Path | None = Field(
        None, description="active-learning store; default <runs_dir>/<name>-closed-loop.db"
    )
    executor: ExecutorSpec = Field(default_factory=lambda: ExecutorSpec(kind="serial"))
    grid_step: float | None = Field(
        0.1,
        gt=0,
        le=0.5,
        description="candidates on this mole-fraction grid; null: anywhere in the space "
        "(then `refine_iterations` can polish proposals by the IFT gradient of the PoF)",
    )


def composition_grid(space: DesignSpace, step: float) -> torch.Tensor:
    """Every composition of the space whose fractions are multiples of `step` (n, d)."""
    units = round(1 / step)
    if abs(units * step - 1) > 1e-9:
        raise ConfigError(f"grid_step {step} must divide 1 (0.1, 0.05, 0.125, ...)")
    d = len(space.elements)
    points = [
        (*counts, units - sum(counts))
        for counts in itertools.product(range(units + 1), repeat=d - 1)
        if sum(counts) <= units
    ]
    x = torch.tensor(points, dtype=torch.float64) / units
    inside = space.contains(x)
    if not bool(inside.any()):
        raise ConfigError(f"no grid point of step {step} lies within the design bounds")
    return x[inside]


@dataclass
class AtomisticOracle:
    """Strength (MPa) from learned atomistic properties; feasibility from `feasibility`."""

    elements: tuple[str, ...]
    properties: LearnedProperties
    strength: VarvenneCurtin
    feasibility: FeasibilityModel | None
    candidates: torch.Tensor | None = None
    answers: list[tuple[dict[str, float], LearnedAnswer, dict[str, float]]] = field(
        default_factory=list
    )
    verified: dict[str, float] = field(default_factory=dict)  # composition key -> MPa

    def composition(self, row: torch.Tensor) -> dict[str, float]:
        return {e: float(v) for e, v in zip(self.elements, row.tolist(), strict=True) if v > 0}

    def evaluate(self, x: torch.Tensor) -> Observation:
        x = torch.as_tensor(x, dtype=torch.float64).reshape(-1, len(self.elements))
        values = []
        for row in x:
            composition = self.composition(row)
            answer = self.properties(composition)
            strength = strength_from_properties(answer.properties, self.strength)
            self.answers.append((composition, answer, strength))
            values.append(strength["sigma_y"])
        if self.feasibility is not None:
            feasible = self.feasibility.is_feasible(x)
        else:
            feasible = torch.ones(len(x), dtype=torch.bool)
        return Observation(torch.tensor(values, dtype=torch.float64), feasible)


def verify_best(oracle: AtomisticOracle, history: DesignHistory, limit: int) -> list[str]:
    """Confirms the design's answer with the oracle: the best feasible evaluation's
    properties are computed by the oracle's calculator directly and its strength replaces
    the learned one in `history` (every evaluation of that composition); repeated while
    the best is unverified, at most `limit` times (a learned strength that was too high
    drops and the next candidate is checked). Returns the compositions verified now."""
    done: list[str] = []
    while len(done) < limit:
        feasible = [i for i, ok in enumerate(history.feasible) if ok]
        if not feasible:
            break
        best = max(feasible, key=lambda i: history.objective[i])
        composition = oracle.composition(history.x[best])
        key = composition_key(composition)
        if key in oracle.verified:
            break
        properties = oracle.properties.verify(composition)
        strength = strength_from_properties(properties, oracle.strength)["sigma_y"]
        oracle.verified[key] = strength
        for i, x in enumerate(history.x):
            if composition_key(oracle.composition(x)) == key:
                history.objective[i] = strength
        done.append(key)
    return done


def supercell_spec(settings: AtomisticSettings, seed: int) -> SupercellSpec:
    return SupercellSpec(**settings.supercell.model_dump(), seed=seed)


def database_path(settings: AtomisticSettings, name: str, runs_dir: Path) -> Path:
    return settings.database or Path(runs_dir) / f"{name}-closed-loop.db"


def learned_properties(
    settings: AtomisticSettings, database: Path, runner: Any, seed: int
) -> LearnedProperties:
    """The learned-property engine of these settings (`runner` from
    `settings.executor.runner(oracle)`; its oracle is the store's labeller)."""
    from matforge.active.model import RowWeights
    from matforge.active.store import ActiveStore
    from matforge.mlip.job import snap_potential

    potential = snap_potential(settings.potential)
    return LearnedProperties(
        potential,
        runner.oracle,
        ActiveStore(database),
        runner,
        supercell_spec(settings, seed),
        threshold=settings.threshold,
        stress_tolerance=settings.stress_tolerance,
        committee=settings.committee,
        batch_size=settings.batch_size,
        max_rounds=settings.max_rounds,
        untrusted=settings.untrusted,
        tolerances=dict(settings.tolerances),
        confidence=settings.confidence,
        calibrate=settings.calibrate,
        acceptance=settings.acceptance,
        margin=settings.margin,
        relax_residual=settings.relax_residual,
        newton_steps=settings.newton_steps,
        newton_fallback=settings.newton_fallback,
        newton_damping=settings.newton_damping,
        local_weight=settings.local_weight,
        initial=settings.initial,
        weights=RowWeights(settings.energy_weight, settings.force_weight, settings.stress_weight),
        alpha=settings.alpha,
        seed=seed,
    )


def label_oracle(settings: AtomisticSettings) -> Any:
    from matforge.active.oracle import CalculatorOracle

    return CalculatorOracle(settings.calculator, settings.parameters, stress=True)

"""Alloy properties from a potential that learns while the design runs.

`LearnedProperties` answers "lattice constant, elastic constants and misfit volumes of
composition x?" (`design.atomistic.alloy_properties`) with a matforge SNAP potential in
place of the expensive calculator, and keeps the potential honest with `matforge.active`'s
pieces:

1. the potential is fitted on every label in the `ActiveStore` (energies, forces, stresses;
   `active.model.LinearTrainer`);
2. `alloy_properties` runs with it, and every relaxed configuration the answer depends on
   (relaxed cell, strained cells, swapped cells) is collected;
3. each is scored by max(grade / `threshold`, stress sd / `stress_tolerance`): its
   extrapolation grade (`active.uncertainty.MaxVolGrade`, Podryabinkin & Shapeev) against
   the training set and the stress spread of a bootstrap committee of the linear fit
   (`active.uncertainty.StressCommitteeUncertainty`, GPa); the `batch_size` highest scores
   above 1 (and the last state of a relaxation that failed) go to the oracle through an
   `OracleRunner` (serial, or a Dask cluster), the labels land in the store, and 1-3 run
   again. The answer stands once every score is at most 1; after `max_rounds` refits it is
   returned flagged `trusted = False` (or, when the potential still cannot relax it,
   computed by the oracle's calculator directly, `source = "oracle"`).

The store is the memory: labels are written as they arrive (a killed run keeps them and a
restart labels only what was pending), and each finished answer is kept in the store's
metadata under its composition, so a rerun gets it back without recomputing anything.
The first call seeds the training set with `initial` strained and rattled random cells
(random compositions of the design's elements), as every active-learning run starts from
some labels.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from matforge.active.model import LinearTrainer, RowWeights
from matforge.active.oracle import Oracle
from matforge.active.parallel import OracleRunner
from matforge.active.store import ActiveStore, new_uid
from matforge.active.uncertainty import MaxVolGrade, StressCommitteeUncertainty
from matforge.core.errors import ConfigError
from matforge.core.progress import get_logger
from matforge.design.atomistic import (
    AlloyProperties,
    RelaxationError,
    SupercellSpec,
    alloy_properties,
    random_fcc_supercell,
    vegard_lattice_constant,
)
from matforge.mlip.potential import Potential

log = get_logger(__name__)

__all__ = ["LearnedAnswer", "LearnedProperties", "composition_key"]


def composition_key(composition: Mapping[str, float], digits: int = 6) -> str:
    """A stable text key of a composition (elements sorted, fractions rounded)."""
    total = sum(composition.values())
    return ",".join(
        f"{e}:{round(v / total, digits):.{digits}f}"
        for e, v in sorted(composition.items())
        if v > 0
    )


@dataclass
class LearnedAnswer:
    """One composition's properties from the learned potential, and what it took."""

    properties: AlloyProperties
    trusted: bool  # every configuration within the threshold at the final fit
    max_score: float  # largest max(grade / threshold, stress sd / tolerance) at the end
    rounds: int  # refits this composition needed
    labels: int  # oracle labels this composition added
    seconds: float
    source: str = "potential"  # or "oracle": computed by the oracle's calculator directly

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "properties": asdict(self.properties)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LearnedAnswer:
        values = dict(data)
        values["properties"] = AlloyProperties(**values["properties"])
        return cls(**values)


@dataclass
class LearnedProperties:
    """See the module docstring. `potential` is an unfitted linear SNAP (its elements must
    cover the compositions asked for); `oracle` labels configurations (e.g.
    `CalculatorOracle("emt")`); `runner` runs it (`ExecutorSpec.runner(oracle)`)."""

    potential: Potential
    oracle: Oracle
    store: ActiveStore
    runner: OracleRunner
    spec: SupercellSpec = field(default_factory=SupercellSpec)
    threshold: float = 1.1  # MaxVol grade
    stress_tolerance: float = 0.02  # GPa, committee sd of a cell's stress
    committee: int = 8
    batch_size: int = 8
    max_rounds: int = 8
    initial: int = 16
    weights: RowWeights = field(default_factory=lambda: RowWeights(10.0, 1.0, 3000.0))
    alpha: float = 1e-10
    regularization: float = 1e-3
    seed: int = 0
    backend: str = "numba"  # linear SNAP by compiled loops (3x faster than torch here)
    answers: dict[str, LearnedAnswer] = field(default_factory=dict, init=False)
    curve: list[dict[str, Any]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.threshold <= 1.0:
            raise ConfigError(
                f"threshold {self.threshold}: a MaxVol grade <= 1 is interpolation; "
                "the threshold must be above 1"
            )
        self.elements = tuple(self.potential.descriptor.elements)
        self.trainer = LinearTrainer(self.potential, weights=self.weights, alpha=self.alpha)
        meta = self.store.metadata
        self.answers = {k: LearnedAnswer.from_json(v) for k, v in meta.get("answers", {}).items()}
        self.curve = list(meta.get("curve", []))
        self.direct_calls = int(meta.get("direct_calls", 0))
        self._fitted: Potential | None = None
        self._fitted_on = -1

    # -- labels ----------------------------------------------------------------------------
    def _label_pending(self) -> None:
        report = self.store.label_pending(self.runner, roles=["train"])
        if report is not None and report.failed:
            log.warning("%d oracle calls failed (kept in the store)", len(report.failed))

    def _seed(self) -> None:
        if self.store.count(role="train") > 0:
            return
        rng = np.random.default_rng([self.seed, 1])
        starts = []
        for index in range(self.initial):
            composition = dict(
                zip(self.elements, rng.dirichlet(np.ones(len(self.elements))), strict=True)
            )
            # volumes 3% below, at and above Vegard's: the equation of state is in the data
            scale = 1.0 + 0.03 * (index % 3 - 1)
            atoms = random_fcc_supercell(
                composition,
                vegard_lattice_constant(composition) * scale,
                self.spec.size,
                int(rng.integers(2**31)),
            )
            deformation = np.eye(3) + rng.normal(0.0, 0.01, (3, 3))
            atoms.set_cell(atoms.cell.array @ deformation, scale_atoms=True)
            atoms.positions += rng.normal(0.0, 0.03, atoms.positions.shape)
            starts.append(atoms)
        self.store.add_pending(
            starts, role="train", iteration=0, reasons=["initial set"] * len(starts)
        )

    def training(self) -> list[Atoms]:
        return self.store.structures(role="train", status="labelled")

    def fitted(self) -> Potential:
        """The potential fitted on every label there is (refitted when labels arrive)."""
        self._seed()
        self._label_pending()
        training = self.training()
        if not training:
            raise ConfigError(f"{self.store.url}: every oracle call of the initial set failed")
        if self._fitted is None or self._fitted_on != len(training):
            self._fitted = self.trainer.fit(training)
            self._fitted_on = len(training)
        return self._fitted

    # -- one composition -------------------------------------------------------------------
    def _compute(
        self, composition: Mapping[str, float]
    ) -> tuple[AlloyProperties | None, list[Atoms]]:
        """Properties with the current potential (None when one of its relaxations failed)
        and the configurations they rest on (with the failed relaxation's last state)."""
        from matforge.mlip.calculator import MatforgeCalculator

        potential = self.fitted()
        potential.backend = self.backend
        visited: list[Atoms] = []

        def observe(step: str, atoms: Atoms) -> None:
            atoms.info.update(uid=new_uid(), step=step)
            visited.append(atoms)

        try:
            properties = alloy_properties(
                composition,
                lambda: MatforgeCalculator(potential),
                self.spec,
                observe=observe,
            )
        except RelaxationError as error:
            observe("failed relaxation", error.atoms)
            return None, visited
        return properties, visited

    def _with_oracle(self, composition: Mapping[str, float]) -> AlloyProperties:
        """The properties from the oracle's calculator itself (when the potential cannot
        relax a composition after every refit); its calls are counted in `direct_calls`."""
        make = getattr(self.oracle, "make_calculator", None)
        if make is None:
            raise ConfigError(
                f"{composition_key(composition)}: the potential's relaxations failed after "
                f"{self.max_rounds} refits and the oracle has no calculator to fall back on"
            )
        properties = alloy_properties(composition, make, self.spec)
        self.direct_calls += properties.calls
        return properties

    def __call__(self, composition: Mapping[str, float]) -> LearnedAnswer:
        unknown = sorted({e for e, v in composition.items() if v > 0} - set(self.elements))
        if unknown:
            raise ConfigError(f"the potential has no parameters for {unknown}")
        key = composition_key(composition)
        if key in self.answers:
            return self.answers[key]
        started = time.perf_counter()
        labels_before = self.store.count(role="train")
        rounds = 0
        while True:
            rounds += 1
            properties, visited = self._compute(composition)
            training = self.training()
            score, grades, stress_std = self._scores(visited, training, rounds)
            worst = float(score.max())
            self._record(
                key,
                rounds,
                worst,
                float(grades.max()),
                float(stress_std.max()),
                len(visited),
                len(training),
                failed=properties is None,
            )
            done = properties is not None and worst <= 1.0
            if done or rounds >= self.max_rounds:
                break
            picked = [int(i) for i in np.argsort(-score, kind="stable") if score[i] > 1.0]
            picked = picked[: self.batch_size]
            if properties is None and len(visited) - 1 not in picked:
                # where the potential's relaxation went astray is worth a label whatever its
                # scores: they measure extrapolation and disagreement, not error
                picked.append(len(visited) - 1)
            chosen = [visited[i] for i in picked]
            self.store.add_pending(
                chosen,
                role="train",
                iteration=len(self.curve),
                reasons=[
                    f"grade {grades[i]:.3g}, stress sd {stress_std[i]:.3g} GPa" for i in picked
                ],
                measure="maxvol+stress_committee",
                uncertainties=[float(score[i]) for i in picked],
                keys=[{"composition": key, "step": a.info["step"]} for a in chosen],
            )
            self.trainer.cache.retain({a.info["uid"] for a in [*training, *chosen]})
            self._label_pending()
        source = "potential"
        if properties is None:
            log.warning(
                "%s: the potential's relaxation failed after %d refits; computing it with "
                "the oracle's calculator directly",
                key,
                rounds,
            )
            properties, source = self._with_oracle(composition), "oracle"
        trusted = worst <= 1.0 and source == "potential"
        if not trusted and source == "potential":
            log.warning(
                "%s: uncertainty score %.2f still above 1 after %d refits; the answer is "
                "flagged untrusted",
                key,
                worst,
                rounds,
            )
        answer = LearnedAnswer(
            properties,
            trusted,
            worst,
            rounds,
            self.store.count(role="train") - labels_before,
            time.perf_counter() - started,
            source,
        )
        self.answers[key] = answer
        self.store.update_metadata(
            answers={k: v.to_json() for k, v in self.answers.items()},
            curve=self.curve,
            direct_calls=self.direct_calls,
        )
        return answer

    def _scores(
        self, visited: list[Atoms], training: list[Atoms], round_: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per configuration: max(grade / threshold, stress sd / stress_tolerance), the
        MaxVol grade and the committee's stress sd (GPa); above 1 asks for a label."""
        grade = MaxVolGrade(self.trainer.cache, training, regularization=self.regularization)
        grades = np.asarray(grade.estimate(visited).per_structure)
        rng = np.random.default_rng([self.seed, 2, len(training), round_])
        members = self.trainer.fit_committee(training, self.committee, rng, resample="structures")
        stress_std = np.asarray(
            StressCommitteeUncertainty(self.trainer.cache, members).estimate(visited).per_structure
        )
        score = np.maximum(grades / self.threshold, stress_std / self.stress_tolerance)
        return score, grades, stress_std

    def _record(
        self,
        key: str,
        round_: int,
        worst: float,
        grade: float,
        stress_std: float,
        configurations: int,
        labels: int,
        *,
        failed: bool,
    ) -> None:
        self.curve.append(
            {
                "step": len(self.curve),
                "composition": key,
                "round": round_,
                "labels": labels,
                "configurations": configurations,
                "failed_relaxation": failed,
                "max_score": worst,
                "max_grade": grade,
                "max_stress_sd_gpa": stress_std,
            }
        )

    # -- reports ---------------------------------------------------------------------------
    def oracle_calls(self) -> list[dict[str, Any]]:
        """One row per oracle call in the store: when it started, how long it took, why."""
        rows = []
        for row in self.store.db.select(role="train"):
            rows.append(
                {
                    "row": row.id,
                    "status": row.get("status"),
                    "reason": row.get("reason"),
                    "composition": row.get("composition", ""),
                    "step": row.get("step", "initial"),
                    "started": row.get("oracle_started"),
                    "seconds": row.get("oracle_seconds"),
                }
            )
        return rows

    def summary(self) -> dict[str, Any]:
        return {
            "labels": self.store.count(role="train", status="labelled"),
            "failed": self.store.count(role="train", status="failed"),
            "compositions": len(self.answers),
            "direct_calls": self.direct_calls,
            "untrusted": sorted(k for k, a in self.answers.items() if not a.trusted),
        }

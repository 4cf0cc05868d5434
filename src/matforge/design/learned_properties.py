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
   (`active.uncertainty.StressCommitteeUncertainty`, GPa); and the answer itself is scored
   by the committee's spread of the properties (`design.property_uncertainty`: each
   member's lattice constant, C_ij and misfit volumes) against `tolerances` at
   `confidence` standard deviations, the spreads scaled by a calibration factor fitted on
   the stress residuals of every label against the committee that chose it
   (`calibration_factor`);
4. with `acceptance="committee"` the answer stands once no grade is above `threshold` and
   every property's spread is within its tolerance. Otherwise the `batch_size`
   configurations of highest score (those above 1 first; the last state of a relaxation
   that failed always) go to the oracle through an `OracleRunner` (serial, or a Dask
   cluster), the labels land in the store, and 1-4 run again. With
   `acceptance="residual"` every round labels all the configurations the answer rests on
   (single points: 19 for a four-element alloy, against some 400 calls to compute the
   properties with the oracle), and the answer stands when its error measured against
   those labels is within `margin` times each tolerance; the committee then only
   reports. The error is measured by relaxing every configuration again under the
   potential plus the labels' corrections (`property_uncertainty.relaxed_residual`: the
   oracle's forces and stress in place of the potential's, so the positions' part is in),
   or with `relax_residual=False` to first order in the stresses alone
   (`property_residual`, which leaves out that the oracle relaxes positions differently).
   One such relaxed step is a Newton step with the potential's Hessian, not exact: with
   `newton_steps=2` an answer the first step accepts is measured again from the
   configurations the first step relaxed to (labelled too), and the second step's size is
   added to the error, so an answer stands only where the steps converge.
   After `max_rounds` refits, with `newton_fallback` steps allowed, the Newton steps go on
   (each labelled) until a step changes no property by more than a tenth of its
   tolerance: the properties they reach are the oracle's own to that accuracy
   (`source = "newton"`, for some 20 labels a step). Otherwise (or when the potential still
   cannot relax the composition)
   the oracle's calculator computes the properties directly (`source = "oracle"`, its
   calls counted in `direct_calls`): the design never rests on a number the potential
   could not vouch for. With `untrusted="flag"` a potential answer that is still
   uncertain is returned instead, flagged `trusted = False` (cheaper, for exploration).

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
from matforge.active.uncertainty import (
    MaxVolGrade,
    StressCommitteeUncertainty,
    linear_stresses,
)
from matforge.core.ensemble import spread
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
from matforge.design.property_uncertainty import (
    DEFAULT_TOLERANCES,
    QUANTITIES,
    corrected_properties,
    property_change,
    property_residual,
    property_spread,
    relative_spread,
)
from matforge.mlip.potential import Potential

log = get_logger(__name__)

__all__ = [
    "ACCEPTANCE_RULES",
    "UNTRUSTED_POLICIES",
    "LearnedAnswer",
    "LearnedProperties",
    "composition_key",
]

UNTRUSTED_POLICIES = ("oracle", "flag")
ACCEPTANCE_RULES = ("committee", "residual")


def composition_key(composition: Mapping[str, float], digits: int = 6) -> str:
    """A stable text key of a composition (elements sorted, fractions rounded)."""
    total = sum(composition.values())
    return ",".join(
        f"{e}:{round(v / total, digits):.{digits}f}"
        for e, v in sorted(composition.items())
        if v > 0
    )


@dataclass
class _Step:
    """One Newton step of the relaxed measurement: the signed change of each property
    (`relaxed_residual`'s keys) and the configurations relaxed under the corrections."""

    change: dict[str, float]
    moved: list[Atoms]
    properties: AlloyProperties  # relaxed under the corrections


@dataclass(frozen=True)
class _Scores:
    configuration: np.ndarray  # max(grade / threshold, stress sd / stress_tolerance)
    grades: np.ndarray
    stress_sd: np.ndarray  # GPa
    spread: dict[str, float]  # committee sd of each property (A, GPa, A^3)
    relative: dict[str, float]  # the same relative to the property (misfit: to its rms)
    property_score: float  # max over quantities of confidence * relative / tolerance
    answer_score: float  # max(largest grade / threshold, property_score): <= 1 stands
    predicted: np.ndarray  # (S, 6) committee-mean stress, GPa
    component_sd: np.ndarray  # (S, 6) committee sd of each stress component, GPa


@dataclass
class LearnedAnswer:
    """One composition's properties from the learned potential, and what it took."""

    properties: AlloyProperties
    trusted: bool  # every configuration within the threshold at the final fit
    max_score: float  # max(largest grade / threshold, property spread / tolerance) at the end
    rounds: int  # refits this composition needed
    labels: int  # oracle labels this composition added
    seconds: float
    # or "oracle": computed by the oracle's calculator directly; or "newton": the oracle's
    # own properties reached by Newton steps from the potential's (`newton_fallback`)
    source: str = "potential"
    # committee sd of each property at the final fit (A, GPa, A^3; `property_spread`)
    uncertainty: dict[str, float] = field(default_factory=dict)
    verified: AlloyProperties | None = None  # the oracle's own, when confirmed (`verify`)
    # acceptance "residual": each property's error measured against the oracle's labels of
    # the configurations the answer rests on (relative, as the tolerances)
    residual: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LearnedAnswer:
        values = dict(data)
        values["properties"] = AlloyProperties(**values["properties"])
        if values.get("verified") is not None:
            values["verified"] = AlloyProperties(**values["verified"])
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
    untrusted: str = "oracle"  # or "flag": what an answer still uncertain after max_rounds gets
    # relative tolerances of the answer (misfit: of the alloy's rms misfit), at `confidence`
    # committee standard deviations
    tolerances: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    confidence: float = 2.0
    # scale the committee's spreads by a factor fitted on each new label's stress residual
    # against the committee that chose it (out of sample: before the refit)
    calibrate: bool = True
    # "committee": an answer stands on the committee's spread (labels only where it is
    # unsure); "residual": every round labels all the configurations the answer rests on
    # and it stands when the error measured against those labels is within `margin` of
    # each tolerance (the rest is left for what the measurement misses: with
    # `relax_residual` the second-order part of relaxing the positions under the oracle)
    acceptance: str = "committee"
    margin: float = 0.5
    # residual acceptance: measure the error by relaxing again under the labels' forces
    # and stresses (positions included; one more set of potential relaxations per round),
    # or to first order in the stresses alone
    relax_residual: bool = True
    # relaxed measurement: 2 takes a second Newton step (the oracle labels the
    # configurations the first step relaxed to) before an answer stands, and adds that
    # step's size to the measured error: an answer stands only where the steps converge
    newton_steps: int = 2
    # an answer the potential cannot vouch for after max_rounds (residual acceptance):
    # up to this many Newton steps toward the oracle's own properties (19 labels each for
    # four elements) before the oracle computes it directly (some 400 calls); 0: directly
    newton_fallback: int = 0
    # the fallback's steps move the positions by this fraction of a full Newton step: 0.5
    # converged on an Al-rich alloy (Al20Cu10Ni70) where full steps grow
    newton_damping: float = 1.0
    # the potential that answers a composition weights that composition's own labels this
    # many times more than the rest (1: one global fit answers every composition)
    local_weight: float = 1.0
    answers: dict[str, LearnedAnswer] = field(default_factory=dict, init=False)
    curve: list[dict[str, Any]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.tolerances) - set(QUANTITIES))
        if unknown or any(v <= 0 for v in self.tolerances.values()):
            raise ConfigError(
                f"tolerances: keys must be among {list(QUANTITIES)} with positive values, "
                f"got {self.tolerances}"
            )
        if self.threshold <= 1.0:
            raise ConfigError(
                f"threshold {self.threshold}: a MaxVol grade <= 1 is interpolation; "
                "the threshold must be above 1"
            )
        if self.acceptance not in ACCEPTANCE_RULES:
            raise ConfigError(
                f"acceptance: {self.acceptance!r} is not one of {list(ACCEPTANCE_RULES)}"
            )
        if self.local_weight < 1:
            raise ConfigError(f"local_weight {self.local_weight}: must be >= 1")
        if not 0 < self.newton_damping <= 1:
            raise ConfigError(f"newton_damping {self.newton_damping}: must be in (0, 1]")
        if self.newton_fallback < 0:
            raise ConfigError(f"newton_fallback {self.newton_fallback}: must be >= 0")
        if self.newton_steps not in (1, 2):
            raise ConfigError(f"newton_steps {self.newton_steps}: 1 or 2")
        if not 0 < self.margin <= 1:
            raise ConfigError(f"margin {self.margin}: a fraction of the tolerances, in (0, 1]")
        if self.untrusted not in UNTRUSTED_POLICIES:
            raise ConfigError(
                f"untrusted: {self.untrusted!r} is not one of {list(UNTRUSTED_POLICIES)}"
            )
        self.elements = tuple(self.potential.descriptor.elements)
        self.trainer = LinearTrainer(self.potential, weights=self.weights, alpha=self.alpha)
        meta = self.store.metadata
        self.answers = {k: LearnedAnswer.from_json(v) for k, v in meta.get("answers", {}).items()}
        self.curve = list(meta.get("curve", []))
        self.direct_calls = int(meta.get("direct_calls", 0))
        self.calibration = list(meta.get("calibration", [0.0, 0]))  # sum of z^2, count
        self._fitted: Potential | None = None
        self._system: Any = None  # the global fit's weighted system (`LinearTrainer.system`)
        self._local: dict[str, Potential] = {}
        self._training: list[Atoms] | None = None
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
        """Every labelled configuration; read from the store again only when its count
        changed (labels are only ever added), not on every question of a round."""
        count = self.store.count(role="train", status="labelled")
        if self._training is None or len(self._training) != count:
            self._training = self.store.structures(role="train", status="labelled")
        return self._training

    def fitted(self) -> Potential:
        """The potential fitted on every label there is (refitted when labels arrive)."""
        self._seed()
        self._label_pending()
        training = self.training()
        if not training:
            raise ConfigError(f"{self.store.url}: every oracle call of the initial set failed")
        if self._fitted is None or self._fitted_on != len(training):
            self._system = self.trainer.system(training)
            self._fitted = self.trainer.with_coefficients(self.trainer.solve(self._system))
            self._fitted_on = len(training)
            self._local = {}
        return self._fitted

    def _row_weights(self, key: str) -> np.ndarray | None:
        """Row weights of the fit that answers composition `key` (None: the global fit)."""
        if self.local_weight == 1:
            return None
        training = self.training()
        own = np.array([a.info.get("composition") == key for a in training])
        if not own.any():
            return None
        return np.where(own[self._system.structure], self.local_weight, 1.0)

    def potential_for(self, key: str) -> Potential:
        """The potential that answers composition `key`: the global fit, or with
        `local_weight` > 1 the fit that weights the composition's own labels more."""
        potential = self.fitted()
        weights = self._row_weights(key)
        if weights is None:
            return potential
        if key not in self._local:
            self._local = {
                key: self.trainer.with_coefficients(self.trainer.solve(self._system, weights))
            }
        return self._local[key]

    # -- one composition -------------------------------------------------------------------
    def _compute(
        self, composition: Mapping[str, float]
    ) -> tuple[AlloyProperties | None, list[Atoms]]:
        """Properties with the current potential (None when one of its relaxations failed)
        and the configurations they rest on (with the failed relaxation's last state)."""
        from matforge.mlip.calculator import MatforgeCalculator

        key = composition_key(composition)
        potential = self.potential_for(key)
        potential.backend = self.backend
        visited: list[Atoms] = []

        def observe(step: str, atoms: Atoms) -> None:
            atoms.info.update(uid=new_uid(), step=step, composition=key)
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

    def _with_oracle(self, composition: Mapping[str, float], why: str) -> AlloyProperties:
        """The properties from the oracle's calculator itself (when the potential cannot
        answer a composition after every refit, or to verify it); its calls are counted in
        `direct_calls`."""
        make = getattr(self.oracle, "make_calculator", None)
        if make is None:
            raise ConfigError(
                f"{composition_key(composition)}: {why} after {self.max_rounds} refits and "
                "the oracle has no calculator to fall back on (or set untrusted: flag)"
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
        first: _Step | None = None
        answering: Potential | None = None
        while True:
            rounds += 1
            properties, visited = self._compute(composition)
            training = self.training()
            scores = self._scores(key, properties, visited, training, rounds)
            residual: dict[str, float] = {}
            steps = 0  # measurements the error rests on (relaxed: Newton steps)
            if self.acceptance == "residual":
                # every configuration is labelled, before the verdict: the labels are the
                # measurement (and the next fit's data when the answer does not stand)
                answering = self.potential_for(key)  # before the labels refit it
                self._add_labels(key, scores, list(range(len(visited))), visited, training)
                residual, first = self._measured(composition, properties, visited, answering)
                worst = self._residual_score(residual)
                steps = int(bool(residual))
                if worst <= 1.0 and first is not None and self.newton_steps == 2:
                    residual = self._second_step(key, composition, properties, first, answering)
                    worst = self._residual_score(residual)
                    steps = 2 if residual else 0
            else:
                worst = scores.answer_score
            self._record(
                key,
                rounds,
                scores,
                len(visited),
                len(training),
                properties is None,
                residual,
                steps,
            )
            done = properties is not None and worst <= 1.0
            if done or rounds >= self.max_rounds:
                break
            if self.acceptance == "committee":
                picked = self._pick(scores, failed=properties is None, last=len(visited) - 1)
                self._add_labels(key, scores, picked, visited, training)
        source = "potential"
        why = ""
        if properties is None:
            why = "the potential's relaxation failed"
        elif worst > 1.0 and self.untrusted == "oracle":
            why = f"uncertainty score {worst:.2f} is still above 1"
        if why and first is not None and answering is not None and self.newton_fallback:
            assert properties is not None  # a step was measured from it
            reached = self._newton_answer(key, composition, properties, first, answering)
            if reached is not None:
                log.warning(
                    "%s: %s after %d refits; the oracle's own properties were reached by "
                    "Newton steps from the potential's",
                    key,
                    why,
                    rounds,
                )
                properties, residual, why, source = *reached, "", "newton"
                worst = self._residual_score(residual)
        if why:
            log.warning(
                "%s: %s after %d refits; computing it with the oracle's calculator directly",
                key,
                why,
                rounds,
            )
            properties, source = self._with_oracle(composition, why), "oracle"
        trusted = worst <= 1.0 or source in ("oracle", "newton")
        if not trusted:
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
            scores.spread if source == "potential" else {},
            residual=residual if source != "oracle" else {},
        )
        self.answers[key] = answer
        self.store.update_metadata(
            answers={k: v.to_json() for k, v in self.answers.items()},
            curve=self.curve,
            direct_calls=self.direct_calls,
            calibration=self.calibration,
        )
        return answer

    def _add_labels(
        self,
        key: str,
        scores: _Scores,
        picked: list[int],
        visited: list[Atoms],
        training: list[Atoms],
    ) -> None:
        """Labels `visited[picked]` by the oracle (into the store) and adds their stress
        residuals to the committee's calibration."""
        chosen = [visited[i] for i in picked]
        self.store.add_pending(
            chosen,
            role="train",
            iteration=len(self.curve),
            reasons=[
                f"grade {scores.grades[i]:.3g}, stress sd {scores.stress_sd[i]:.3g} GPa"
                for i in picked
            ],
            measure="maxvol+stress_committee",
            uncertainties=[float(scores.configuration[i]) for i in picked],
            keys=[{"composition": key, "step": a.info["step"]} for a in chosen],
        )
        self.trainer.cache.retain({a.info["uid"] for a in [*training, *chosen]})
        self._label_pending()
        self._update_calibration(scores, picked, chosen)

    def _own_stresses(self, potential: Potential, visited: list[Atoms]) -> np.ndarray:
        """The stresses on `visited` (S, 6), GPa, of `potential` (a fit of `trainer`)."""
        coefficients = potential.model.coefficients.detach().cpu().numpy()
        return linear_stresses(self.trainer.cache, visited, coefficients.reshape(1, -1))[:, 0]

    def _labels_of(self, configurations: list[Atoms]) -> list[Atoms] | None:
        """The oracle's labels of `configurations` (by uid); None when one is missing."""
        labelled = {a.info.get("uid"): a for a in self.training()}
        labels = [labelled.get(a.info["uid"]) for a in configurations]
        if any(
            a is None or a.calc is None or not {"stress", "forces"} <= set(a.calc.results)
            for a in labels
        ):
            return None  # a failed oracle call
        return labels  # type: ignore[return-value]

    def _newton_step(
        self,
        composition: Mapping[str, float],
        properties: AlloyProperties,
        at: list[Atoms],
        answering: Potential,
        damping: float = 1.0,
    ) -> _Step | None:
        """`relaxed_residual` from the oracle's labels of `at`; None (with a warning) when a
        label is missing or a corrected relaxation does not converge."""
        from matforge.mlip.calculator import MatforgeCalculator

        labels = self._labels_of(at)
        if labels is None:
            return None
        key = composition_key(composition)
        moved: list[Atoms] = []

        def observe(step: str, atoms: Atoms) -> None:
            atoms.info.update(uid=new_uid(), step=f"newton {step}", composition=key)
            moved.append(atoms)

        try:
            corrected = corrected_properties(
                composition,
                at,
                # damped on the positions only: the relaxation then stops where the
                # potential's forces moved by `damping` x the oracle's, and at the fixed
                # point the oracle's forces still vanish (stress is the strained cells'
                # output, so it is never scaled)
                [damping * a.get_forces() for a in labels],
                np.array([a.get_stress(voigt=True) for a in labels]),
                lambda: MatforgeCalculator(answering),
                self.spec,
                observe=observe,
            )
        except RelaxationError:
            log.warning(
                "%s: a relaxation under the labels' corrections did not converge; "
                "nothing measured this round",
                key,
            )
            return None
        return _Step(property_change(properties, corrected), moved, corrected)

    def _measured(
        self,
        composition: Mapping[str, float],
        properties: AlloyProperties | None,
        visited: list[Atoms],
        answering: Potential,
    ) -> tuple[dict[str, float], _Step | None]:
        """Each property's error (relative, as the tolerances) against the oracle's labels
        of `visited`: relaxed again under them (`relax_residual`; with the step, whose
        configurations a second step starts from), or to first order from the stresses of
        `answering` (the fit that answered, before the labels refit it). Empty when a
        relaxation failed or a label is missing (then the answer cannot stand)."""
        from ase.units import GPa

        if properties is None:
            return {}, None
        if self.relax_residual:
            step = self._newton_step(composition, properties, visited, answering)
            if step is None:
                return {}, None
            return relative_spread(properties, {k: abs(v) for k, v in step.change.items()}), step
        labels = self._labels_of(visited)
        if labels is None:
            return {}, None
        reference = np.array([a.get_stress(voigt=True) / GPa for a in labels])
        predicted = self._own_stresses(answering, visited)
        change = property_residual(properties, visited, predicted, reference, self.spec)
        return relative_spread(properties, {k: abs(v) for k, v in change.items()}), None

    def _second_step(
        self,
        key: str,
        composition: Mapping[str, float],
        properties: AlloyProperties,
        first: _Step,
        answering: Potential,
    ) -> dict[str, float]:
        """The error measured with a second Newton step: the oracle labels the
        configurations the first step relaxed to, the relaxations are redone under those
        corrections, and the error is |second| + |second - first| per property (the
        second step's size bounds what remains when the steps at least halve the error;
        where they diverge the sum is large and the answer does not stand)."""
        self._label_new(key, first.moved, "second Newton step of the measured error")
        second = self._newton_step(composition, properties, first.moved, answering)
        if second is None:
            return {}
        bound = {k: abs(v) + abs(v - first.change[k]) for k, v in second.change.items()}
        return relative_spread(properties, bound)

    def _label_new(self, key: str, configurations: list[Atoms], reason: str) -> None:
        """Has the oracle label those of `configurations` the store does not hold yet."""
        new = [a for a in configurations if self.store.db.count(uid=a.info["uid"]) == 0]
        if not new:
            return
        self.store.add_pending(
            new,
            role="train",
            iteration=len(self.curve),
            reasons=[reason] * len(new),
            measure="relaxed_residual",
            keys=[{"composition": key, "step": a.info["step"]} for a in new],
        )
        self._label_pending()

    def _newton_answer(
        self,
        key: str,
        composition: Mapping[str, float],
        properties: AlloyProperties,
        step: _Step,
        answering: Potential,
    ) -> tuple[AlloyProperties, dict[str, float]] | None:
        """The oracle's own properties reached by Newton steps with the potential's Hessian
        from the last round's first step (each step: the oracle labels the configurations
        the previous one relaxed to, 19 calls for four elements, and the relaxations are
        redone under those corrections), for a composition the potential could not vouch
        for: the properties and the last step's size (relative, as the tolerances) once
        that size is within a tenth of every tolerance; None when it is not within
        `newton_fallback` steps, when a step grows, or when a relaxation fails."""
        previous = float("inf")
        for _ in range(self.newton_fallback):
            self._label_new(key, step.moved, "Newton step toward the oracle's own properties")
            following = self._newton_step(
                composition, properties, step.moved, answering, self.newton_damping
            )
            if following is None:
                return None
            size = relative_spread(
                following.properties,
                {k: abs(v - step.change[k]) for k, v in following.change.items()},
            )
            score = max(size[q] / (0.1 * t) for q, t in self.tolerances.items() if q in size)
            if score <= 1.0:
                return following.properties, size
            if score > previous:
                log.warning("%s: the Newton steps grow (diverge)", key)
                return None
            previous, step = score, following
        return None

    def _residual_score(self, residual: dict[str, float]) -> float:
        """max over quantities of measured error / (margin * tolerance); inf when nothing
        was measured."""
        if not residual:
            return float("inf")
        return max(
            residual[q] / (self.margin * tol) for q, tol in self.tolerances.items() if q in residual
        )

    def calibration_factor(self) -> float:
        """The factor the committee's spreads are scaled by: from the residuals z = (oracle
        stress - committee mean) / committee sd of every label so far, before the refit
        that used it, alpha^2 = (M - 3) / (M - 1) <z^2> - 1 / M (Musil et al., JCTC 15,
        906 (2019), for a bootstrap committee of M members); 1 until 30 residuals are in,
        and never below 1 (labels are chosen where the committee is widest, which biases
        <z^2> low)."""
        total, count = self.calibration
        if not self.calibrate or count < 30:
            return 1.0
        m = self.committee
        alpha2 = (m - 3) / (m - 1) * total / count - 1 / m
        return float(max(1.0, np.sqrt(max(alpha2, 0.0))))

    def _update_calibration(self, scores: _Scores, picked: list[int], chosen: list[Atoms]) -> None:
        from ase.units import GPa

        labelled = {a.info.get("uid"): a for a in self.training()}
        for index, atoms in zip(picked, chosen, strict=True):
            label = labelled.get(atoms.info["uid"])
            if label is None or label.calc is None or "stress" not in label.calc.results:
                continue  # a failed call
            sd = scores.component_sd[index]
            wide = sd > 1e-9
            z = (label.get_stress(voigt=True) / GPa - scores.predicted[index])[wide] / sd[wide]
            self.calibration = [
                self.calibration[0] + float((z**2).sum()),
                self.calibration[1] + int(wide.sum()),
            ]
        self.store.update_metadata(calibration=self.calibration)

    def _pick(self, scores: _Scores, *, failed: bool, last: int) -> list[int]:
        """Configurations to label: scores above 1 first, highest first; when a property's
        spread is still too wide, the batch is filled with the next highest (the spread
        rests on all of them); the last state of a failed relaxation always."""
        order = [int(i) for i in np.argsort(-scores.configuration, kind="stable")]
        picked = [i for i in order if scores.configuration[i] > 1.0]
        if scores.property_score > 1.0:
            picked += [i for i in order if scores.configuration[i] <= 1.0]
        picked = picked[: self.batch_size]
        if failed and last not in picked:
            # where the potential's relaxation went astray is worth a label whatever its
            # scores: they measure extrapolation and disagreement, not error
            picked.append(last)
        return picked

    def _scores(
        self,
        key: str,
        properties: AlloyProperties | None,
        visited: list[Atoms],
        training: list[Atoms],
        round_: int,
    ) -> _Scores:
        """Per configuration: max(grade / threshold, stress sd / stress_tolerance), the
        MaxVol grade and the committee's stress sd (GPa); for the answer: the committee's
        property spread against the tolerances."""
        # energy and stress rows once (no force rows), for the grade and the committee both
        self.trainer.cache.rows(visited, forces=False, stress=True)
        grade = MaxVolGrade(self.trainer.cache, training, regularization=self.regularization)
        grades = np.asarray(grade.estimate(visited).per_structure)
        rng = np.random.default_rng([self.seed, 2, len(training), round_])
        members = self.trainer.fit_committee(
            training,
            self.committee,
            rng,
            resample="structures",
            system=self._system,
            row_weights=self._row_weights(key),
        )
        committee = StressCommitteeUncertainty(self.trainer.cache, members)
        stresses = committee.member_stresses(visited)  # (S, M, 6), GPa
        stress_sd = np.asarray(committee.estimate(visited, stresses).per_structure)
        predicted, component_sd = spread(stresses.transpose(1, 0, 2), ddof=1)
        configuration = np.maximum(grades / self.threshold, stress_sd / self.stress_tolerance)
        property_sd: dict[str, float] = {}
        relative: dict[str, float] = {}
        property_score = float("inf")
        if properties is not None:
            alpha = self.calibration_factor()
            property_sd = {
                k: alpha * v
                for k, v in property_spread(properties, visited, stresses, self.spec).items()
            }
            relative = relative_spread(properties, property_sd)
            property_score = max(
                (
                    self.confidence * relative[q] / tol
                    for q, tol in self.tolerances.items()
                    if q in relative
                ),
                default=0.0,
            )
        return _Scores(
            configuration,
            grades,
            stress_sd,
            property_sd,
            relative,
            property_score,
            max(float(grades.max()) / self.threshold, property_score),
            predicted,
            component_sd,
        )

    def _record(
        self,
        key: str,
        round_: int,
        scores: _Scores,
        configurations: int,
        labels: int,
        failed: bool,
        residual: dict[str, float],
        steps: int,
    ) -> None:
        self.curve.append(
            {
                "step": len(self.curve),
                "composition": key,
                "round": round_,
                "labels": labels,
                "configurations": configurations,
                "failed_relaxation": failed,
                "max_score": scores.answer_score,
                "max_grade": float(scores.grades.max()),
                "max_stress_sd_gpa": float(scores.stress_sd.max()),
                "property_score": scores.property_score,
                "calibration_factor": self.calibration_factor(),
                **{f"relative_sd_{q}": v for q, v in scores.relative.items()},
                "newton_steps": steps,
                **{f"measured_error_{q}": v for q, v in residual.items()},
            }
        )

    def verify(self, composition: Mapping[str, float]) -> AlloyProperties:
        """The properties computed by the oracle's calculator directly (a design's final
        candidates are confirmed this way); kept with the answer, computed once."""
        answer = self(composition)
        if answer.source == "oracle":
            return answer.properties
        if answer.verified is None:
            answer.verified = self._with_oracle(composition, "verification")
            self.store.update_metadata(
                answers={k: v.to_json() for k, v in self.answers.items()},
                direct_calls=self.direct_calls,
            )
        return answer.verified

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
            "calibration_factor": self.calibration_factor(),
            "calibration_residuals": int(self.calibration[1]),
            "untrusted": sorted(k for k, a in self.answers.items() if not a.trusted),
            "computed_by_oracle": sorted(
                k for k, a in self.answers.items() if a.source == "oracle"
            ),
            "reached_by_newton": sorted(k for k, a in self.answers.items() if a.source == "newton"),
        }

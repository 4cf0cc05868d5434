"""The active-learning loop: fit, explore, measure uncertainty, select, label, repeat.

Every decision and label goes to the `ActiveStore` as it happens and the loop's position
is read back from it, so `run_active_learning` on an existing database continues where the
previous run stopped (after a crash or kill -9 too): pending oracle calls are made, the
learning curve is completed, and new iterations start until `iterations` (counted from
the initial set, iteration 0) or `max_oracle_calls` is reached. The settings' fingerprint
is kept in the database, and a run with different scientific settings is refused instead
of mixing two experiments (the number of iterations, the executor and the database
location may change between runs).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from matforge.active.config import ActiveConfig
from matforge.active.explore import Exploration, MDExplorer, PoolExplorer, Stage
from matforge.active.gap import GapTrainer, GPVarianceUncertainty
from matforge.active.model import LinearTrainer, RowWeights, predict
from matforge.active.nep import NepCommitteeTrainer
from matforge.active.oracle import CalculatorOracle, Oracle, PyscfOracle
from matforge.active.parallel import OracleRunner
from matforge.active.selection import Selection, select_batch
from matforge.active.store import ActiveStore
from matforge.active.structures import perturbed
from matforge.active.uncertainty import (
    LeverageGrade,
    LinearCommitteeUncertainty,
    MaxVolGrade,
    Uncertainty,
)
from matforge.core.errors import ConfigError
from matforge.core.progress import get_logger
from matforge.mlip.job import NepConfig, SoapConfig, snap_potential, soap_potential
from matforge.mlip.potential import Potential

log = get_logger(__name__)

_RESUMABLE = {"iterations", "max_oracle_calls", "executor", "database", "runs_dir"}


def fingerprint(config: ActiveConfig) -> str:
    data = config.model_dump(mode="json", exclude=_RESUMABLE)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def make_oracle(config: ActiveConfig) -> Oracle:
    spec = config.oracle
    if spec.kind == "ase":
        return CalculatorOracle(spec.calculator, spec.parameters, stress=spec.stress)
    return PyscfOracle(basis=spec.basis, xc=spec.xc, charge=spec.charge, spin=spec.spin)


@dataclass
class ActiveResult:
    config: ActiveConfig
    potential: Potential
    curve: list[dict[str, Any]]
    store: ActiveStore
    failed: list[str] = field(default_factory=list)


class ActiveLearner:
    """One active-learning experiment, bound to its database."""

    def __init__(self, config: ActiveConfig, *, oracle: Oracle | None = None) -> None:
        self.config = config
        self.oracle = oracle if oracle is not None else make_oracle(config)
        self.store = ActiveStore(config.database_url)
        self.gap = isinstance(config.potential, SoapConfig)
        self.nep = isinstance(config.potential, NepConfig)
        self._gp_cache: dict = {}
        if self.nep:
            from matforge.mlip.nep_job import nep_settings

            settings, training = nep_settings(config.potential, config.nep)
            t = config.nep
            self.trainer = NepCommitteeTrainer(
                settings,
                training,
                members=config.uncertainty.members,
                method=t.method,
                seconds=t.seconds,
                adam_steps=t.adam_steps,
                lbfgs_steps=t.lbfgs_steps,
                learning_rate=t.learning_rate,
                generations=t.generation,
                seed=config.seed,
            )
        elif self.gap:
            from matforge.mlip.gap_job import gap_settings

            self.template = soap_potential(config.potential, config.reference)
            self.trainer = GapTrainer(self.template, gap_settings(config))
        else:
            self.template = snap_potential(config.potential, config.reference)
            fit = config.fit
            self.trainer = LinearTrainer(
                self.template,
                weights=RowWeights(fit.energy_weight, fit.force_weight, fit.stress_weight),
                alpha=fit.alpha,
            )
        self._check_fingerprint()

    # -- set-up ------------------------------------------------------------------------
    def _check_fingerprint(self) -> None:
        mine = fingerprint(self.config)
        theirs = self.store.metadata.get("fingerprint")
        if theirs is None:
            if self.store.count() > 0:
                raise ConfigError(
                    f"{self.store.url}: holds rows not written by matforge active; "
                    "choose another database"
                )
            self.store.update_metadata(fingerprint=mine, curve=[])
        elif theirs != mine:
            raise ConfigError(
                f"{self.store.url} was made with different settings (fingerprint {theirs}, "
                f"these are {mine}); only iterations, max_oracle_calls, executor and database "
                "may change when resuming. Use a new name or database for a new experiment."
            )

    def rng(self, *stream: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, *stream])

    def starts(self) -> list[Atoms]:
        rng = self.rng(0)
        return [a for spec in self.config.structures for a in spec.build(rng)]

    def _initialize(self) -> None:
        starts = self.starts()
        if self.store.count(role="train") == 0:
            initial = perturbed(starts, self.config.initial, self.rng(1))
            self.store.add_pending(
                initial, role="train", iteration=0, reasons=["initial set"] * len(initial)
            )
        spec = self.config.test_set
        if spec is None or self.store.count(role="test") > 0:
            return
        if spec.kind == "file":
            from matforge.mlip.data import read_structures

            tests = read_structures(spec.path)
            self.store.add_labelled(tests, role="test", iteration=0, reason=f"from {spec.path}")
        elif spec.kind == "perturbed":
            tests = perturbed(starts, spec.perturb, self.rng(2))
            self.store.add_pending(
                tests, role="test", iteration=0, reasons=["test set"] * len(tests)
            )
        else:
            tests = self._oracle_md(starts, spec)
            self.store.add_labelled(tests, role="test", iteration=0, reason="oracle MD")

    def _oracle_md(self, starts: list[Atoms], spec) -> list[Atoms]:
        """Test configurations from MD driven by the oracle itself (cheap oracles only)."""
        from ase.calculators.singlepoint import SinglePointCalculator
        from ase.md.langevin import Langevin
        from ase.units import fs

        from matforge.mlip.md import set_thermal_momenta

        if not isinstance(self.oracle, CalculatorOracle):
            raise ConfigError("test_set.kind 'md' needs an ASE-calculator oracle")
        rng = self.rng(3)
        frames = []
        for atoms in starts:
            for stage in spec.stages:
                work = atoms.copy()
                work.calc = self.oracle.make_calculator()
                set_thermal_momenta(work, stage.temperature, rng)
                md = Langevin(
                    work,
                    spec.timestep_fs * fs,
                    temperature_K=stage.temperature,
                    friction=0.02 / fs,
                    rng=rng,
                    fixcm=False,
                )
                every = max(1, stage.steps // spec.frames_per_stage)
                md.run(stage.steps)  # equilibrate
                for _ in range(spec.frames_per_stage):
                    md.run(every)
                    frame = work.copy()
                    stress = work.get_stress() if work.pbc.all() else None
                    frame.calc = SinglePointCalculator(
                        frame,
                        energy=work.get_potential_energy(),
                        forces=work.get_forces(),
                        stress=stress,
                    )
                    frames.append(frame)
        return frames

    # -- labelling ---------------------------------------------------------------------
    def label_pending(self, runner: OracleRunner) -> list[str]:
        report = self.store.label_pending(runner)
        if report is None:
            return []
        log.info(
            "labelled %d configurations in %.1f s (%d failed)",
            len(report.labelled),
            report.seconds,
            len(report.failed),
        )
        return [f"row {k}: {report.errors[k][-1]}" for k in report.failed]

    # -- one iteration -----------------------------------------------------------------
    def uncertainty(
        self, training: list[Atoms], iteration: int, potential: Potential | None = None
    ) -> Uncertainty:
        spec = self.config.uncertainty
        if self.nep:
            if potential is None:
                self.trainer.fit(training)
            return self.trainer.uncertainty()
        if spec.measure == "gp_variance":
            if potential is None:
                potential = self.trainer.fit(training)
            return GPVarianceUncertainty(
                potential,
                self.trainer.settings,
                cache=self._gp_cache,
                training=training,
                aggregate=spec.aggregate,
            )
        cache = self.trainer.cache
        if spec.measure == "committee":
            members = self.trainer.fit_committee(
                training, spec.members, self.rng(4, iteration), resample=spec.resample
            )
            return LinearCommitteeUncertainty(cache, members)
        grade = MaxVolGrade if spec.measure == "maxvol" else LeverageGrade
        return grade(cache, training, regularization=spec.regularization)

    def explorer(self):
        spec = self.config.explore
        if spec.kind == "pool":
            from matforge.mlip.data import read_structures

            return PoolExplorer(read_structures(spec.pool))
        return MDExplorer(
            self.starts(),
            [Stage(s.temperature, s.steps, s.pressure_gpa) for s in spec.stages],
            ensemble=spec.ensemble,
            timestep_fs=spec.timestep_fs,
            sample_every=spec.sample_every,
            stop_above=self.config.uncertainty.upper,
            friction_per_fs=spec.friction_per_fs,
            backend=spec.backend,
        )

    def select(
        self, exploration: Exploration, uncertainty: Uncertainty, iteration: int
    ) -> Selection:
        spec, selection = self.config.uncertainty, self.config.selection
        candidates = exploration.candidates
        values = np.asarray(exploration.uncertainty)
        default = "none" if self.nep else "fps" if spec.measure == "committee" else "greedy"
        diversity = selection.diversity or default
        if diversity == "random":
            allowed = np.flatnonzero(values <= spec.upper) if spec.upper else np.arange(len(values))
            rng = self.rng(5, iteration)
            n = min(selection.batch_size, len(allowed))
            picked = [int(i) for i in rng.choice(allowed, n, replace=False)]
            return Selection(
                picked,
                [float(values[i]) for i in picked],
                ["random"] * n,
                0,
                len(values) - len(allowed),
            )
        from matforge.active.uncertainty import UncertaintyEstimate

        estimate = UncertaintyEstimate(uncertainty.name, [], values)
        return select_batch(
            candidates,
            estimate,
            selection.batch_size,
            lower=spec.lower,
            upper=spec.upper,
            diversity=diversity,
            uncertainty=uncertainty,
            cache=None if self.gap or self.nep else self.trainer.cache,
        )

    def evaluate(self, potential: Potential, structures: list[Atoms]) -> dict[str, float]:
        if not structures:
            return {}
        if self.gap or self.nep:
            out = potential(potential.batch(structures), stress=False)
            counts = np.cumsum([0] + [len(a) for a in structures])
            energy, force = out.energy.detach().numpy(), out.forces.detach().numpy()
            energies = [energy[k : k + 1] for k in range(len(structures))]
            forces = [force[None, counts[k] : counts[k + 1]] for k in range(len(structures))]
        else:
            coefficients = potential.model.coefficients.detach().numpy().reshape(1, -1)
            rows = self.trainer.cache.rows(structures, forces=True)
            energies, forces = predict(rows, coefficients)
        e_err = [
            (e[0] - a.get_potential_energy()) / len(a)
            for e, a in zip(energies, structures, strict=True)
        ]
        f_err = np.concatenate(
            [(f[0] - a.get_forces()).reshape(-1) for f, a in zip(forces, structures, strict=True)]
        )
        return {
            "energy_rmse": float(np.sqrt(np.mean(np.square(e_err)))),
            "force_rmse": float(np.sqrt(np.mean(f_err**2))),
            "force_mae": float(np.abs(f_err).mean()),
        }

    def _record(
        self, iteration: int, potential: Potential, training: list[Atoms], extra: dict[str, Any]
    ) -> dict:
        record = {
            "iteration": iteration,
            "oracle_calls": len(training),
            "failed_calls": self.store.count(role="train", status="failed"),
            **{f"train_{k}": v for k, v in self.evaluate(potential, training).items()},
            **{
                f"test_{k}": v
                for k, v in self.evaluate(
                    potential, self.store.structures(role="test", status="labelled")
                ).items()
            },
            **extra,
        }
        curve = list(self.store.metadata.get("curve", []))
        curve = [c for c in curve if c["iteration"] != iteration] + [record]
        self.store.update_metadata(curve=curve)
        return record

    def _test_uids(self) -> set[str]:
        return {a.info["uid"] for a in self.store.structures(role="test", status="labelled")}

    def _stop_without_selection(self, iteration: int, selection: Selection, total: int) -> None:
        if total and selection.above_upper == total:
            reason = (
                f"all {total} candidates lie above the upper threshold: the model extrapolates "
                "everywhere it goes. Add initial data (initial.count) or raise uncertainty.upper"
            )
            log.warning("iteration %d: %s", iteration, reason)
        else:
            reason = (
                f"no candidate between the thresholds ({selection.below_lower} of {total} below "
                "the lower one): converged"
            )
            log.info("iteration %d: %s", iteration, reason)
        self.store.update_metadata(stopped_at=iteration, stop_reason=reason)

    def run(self, runner: OracleRunner) -> ActiveResult:
        self._initialize()
        failed: list[str] = []
        pending_extra: dict[str, Any] = {}
        while True:
            failed += self.label_pending(runner)
            iteration = self.store.last_iteration()
            training = self.store.structures(role="train", status="labelled")
            if not training:
                raise ConfigError("every oracle call of the initial set failed; see the database")
            potential = self.trainer.fit(training)
            curve = self.store.metadata.get("curve", [])
            if not any(c["iteration"] == iteration for c in curve):
                record = self._record(iteration, potential, training, pending_extra)
                log.info(
                    "iteration %d: %d labels, test force RMSE %s eV/A",
                    iteration,
                    record["oracle_calls"],
                    f"{record.get('test_force_rmse', float('nan')):.4f}",
                )
            calls = self.store.count(role="train")
            cap = self.config.max_oracle_calls
            if iteration >= self.config.iterations or (cap is not None and calls >= cap):
                break
            started = time.perf_counter()
            uncertainty = self.uncertainty(training, iteration + 1, potential)
            exploration = self.explorer().explore(potential, uncertainty, self.rng(6, iteration))
            selection = self.select(exploration, uncertainty, iteration + 1)
            if cap is not None:
                keep = max(0, cap - calls)
                selection = Selection(
                    selection.indices[:keep],
                    selection.uncertainty[:keep],
                    selection.reasons[:keep],
                    selection.below_lower,
                    selection.above_upper,
                )
            pending_extra = {
                "candidates": len(exploration.candidates),
                "selected": len(selection.indices),
                "below_lower": selection.below_lower,
                "above_upper": selection.above_upper,
                "stopped_trajectories": len(exploration.stopped),
                "explore_seconds": time.perf_counter() - started,
            }
            if not selection.indices:
                self._stop_without_selection(iteration + 1, selection, len(exploration.candidates))
                break
            keep = {a.info["uid"] for a in training}
            keep |= {exploration.candidates[i].info["uid"] for i in selection.indices}
            if self.gap:
                self._gp_cache = {k: v for k, v in self._gp_cache.items() if k in keep}
            elif not self.nep:
                self.trainer.cache.retain(keep | self._test_uids())
            self.store.add_pending(
                [exploration.candidates[i] for i in selection.indices],
                role="train",
                iteration=iteration + 1,
                reasons=selection.reasons,
                measure=uncertainty.name,
                uncertainties=selection.uncertainty,
            )
        # The last pass fitted `potential` on every label there is: nothing was labelled since.
        return ActiveResult(
            self.config,
            potential,
            self.store.metadata.get("curve", []),
            self.store,
            failed,
        )


def run_active_learning(config: ActiveConfig, *, oracle: Oracle | None = None) -> ActiveResult:
    """Run (or resume) the active-learning experiment `config` describes."""
    learner = ActiveLearner(config, oracle=oracle)
    with config.executor.runner(learner.oracle) as runner:
        return learner.run(runner)

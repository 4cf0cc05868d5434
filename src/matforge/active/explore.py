"""Where candidates come from: MD driven by the current model, or a given pool.

`MDExplorer` runs ASE molecular dynamics with the model being trained (Langevin NVT, or the
MTK NPT barostat) from each start structure through a schedule of stages, each a
temperature (and, for NPT, a pressure) held for a number of steps. Every `sample_every`
steps the configuration and its uncertainty are recorded as a candidate; a trajectory stops
as soon as the uncertainty passes `stop_above` (past that point the model drives the atoms
into regions where its forces mean nothing). `PoolExplorer` offers a fixed set of
configurations instead (a user's candidates, or an MD pool made elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
from ase import Atoms, units

from matforge.active.store import new_uid
from matforge.active.uncertainty import Uncertainty
from matforge.core.progress import track
from matforge.mlip.calculator import MatforgeCalculator
from matforge.mlip.md import set_thermal_momenta
from matforge.mlip.potential import Potential


@dataclass(frozen=True)
class Stage:
    temperature: float  # K
    steps: int
    pressure_gpa: float = 0.0


@dataclass
class Exploration:
    candidates: list[Atoms] = field(default_factory=list)
    uncertainty: list[float] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)  # one line per interrupted trajectory
    steps: int = 0


class Explorer(Protocol):
    def explore(
        self, potential: Potential, uncertainty: Uncertainty, rng: np.random.Generator
    ) -> Exploration: ...


def _frame(atoms: Atoms, origin: str) -> Atoms:
    frame = Atoms(atoms.numbers, atoms.positions.copy(), cell=atoms.cell.copy(), pbc=atoms.pbc)
    frame.info.update(uid=new_uid(), origin=origin)
    return frame


class PoolExplorer:
    """Candidates from a fixed set of configurations."""

    def __init__(self, pool: Sequence[Atoms]) -> None:
        self.pool = [_frame(a, a.info.get("origin", f"pool {i}")) for i, a in enumerate(pool)]

    def explore(
        self, potential: Potential, uncertainty: Uncertainty, rng: np.random.Generator
    ) -> Exploration:
        estimate = uncertainty.estimate(self.pool)
        return Exploration(list(self.pool), [float(v) for v in estimate.per_structure])


class MDExplorer:
    """MD with the current model through a schedule, sampling and stopping on uncertainty."""

    def __init__(
        self,
        starts: Sequence[Atoms],
        stages: Sequence[Stage],
        *,
        ensemble: Literal["nvt", "npt"] = "nvt",
        timestep_fs: float = 2.0,
        sample_every: int = 10,
        stop_above: float | None = None,
        friction_per_fs: float = 0.02,
        backend: str = "torch",
    ) -> None:
        if not starts or not stages:
            raise ValueError("MDExplorer needs at least one start structure and one stage")
        if ensemble == "npt" and not all(a.pbc.all() for a in starts):
            raise ValueError("NPT exploration needs periodic start structures")
        self.starts, self.stages = list(starts), list(stages)
        self.ensemble, self.timestep_fs = ensemble, timestep_fs
        self.sample_every, self.stop_above = sample_every, stop_above
        self.friction_per_fs, self.backend = friction_per_fs, backend

    def _dynamics(self, atoms: Atoms, stage: Stage, rng: np.random.Generator):
        dt = self.timestep_fs * units.fs
        if self.ensemble == "npt":
            from ase.md.nose_hoover_chain import MTKNPT

            return MTKNPT(
                atoms,
                dt,
                temperature_K=stage.temperature,
                pressure_au=stage.pressure_gpa * units.GPa,
                tdamp=100 * dt,
                pdamp=1000 * dt,
            )
        from ase.md.langevin import Langevin

        return Langevin(
            atoms,
            dt,
            temperature_K=stage.temperature,
            friction=self.friction_per_fs / units.fs,
            rng=rng,
            fixcm=False,  # sampling, not thermodynamics: a tiny drift of the centre is harmless
        )

    def explore(
        self, potential: Potential, uncertainty: Uncertainty, rng: np.random.Generator
    ) -> Exploration:
        import copy

        model = copy.copy(potential)
        model.backend = self.backend
        result = Exploration()
        for index in track(range(len(self.starts)), description="MD exploration"):
            self._trajectory(index, model, uncertainty, rng, result)
        return result

    def _trajectory(
        self,
        index: int,
        model: Potential,
        uncertainty: Uncertainty,
        rng: np.random.Generator,
        result: Exploration,
    ) -> None:
        atoms = self.starts[index].copy()
        atoms.calc = MatforgeCalculator(model)
        set_thermal_momenta(atoms, self.stages[0].temperature, rng)
        step = 0
        for number, stage in enumerate(self.stages):
            dynamics = self._dynamics(atoms, stage, rng)
            done = 0
            while done < stage.steps:
                n = min(self.sample_every, stage.steps - done)
                try:
                    dynamics.run(n)
                except (ValueError, RuntimeError, FloatingPointError) as error:
                    result.stopped.append(f"start {index}, step {step}: MD failed ({error})")
                    return
                done += n
                step += n
                result.steps += n
                origin = f"md start {index} stage {number} ({stage.temperature:g} K) step {step}"
                frame = _frame(atoms, origin)
                value = float(uncertainty.estimate([frame]).per_structure[0])
                if not np.isfinite(atoms.positions).all() or not np.isfinite(value):
                    result.stopped.append(f"start {index}, step {step}: non-finite state")
                    return
                result.candidates.append(frame)
                result.uncertainty.append(value)
                if self.stop_above is not None and value > self.stop_above:
                    result.stopped.append(
                        f"start {index}, step {step}: {uncertainty.name} {value:.3g} > "
                        f"{self.stop_above:g}"
                    )
                    return

"""Molecular dynamics with a matforge potential, through ASE's integrators.

`run_md` sets Maxwell-Boltzmann velocities (zero total momentum), then integrates NVE
(velocity Verlet), NVT (Langevin) or NPT (ASE's MTK barostat with Nose-Hoover chains,
`MTKNPT`), writing an ASE trajectory and a per-step log (time, potential, kinetic and total
energy, temperature, volume), with a progress bar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from ase import Atoms, units

from matforge.core.errors import ConfigError
from matforge.core.progress import track

Ensemble = Literal["nve", "nvt", "npt"]


@dataclass
class MDLog:
    time_fs: list[float] = field(default_factory=list)
    potential: list[float] = field(default_factory=list)
    kinetic: list[float] = field(default_factory=list)
    temperature: list[float] = field(default_factory=list)
    volume: list[float] = field(default_factory=list)

    @property
    def total(self) -> np.ndarray:
        return np.asarray(self.potential) + np.asarray(self.kinetic)

    def drift_per_atom(self, n_atoms: int) -> float:
        """Largest deviation of the total energy from its start, eV/atom."""
        total = self.total
        return float(np.abs(total - total[0]).max() / n_atoms)

    def rows(self) -> list[dict[str, float]]:
        return [
            {
                "time_fs": t,
                "potential_eV": p,
                "kinetic_eV": k,
                "total_eV": p + k,
                "temperature_K": temp,
                "volume_A3": v,
            }
            for t, p, k, temp, v in zip(
                self.time_fs,
                self.potential,
                self.kinetic,
                self.temperature,
                self.volume,
                strict=True,
            )
        ]


def set_thermal_momenta(atoms: Atoms, temperature: float, rng: np.random.Generator) -> None:
    """Maxwell-Boltzmann momenta at `temperature` (K) with zero total momentum."""
    masses = atoms.get_masses()[:, None]
    momenta = rng.standard_normal((len(atoms), 3)) * np.sqrt(masses * units.kB * temperature)
    momenta -= masses * momenta.sum(axis=0) / masses.sum()
    atoms.set_momenta(momenta)


def run_md(
    atoms: Atoms,
    *,
    ensemble: Ensemble = "nve",
    temperature: float = 300.0,
    timestep_fs: float = 1.0,
    steps: int = 1000,
    pressure_gpa: float = 0.0,
    friction_per_fs: float = 0.01,
    log_every: int = 1,
    trajectory: str | Path | None = None,
    seed: int = 0,
    show_progress: bool = True,
) -> MDLog:
    """Run MD on `atoms` (which carry their calculator); returns the energy log."""
    if atoms.calc is None:
        raise ConfigError("run_md: the atoms have no calculator (attach a potential first)")
    if steps < 1 or timestep_fs <= 0 or log_every < 1:
        raise ConfigError("run_md: steps and log_every must be >= 1 and timestep_fs > 0")
    rng = np.random.default_rng(seed)
    set_thermal_momenta(atoms, temperature, rng)
    dt = timestep_fs * units.fs
    if ensemble == "nve":
        from ase.md.verlet import VelocityVerlet

        dynamics = VelocityVerlet(atoms, timestep=dt)
    elif ensemble == "nvt":
        from ase.md.langevin import Langevin

        dynamics = Langevin(
            atoms, dt, temperature_K=temperature, friction=friction_per_fs / units.fs, rng=rng
        )
    elif ensemble == "npt":
        from ase.md.nose_hoover_chain import MTKNPT

        dynamics = MTKNPT(
            atoms,
            dt,
            temperature_K=temperature,
            pressure_au=pressure_gpa * units.GPa,
            tdamp=100 * dt,
            pdamp=1000 * dt,
        )
    else:
        raise ConfigError(f"ensemble must be 'nve', 'nvt' or 'npt', got {ensemble!r}")
    writer = None
    if trajectory is not None:
        from ase.io.trajectory import Trajectory

        path = Path(trajectory)
        if path.exists():
            raise ConfigError(f"{path} exists; choose a new trajectory file")
        writer = Trajectory(str(path), "w", atoms)
    log = MDLog()

    def record(step: int) -> None:
        log.time_fs.append(step * timestep_fs)
        log.potential.append(float(atoms.get_potential_energy()))
        log.kinetic.append(float(atoms.get_kinetic_energy()))
        log.temperature.append(float(atoms.get_temperature()))
        log.volume.append(float(atoms.get_volume()))
        if writer is not None:
            writer.write(atoms)

    record(0)
    steps_done = 0
    chunks = range(0, steps, log_every)
    for _ in track(chunks, description=f"MD ({ensemble})") if show_progress else chunks:
        n = min(log_every, steps - steps_done)
        dynamics.run(n)
        steps_done += n
        record(steps_done)
    if writer is not None:
        writer.close()
    return log

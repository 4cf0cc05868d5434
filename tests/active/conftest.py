"""Fixtures of the active-learning tests: a small copper SNAP and EMT-labelled frames."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from matforge.active.store import new_uid
from matforge.mlip.job import SnapConfig, snap_potential


def copper_snap(twojmax: int = 4):
    return snap_potential(
        SnapConfig(twojmax=twojmax, rcutfac=4.6, radius={"Cu": 0.5}, weight={"Cu": 1.0})
    )


def copper_frames(count: int, rattle: float, seed: int, *, vacancy: bool = False, labelled=True):
    """Rattled 32-atom (31 with a vacancy) fcc Cu cells, labelled by EMT."""
    rng = np.random.default_rng(seed)
    base = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    if vacancy:
        del base[0]
    frames = []
    for _ in range(count):
        atoms = Atoms(
            base.numbers,
            base.positions + rng.normal(0, rattle, base.positions.shape),
            cell=base.cell,
            pbc=True,
        )
        atoms.info["uid"] = new_uid()
        if labelled:
            work = atoms.copy()
            work.calc = EMT()
            atoms.calc = SinglePointCalculator(
                atoms,
                energy=work.get_potential_energy(),
                forces=work.get_forces(),
                stress=work.get_stress(),
            )
        frames.append(atoms)
    return frames


@pytest.fixture(scope="module")
def frames():
    """Training-like (small rattle) and out-of-distribution (large rattle, vacancy) frames."""
    return {
        "train": copper_frames(4, 0.03, 0),
        "near": copper_frames(3, 0.03, 1),
        "far": copper_frames(3, 0.25, 2, vacancy=True),
    }


@pytest.fixture(scope="session")
def make_snap():
    return copper_snap


@pytest.fixture(scope="session")
def make_frames():
    return copper_frames

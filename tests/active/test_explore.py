"""MD exploration driven by the model: schedules, NPT, stopping on uncertainty; the store."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from matforge.active import ActiveStore, LinearTrainer, MaxVolGrade, MDExplorer, Stage
from matforge.core.errors import ConfigError


@pytest.fixture(scope="module")
def fitted(frames, make_snap):
    trainer = LinearTrainer(make_snap(2))
    return trainer, trainer.fit(frames["train"])


@pytest.mark.parametrize("ensemble", ["nvt", "npt"])
def test_md_explorer_samples_through_the_schedule(fitted, frames, ensemble):
    trainer, potential = fitted
    start = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    explorer = MDExplorer(
        [start],
        [Stage(300, 20, 0.0), Stage(600, 20, 1.0)],
        ensemble=ensemble,
        sample_every=10,
        timestep_fs=1.0,
    )
    grade = MaxVolGrade(trainer.cache, frames["train"])
    result = explorer.explore(potential, grade, np.random.default_rng(0))
    assert (len(result.candidates), result.steps, result.stopped) == (4, 40, [])
    assert len({a.info["uid"] for a in result.candidates}) == 4
    assert "stage 1 (600 K)" in result.candidates[-1].info["origin"]
    assert all(np.isfinite(result.uncertainty))
    if ensemble == "npt":  # the barostat moves the cell
        assert not np.allclose(result.candidates[-1].cell.array, start.cell.array)


def test_md_stops_when_uncertainty_passes_the_upper_threshold(fitted, frames):
    trainer, potential = fitted
    start = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    explorer = MDExplorer([start], [Stage(2000, 100)], sample_every=10, stop_above=1e-6)
    result = explorer.explore(
        potential, MaxVolGrade(trainer.cache, frames["train"]), np.random.default_rng(0)
    )
    assert (len(result.candidates), result.steps) == (1, 10)
    assert "> 1e-06" in result.stopped[0]


def test_store_refuses_unknown_urls_and_keeps_messages_storable(tmp_path, frames):
    with pytest.raises(ConfigError, match="postgresql"):
        ActiveStore("mysql://host/db")
    store = ActiveStore(tmp_path / "a.db")
    (row,) = store.add_pending(frames["near"][:1], role="train", iteration=0, reasons=["1.5"])
    store.record_failure(row, "42", 1, final=False)  # a number-like message is still stored
    (atoms,) = store.structures(role="train", status="pending")
    assert (atoms.info["error"], atoms.info["attempts"]) == ("'42'", 1)
    assert atoms.info["reason"] == "'1.5'"

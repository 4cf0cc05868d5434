"""Oracle calls on a Dask LocalCluster: parallel, failures recorded and retried, not fatal."""

from __future__ import annotations

import itertools
import os
import sys
import time

import numpy as np
import pytest

pytest.importorskip("distributed", reason="Dask (extra 'active') not installed")

import cloudpickle
from ase.build import bulk

from matforge.active import ActiveConfig, CalculatorOracle, OracleRunner
from matforge.active.loop import run_active_learning
from matforge.active.store import ActiveStore

# Worker processes cannot import this test module: ship its oracles by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


class SlowFlakyOracle:
    """EMT, 0.5 s per call; structures with a vacancy (31 atoms) always fail."""

    name = "slow-flaky-emt"

    def __init__(self, delay: float = 0.5, log: str | None = None) -> None:
        self.delay = delay
        self.log = log  # every call's (start, end, pid), failed ones too
        self.emt = CalculatorOracle("emt")

    def __call__(self, atoms):
        start = time.time()
        try:
            time.sleep(self.delay)
            if len(atoms) == 31:
                raise RuntimeError("SCF did not converge (injected failure)")
            if len(atoms) == 30:
                time.sleep(10)  # hangs past the 3 s timeout: only the timeout ends it
            return self.emt(atoms)
        finally:
            if self.log is not None:
                with open(self.log, "a") as handle:
                    handle.write(f"{start} {time.time()} {os.getpid()}\n")


def _cells(*sizes):
    out = []
    for n in sizes:
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
        del atoms[: 32 - n]
        atoms.rattle(0.02, seed=n)
        out.append(atoms)
    return out


@pytest.mark.slow
def test_runner_keeps_results_when_calls_fail_or_time_out():
    """Through a scheduler address, as with a cluster made by dask-jobqueue."""
    from distributed import LocalCluster

    jobs = list(enumerate(_cells(32, 31, 30, 32)))
    results, failures = {}, []
    with (
        # three workers: the hanging call's two attempts keep two busy for 10 s each, and
        # the failing call's retry must not wait behind them (its timeout counts queueing;
        # on a loaded 2-core machine it did)
        LocalCluster(n_workers=3, threads_per_worker=1, dashboard_address=None) as cluster,
        OracleRunner(
            SlowFlakyOracle(0.1), address=cluster.scheduler_address, timeout_s=3.0, retries=1
        ) as runner,
    ):
        report = runner.run(
            jobs,
            on_result=lambda key, labels, attempt: results.setdefault(key, labels),
            on_failure=lambda key, message, attempt, final: failures.append(
                (key, message, attempt, final)
            ),
        )
    assert sorted(results) == [0, 3]
    assert sorted(report.failed) == [1, 2]
    assert report.attempts == {0: 1, 1: 2, 2: 2, 3: 1}
    assert {(k, a, f) for k, _, a, f in failures} == {
        (1, 1, False),
        (1, 2, True),
        (2, 1, False),
        (2, 2, True),
    }
    assert all("injected" in m for k, m, _, _ in failures if k == 1)
    assert all("timed out" in m for k, m, _, _ in failures if k == 2)
    assert np.isfinite(results[0].energy)
    assert results[0].forces.shape == (32, 3)


@pytest.mark.slow
def test_two_iterations_on_a_local_cluster_of_two_workers(tmp_path, make_frames):
    from ase.io import write

    pool = make_frames(8, 0.08, 11, labelled=False)
    write(tmp_path / "pool.extxyz", pool)
    config = ActiveConfig.model_validate(
        {
            "name": "dask",
            "runs_dir": str(tmp_path),
            "structures": [
                {"kind": "bulk", "symbol": "Cu", "a": 3.61, "repeat": [2, 2, 2]},
                {"kind": "bulk", "symbol": "Cu", "a": 3.61, "repeat": [2, 2, 2], "vacancies": 1},
            ],
            "initial": {"count": 2, "rattle": 0.03},
            "potential": {
                "twojmax": 4,
                "rcutfac": 4.6,
                "radius": {"Cu": 0.5},
                "weight": {"Cu": 1.0},
            },
            "uncertainty": {"measure": "maxvol", "lower": 0.0},
            "selection": {"batch_size": 2},
            "explore": {"kind": "pool", "pool": str(tmp_path / "pool.extxyz")},
            "executor": {"kind": "dask", "n_workers": 2, "retries": 1},
            "iterations": 2,
        }
    )
    calls = tmp_path / "calls.log"
    result = run_active_learning(config, oracle=SlowFlakyOracle(0.5, str(calls)))
    store = ActiveStore(config.database_url)
    labelled = store.structures(role="train", status="labelled")
    failed = store.structures(role="train", status="failed")
    assert len(labelled) == 2 + 2 + 2  # the initial bulk copies, then 2 per iteration
    assert len(failed) == 2  # both vacancy copies, after one retry each
    assert all(a.info["attempts"] == 2 and "injected" in a.info["error"] for a in failed)
    assert len(result.failed) == 2
    assert [c["iteration"] for c in result.curve] == [0, 1, 2]
    assert [c["failed_calls"] for c in result.curve] == [2, 2, 2]
    # In parallel: two worker processes labelled, and some calls overlapped in time.
    assert len({a.info["worker"] for a in labelled}) == 2
    spans = sorted(tuple(map(float, line.split()[:2])) for line in calls.read_text().splitlines())
    assert len(spans) == 2 + 2 * 2 + 2 + 2  # 6 labels, 2 failures retried once each
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))

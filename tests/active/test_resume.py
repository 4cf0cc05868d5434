"""kill -9 in the middle of an iteration, restart: every label exactly once, none lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from matforge.active.store import ActiveStore

SLOW_EMT = textwrap.dedent(
    """
    import time
    from ase.calculators.emt import EMT

    class SlowEMT(EMT):
        def calculate(self, *args, **kwargs):
            time.sleep(0.4)
            super().calculate(*args, **kwargs)
    """
)


def _config(tmp_path) -> dict:
    return {
        "name": "resume",
        "runs_dir": str(tmp_path / "runs"),
        "structures": [{"kind": "bulk", "symbol": "Cu", "a": 3.61, "repeat": [2, 2, 2]}],
        "initial": {"count": 3, "rattle": 0.03},
        "potential": {"twojmax": 2, "rcutfac": 4.6, "radius": {"Cu": 0.5}, "weight": {"Cu": 1.0}},
        "uncertainty": {"measure": "leverage", "lower": 0.0},
        "selection": {"batch_size": 3},
        "explore": {"kind": "pool", "pool": str(tmp_path / "pool.extxyz")},
        "oracle": {"kind": "ase", "calculator": "slow_emt:SlowEMT"},
        "executor": {"kind": "serial"},
        "iterations": 2,
    }


@pytest.mark.slow
def test_a_killed_run_resumes_with_every_label_exactly_once(tmp_path, make_frames):
    from ase.io import write

    write(tmp_path / "pool.extxyz", make_frames(10, 0.1, 3, labelled=False))
    (tmp_path / "slow_emt.py").write_text(SLOW_EMT)
    config_path = tmp_path / "active.yaml"
    config_path.write_text(yaml.safe_dump(_config(tmp_path)))
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "MATFORGE_QUIET": "1",
    }
    command = [sys.executable, "-m", "matforge", "active", "run", str(config_path)]
    database = tmp_path / "runs" / "resume" / "active.db"

    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    k = 4  # the 3 initial labels and one of iteration 1
    deadline = time.monotonic() + 120
    labelled_before: dict[int, tuple] = {}
    while time.monotonic() < deadline and process.poll() is None:
        if database.exists():
            try:
                store = ActiveStore(database)
                rows = list(store.db.select(role="train", status="labelled"))
            except Exception:
                rows = []
            if len(rows) >= k:
                process.send_signal(signal.SIGKILL)
                process.wait()
                break
        time.sleep(0.05)
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()[-2000:]
    store = ActiveStore(database)
    labelled_before = {
        r.id: (r.uid, r.energy, r.mtime) for r in store.db.select(role="train", status="labelled")
    }
    assert k <= len(labelled_before) < 9
    assert store.count(role="train", status="pending") > 0  # killed mid-iteration

    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    store = ActiveStore(database)
    rows = list(store.db.select(role="train"))
    uids = [r.uid for r in rows]
    assert len(uids) == len(set(uids)) == 3 + 3 + 3
    assert all(r.status == "labelled" for r in rows)
    assert sorted(r.iteration for r in rows) == [0] * 3 + [1] * 3 + [2] * 3
    for row_id, (uid, energy, mtime) in labelled_before.items():
        row = store.db.get(id=row_id)
        assert (row.uid, row.energy, row.mtime) == (uid, energy, mtime)  # not labelled again
    curve = store.metadata["curve"]
    assert [c["iteration"] for c in curve] == [0, 1, 2]
    assert [c["oracle_calls"] for c in curve] == [3, 6, 9]

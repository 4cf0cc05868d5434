from __future__ import annotations

import json
import os
import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from matforge.core.config import JobConfig, load_config
from matforge.core.errors import RunDirectoryError
from matforge.core.rundir import (
    RunDirectory,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    dumps_json,
)

STAMP = datetime(2026, 11, 24, 12, 0, 0)


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_create_names_the_run_with_a_timestamp(tmp_path: Path) -> None:
    run = RunDirectory.create("design", tmp_path / "runs", timestamp=STAMP)
    assert run.path == tmp_path / "runs" / "design-20261124-120000"
    assert run.path.is_dir()


def test_an_existing_run_is_never_reused(tmp_path: Path) -> None:
    first = RunDirectory.create("design", tmp_path, timestamp=STAMP)
    first.write_json("metrics.json", {"best": 1.0})
    second = RunDirectory.create("design", tmp_path, timestamp=STAMP)
    assert second.path.name == "design-20261124-120000-2"
    assert json.loads((first.path / "metrics.json").read_text()) == {"best": 1.0}
    assert not (second.path / "metrics.json").exists()


def test_concurrent_creates_get_distinct_folders(tmp_path: Path) -> None:
    runs: list[RunDirectory] = []
    threads = [
        threading.Thread(
            target=lambda: runs.append(RunDirectory.create("x", tmp_path, timestamp=STAMP))
        )
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.path for r in runs}) == 8


@pytest.mark.parametrize("name", ["", "a/b", "..", ".hidden"])
def test_rejects_unsafe_run_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(RunDirectoryError, match="plain folder name"):
        RunDirectory.create(name, tmp_path)


def test_atomic_write_refuses_to_overwrite_by_default(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    atomic_write_bytes(target, b"user data")
    with pytest.raises(RunDirectoryError, match="already exists; refusing to overwrite"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"user data"
    atomic_write_bytes(target, b"new", overwrite=True)
    assert target.read_bytes() == b"new"
    assert leftovers(tmp_path) == []


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        target = atomic_write_text(tmp_path / "result.csv", "a,b\n")
        assert target.stat().st_mode & 0o777 == 0o644
        target.chmod(0o600)
        atomic_write_text(target, "c,d\n", overwrite=True)
        assert target.stat().st_mode & 0o777 == 0o600  # an existing file keeps its mode
    finally:
        os.umask(old)


def test_failed_write_keeps_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old")

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new", overwrite=True)
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_write_into_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunDirectoryError, match="missing"):
        atomic_write_text(tmp_path / "no" / "such" / "file.txt", "x")


def test_json_is_strict_and_understands_numpy(tmp_path: Path) -> None:
    path = atomic_write_json(
        tmp_path / "m.json",
        {
            "array": np.arange(3),
            "scalar": np.float64(0.5),
            "nan": float("nan"),
            "inf": np.inf,
            "path": tmp_path,
            "nested": {"t": (1, 2)},
        },
    )
    data = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert data == {
        "array": [0, 1, 2],
        "scalar": 0.5,
        "nan": None,
        "inf": None,
        "path": str(tmp_path),
        "nested": {"t": [1, 2]},
    }
    with pytest.raises(TypeError, match="cannot write object"):
        dumps_json({"x": object()})


def test_run_files_stay_inside_the_run(tmp_path: Path) -> None:
    run = RunDirectory.create("r", tmp_path, timestamp=STAMP)
    assert run.write_text("plots/a.txt", "x") == run.path.resolve() / "plots" / "a.txt"
    with pytest.raises(RunDirectoryError, match="outside the run directory"):
        run.write_text("../escape.txt", "x")
    assert not (tmp_path / "escape.txt").exists()


def test_run_writes_config_metrics_table_and_figure(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    run = RunDirectory.create("r", tmp_path, timestamp=STAMP)
    config = JobConfig(name="r", seed=3)
    run.write_config(config)
    assert load_config(run.path / "config.yaml", JobConfig) == config
    run.write_metrics({"rmse": 0.1})
    run.write_metrics({"rmse": 0.05})  # a run updates its own metrics
    assert json.loads((run.path / "metrics.json").read_text()) == {"rmse": 0.05}
    run.write_table("history.csv", pd.DataFrame({"step": [1, 2], "loss": [0.5, 0.25]}))
    assert (run.path / "history.csv").read_text().splitlines()[0] == "step,loss"
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    run.save_figure("plots/line.png", fig)
    plt.close(fig)
    assert (run.path / "plots" / "line.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert leftovers(run.path) == []


def test_open_missing_run(tmp_path: Path) -> None:
    with pytest.raises(RunDirectoryError, match="does not exist"):
        RunDirectory(tmp_path / "gone")

from __future__ import annotations

import json

from matforge.core.environment import (
    PARTS,
    declared_extras,
    environment_report,
    extras_status,
    installed_version,
    parts_status,
)
from matforge.core.rundir import dumps_json


def test_extras_come_from_the_installed_metadata() -> None:
    extras = declared_extras()
    assert {"calphad", "bo", "dft", "reference", "dev", "test", "all"} <= set(extras)
    assert extras["calphad"] == ["numba", "pycalphad"]
    assert {"pytest", "hypothesis", "ruff"} <= set(extras["test"])
    assert {"botorch", "pycalphad", "pyscf"} <= set(extras["all"])


def test_dev_extra_is_reported_installed_when_running_tests() -> None:
    dev = next(row for row in extras_status() if row["extra"] == "dev")
    assert dev["installed"]
    assert dev["packages"]["pytest"]


def test_parts_status() -> None:
    rows = {row["part"]: row for row in parts_status()}
    assert set(rows) == {p.key for p in PARTS}
    assert rows["core"]["status"] == "usable"
    for row in rows.values():
        if not row["implemented"]:
            assert row["status"] == "planned"
            assert row["install_hint"] == ""
        elif row["missing_extras"]:
            assert row["status"] == "needs extra"
            assert row["install_hint"].startswith("pip install 'matforge[")
        else:
            assert row["status"] == ("partial" if row["missing"] else "usable")


def test_report_is_strict_json() -> None:
    report = json.loads(dumps_json(environment_report()))
    assert report["torch"]["version"]
    assert report["core_packages"]["ase"]


def test_a_part_in_progress_is_reported_partial_not_usable() -> None:
    calphad = next(row for row in parts_status() if row["part"] == "calphad")
    assert calphad["implemented"]
    assert calphad["missing"]
    assert calphad["status"] in {"partial", "needs extra"}


def test_doctor_reports_checks_run_here_not_benchmark_figures(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MATFORGE_CACHE_DIR", str(tmp_path))
    rows = {row["part"]: row for row in parts_status()}
    assert rows["core"]["check"] == (
        "element data from mendeleev " + installed_version("mendeleev") + ": VEC(CoCrFeMnNi) = 8"
    )
    assert f"0 compiled kernels in {tmp_path / 'kernels'}" in rows["calphad"]["check"]
    (tmp_path / "kernels" / "__pycache__").mkdir(parents=True)
    (tmp_path / "kernels" / "__pycache__" / "kabc.kernel-28.py311.nbi").write_bytes(b"")
    rows = {row["part"]: row for row in parts_status()}
    assert "1 compiled kernels" in rows["calphad"]["check"]
    # No speed-up factors or agreement counts written into the code.
    for part in PARTS:
        assert not any(ch.isdigit() for ch in part.missing), part

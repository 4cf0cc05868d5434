from __future__ import annotations

import json

from matforge.core.environment import (
    PARTS,
    declared_extras,
    environment_report,
    extras_status,
    parts_status,
)
from matforge.core.rundir import dumps_json


def test_extras_come_from_the_installed_metadata() -> None:
    extras = declared_extras()
    assert {"calphad", "bo", "dft", "reference", "dev", "test", "all"} <= set(extras)
    assert extras["calphad"] == ["pycalphad"]
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
            assert row["status"] == ("partial" if row["progress"] else "usable")


def test_report_is_strict_json() -> None:
    report = json.loads(dumps_json(environment_report()))
    assert report["torch"]["version"]
    assert report["core_packages"]["ase"]


def test_a_part_in_progress_is_reported_partial_not_usable() -> None:
    calphad = next(row for row in parts_status() if row["part"] == "calphad")
    assert calphad["implemented"]
    assert calphad["progress"]
    assert calphad["status"] in {"partial", "needs extra"}

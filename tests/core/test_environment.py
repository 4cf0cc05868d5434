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
        assert row["status"] == ("planned" if not row["implemented"] else row["status"])
        if not row["implemented"]:
            assert row["install_hint"] == ""


def test_report_is_strict_json() -> None:
    report = json.loads(dumps_json(environment_report()))
    assert report["torch"]["version"]
    assert report["core_packages"]["ase"]

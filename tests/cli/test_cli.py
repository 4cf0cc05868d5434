from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from matforge import __version__
from matforge.cli import app
from matforge.core import progress

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"matforge {__version__}"


def test_help_lists_command_groups() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("doctor", "data"):
        assert command in result.stdout


def test_doctor_table_and_json() -> None:
    result = run("doctor")
    assert result.exit_code == 0, result.output
    for heading in ("Core packages", "Optional extras", "Parts", "usable", "partial"):
        assert heading in result.stdout
    report = json.loads(run("doctor", "--json").stdout)
    assert report["matforge"] == __version__
    assert {row["part"] for row in report["parts"]} >= {"core", "calphad", "design", "mlip"}
    calphad = next(row for row in report["parts"] if row["part"] == "calphad")
    assert calphad["status"] == "partial"
    assert "GPU" in calphad["missing"]
    assert calphad["check"].startswith("CPU backend ")
    xc = next(row for row in report["parts"] if row["part"] == "xc")
    assert xc["status"] in ("partial", "needs extra")
    assert "CCSD(T)" in xc["missing"]


def test_data_list() -> None:
    result = run("data", "list")
    assert result.exit_code == 0
    assert "mpea" in result.stdout
    assert "Apache-2.0" in result.stdout
    listing = json.loads(run("data", "list", "--json").stdout)
    names = [d["name"] for d in listing["datasets"]]
    assert "mpea" in names
    assert "alzn_mey" in names
    assert all(d["size_bytes"] > 0 for d in listing["datasets"])


def test_data_show_gives_attribution() -> None:
    result = run("data", "show", "mpea")
    assert result.exit_code == 0
    assert "Borg" in result.stdout
    assert "Apache-2.0" in result.stdout
    detail = json.loads(run("data", "show", "alzn_mey", "--json").stdout)
    assert detail["license"] == "MIT"
    assert detail["elements"] == ["AL", "ZN"]
    assert detail["files"][0]["path"].endswith("alzn_mey.tdb")


def test_data_show_unknown_is_a_clean_error() -> None:
    result = run("data", "show", "nosuch")
    assert result.exit_code == 1
    assert "error: no bundled data set named 'nosuch'" in result.stderr
    assert "Traceback" not in result.output


def test_data_path() -> None:
    result = run("data", "path", "alzn_mey")
    assert result.exit_code == 0
    assert result.stdout.strip().endswith("alzn_mey.tdb")


def test_progress_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    progress.set_quiet(False)
    try:
        assert list(progress.track(range(3), description="testing")) == [0, 1, 2]
    finally:
        progress.set_quiet(True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "testing" in captured.err


def test_quiet_progress_is_silent(capsys: pytest.CaptureFixture[str]) -> None:
    progress.set_quiet(True)
    assert list(progress.track(["a"], description="hidden")) == ["a"]
    assert capsys.readouterr().err == ""


def test_installed_entry_point_prints_one_json_object() -> None:
    """The real console script, in a fresh process: stdout is exactly one JSON object."""
    result = subprocess.run(
        [sys.executable, "-m", "matforge", "data", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    decoder = json.JSONDecoder()
    value, end = decoder.raw_decode(result.stdout)
    assert result.stdout[end:].strip() == ""
    assert isinstance(value, dict)

"""Condition grids, `matforge calphad equilibrium` and `matforge calphad diagram`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from matforge.calphad import build_phase_models, load_database
from matforge.calphad.conditions import condition_grid, parse_composition_options, parse_values
from matforge.calphad.diagram import binary_diagram
from matforge.cli import app
from matforge.core.errors import ConfigError

runner = CliRunner()


def test_ranges_include_their_end_and_reject_nonsense() -> None:
    assert parse_values("0:1:0.25", "--x") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert parse_values("500", "--T") == [500.0]
    assert parse_values("500,600", "--T") == [500.0, 600.0]
    assert len(parse_values("0:1:0.1", "--x")) == 11
    for bad in ("1:0:0.1", "0:1:0", "0:1", "abc", "0:1:x"):
        with pytest.raises(ConfigError, match="--x"):
            parse_values(bad, "--x")


def test_range_errors_say_what_is_wrong_with_the_range() -> None:
    # The specific messages reach the user (not replaced by the generic "cannot read").
    with pytest.raises(ConfigError, match=r"needs start <= stop and a positive step"):
        parse_values("900:500:50", "--T")
    with pytest.raises(ConfigError, match=r"needs start <= stop and a positive step"):
        parse_values("0:1:-0.1", "--x")
    with pytest.raises(ConfigError, match=r"has 100000001 values, too many"):
        parse_values("0:1:1e-8", "--x")
    with pytest.raises(ConfigError, match=r"finite"):
        parse_values("nan:1:0.1", "--x")
    with pytest.raises(ConfigError, match=r"cannot read '0:1:'"):
        parse_values("0:1:", "--x")


def test_composition_grid_drops_points_off_the_simplex() -> None:
    fractions = parse_composition_options(["co=0:1:0.5", "CR=0.5"])
    grid = condition_grid(["CO", "CR", "NI"], [900.0, 1000.0], fractions)
    assert grid.elements == ("CO", "CR", "NI")
    # CO in {0, 0.5, 1} with CR 0.5: CO = 1 leaves NI negative and is dropped.
    assert grid.bulk.shape == (4, 3)
    np.testing.assert_allclose(grid.bulk.sum(dim=1).numpy(), 1.0)
    assert grid.temperature.tolist() == [900.0, 900.0, 1000.0, 1000.0]
    with pytest.raises(ConfigError, match="all components but one"):
        condition_grid(["CO", "CR"], [900.0], {"CO": [0.5], "CR": [0.5]})
    with pytest.raises(ConfigError, match="not among the components"):
        condition_grid(["CO", "CR"], [900.0], {"FE": [0.5]})
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        parse_composition_options(["CO=1.5"])
    with pytest.raises(ConfigError, match="ELEMENT=VALUES"):
        parse_composition_options(["0.5"])


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_equilibrium_command_json_matches_the_documented_shape() -> None:
    result = runner.invoke(
        app,
        [
            "calphad", "equilibrium", "alzn_mey", "--components", "AL,ZN",
            "--T", "600", "--x", "ZN=0.3,0.75", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["components"] == ["AL", "ZN"]
    first, second = payload["points"]
    assert first["T"] == 600.0
    assert first["x"] == {"ZN": 0.3}
    assert first["converged"] is True
    # Al-30Zn at 600 K lies in the FCC miscibility gap: two FCC sets.
    assert set(first["phases"]) == {"FCC_A1", "FCC_A1#2"}
    assert sum(first["phases"].values()) == pytest.approx(1.0, abs=1e-9)
    assert set(first["mu"]) == {"AL", "ZN"}
    assert set(second["phases"]) == {"FCC_A1", "HCP_A3"}


def test_equilibrium_command_names_bad_input() -> None:
    cases = [
        (["--components", "AL,XX", "--T", "600", "--x", "XX=0.3"], "XX"),
        (["--components", "AL,ZN", "--T", "600", "--x", "ZN=0.3", "--phases", "FOO"], "FOO"),
        (["--components", "AL,ZN", "--T", "-5", "--x", "ZN=0.3"], "positive"),
        (["--components", "AL,ZN", "--T", "600", "--x", "ZN=2"], "[0, 1]"),
    ]
    for args, expected in cases:
        result = runner.invoke(app, ["calphad", "equilibrium", "alzn_mey", *args])
        assert result.exit_code == 1, args
        assert expected in result.output, result.output
    result = runner.invoke(
        app, ["calphad", "equilibrium", "missing.tdb", "--components", "A,B", "--T", "600",
              "--x", "B=0.5"]
    )  # fmt: skip
    assert result.exit_code == 1
    assert "missing.tdb" in result.output


@pytest.mark.reference
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_binary_diagram_boundaries_match_pycalphad_tie_lines() -> None:
    """Tie-line ends of our Al-Zn diagram equal pycalphad's at the same grid points."""
    from pycalphad import equilibrium as reference_equilibrium
    from pycalphad import variables as v

    models = build_phase_models("alzn_mey", ["AL", "ZN"])
    temperatures = [450.0, 600.0, 800.0]
    fractions = [round(0.02 * i, 2) for i in range(1, 50)]
    diagram = binary_diagram(models, ("AL", "ZN"), temperatures, fractions)
    reference = reference_equilibrium(
        load_database("alzn_mey"),
        ["AL", "ZN", "VA"],
        sorted(models),
        {v.T: temperatures, v.P: 101325, v.N: 1, v.X("ZN"): fractions},
    )
    expected = set()
    phase_names = np.asarray(reference.Phase.squeeze())
    x_zn = np.asarray(reference.X.sel(component="ZN").squeeze())
    for i, t in enumerate(temperatures):
        for j in range(len(fractions)):
            names = [str(p) for p in phase_names[i, j] if str(p)]
            if len(names) >= 2:
                for k, name in enumerate(names):
                    expected.add((name, t, round(float(x_zn[i, j, k]), 3)))
    ours = {
        (p, float(t), round(float(x), 3))
        for p, x, t in zip(diagram.phases, diagram.x, diagram.temperature, strict=True)
    }
    assert diagram.unconverged == 0
    assert len(expected) > 6
    assert ours == expected


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_diagram_command_writes_a_png_and_never_overwrites(tmp_path) -> None:
    out = tmp_path / "alzn.png"
    args = ["calphad", "diagram", "alzn_mey", "AL", "ZN", "--T", "500:700:100",
            "--x-step", "0.05", "--out", str(out), "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads(result.stdout)
    assert summary["boundary_points"] > 0
    assert {"FCC_A1", "HCP_A3"} <= set(summary["phases_on_boundaries"])
    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert "exists" in again.output

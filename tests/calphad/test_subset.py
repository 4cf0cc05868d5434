"""Database subsets give the same Gibbs energies as the databases they come from."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import symengine
import torch
from typer.testing import CliRunner

pytest.importorskip("pycalphad", reason="needs the 'calphad' extra (pycalphad)")

from matforge.calphad import build_phase_models, load_database
from matforge.calphad.subset import (
    _add_piecewise,
    leading_comments,
    subset_database,
    write_database,
)
from matforge.cli import app
from matforge.core.errors import DataError, RunDirectoryError
from matforge.data import get_dataset

CANTOR = ["CO", "CR", "FE", "MN", "NI"]
# FCC2_L10 cannot be modelled by pycalphad for these elements (its ordered and disordered
# parts have different interstitial ratios), in the full database as in the subset.
UNBUILDABLE = {"FCC2_L10"}


def assert_same_gibbs(full: dict, reduced: dict, rtol: float) -> None:
    assert sorted(full) == sorted(reduced)
    generator = torch.Generator().manual_seed(0)
    for phase, model in full.items():
        assert model.site_fractions == reduced[phase].site_fractions, phase
        y = model.sample_site_fractions(100, generator=generator)
        temperature = torch.linspace(300.0, 2500.0, 100, dtype=torch.float64)
        expected = model.gibbs(y, temperature)
        got = reduced[phase].gibbs(y, temperature)
        relative = ((got - expected).abs() / expected.abs().clamp(min=1.0)).max().item()
        assert relative < rtol, f"{phase}: {relative:.2e}"


def test_subset_of_a_quaternary_keeps_the_binary_gibbs_energies(tmp_path: Path) -> None:
    subset = subset_database("alcocrni", ["AL", "NI"])
    assert "CO" not in subset.elements
    assert "CR" not in subset.elements
    path = write_database(subset, tmp_path / "alni.tdb")
    full = build_phase_models("alcocrni", ["AL", "NI"])
    reduced = build_phase_models(path, ["AL", "NI"])
    assert_same_gibbs(full, reduced, rtol=1e-10)


@pytest.mark.reference
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_bundled_cantor_subset_equals_the_full_mf_steel_database(shared_data: Path) -> None:
    full_db = load_database(shared_data / "tdb" / "mf-steel.tdb")
    bundled_db = load_database("cocrfemnni_mfsteel")
    # pycalphad drops a disordered phase whose ordered partner is also asked for (the
    # ordered model covers both states), so the disordered phases get their own check.
    everything = sorted(set(bundled_db.phases) - UNBUILDABLE)
    disordered = ["BCC_A2", "FCC_A1", "HCP_A3", "LIQUID", "SIGMA_D8B"]
    for phases in (everything, disordered):
        full = build_phase_models(full_db, CANTOR, phases)
        bundled = build_phase_models(bundled_db, CANTOR, phases)
        # Parameters pass through pycalphad's TDB writer; its number formatting costs ~1e-12.
        assert_same_gibbs(full, bundled, rtol=1e-10)
    assert len(everything) > 80


def test_unbuildable_phase_is_reported_by_name() -> None:
    with pytest.raises(DataError, match="pycalphad cannot build phase FCC2_L10"):
        build_phase_models("cocrfemnni_mfsteel", CANTOR, ["FCC2_L10"])


def test_unknown_element_and_existing_output(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=re.escape("unknown element(s) ['XX']")):
        subset_database("alzn_mey", ["AL", "XX"])
    target = tmp_path / "out.tdb"
    target.write_text("user data")
    with pytest.raises(RunDirectoryError, match="refusing to overwrite"):
        write_database(subset_database("alzn_mey", ["AL"]), target)
    assert target.read_text() == "user data"


def test_duplicate_parameters_merge_only_over_equal_ranges() -> None:
    t = symengine.Symbol("T")
    inside = symengine.And(symengine.Le(298.15, t), symengine.Lt(t, 6000))
    a = symengine.Piecewise((-1000.0, inside), (0, True))
    b = symengine.Piecewise((-2685.0, inside), (0, True))
    merged = _add_piecewise(a, b, ("HCP_A3", None, "TC", 0))
    assert float(merged.subs({t: 1000})) == -3685.0
    other = symengine.Piecewise((5.0, symengine.Lt(t, 500)), (0, True))
    with pytest.raises(DataError, match="different temperature ranges"):
        _add_piecewise(a, other, ("HCP_A3", None, "TC", 0))


def test_cli_subset_carries_the_source_header(tmp_path: Path) -> None:
    out = tmp_path / "alni.tdb"
    runner = CliRunner()
    result = runner.invoke(
        app, ["calphad", "subset", "alcocrni", "--elements", "al,ni", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["elements"] == ["AL", "NI"]
    assert "FCC_A1" in summary["phases"]
    text = out.read_text()
    assert text.startswith("$ Subset of alcocrni.tdb for AL-NI")
    assert leading_comments(get_dataset("alcocrni").path()).splitlines()[0] in text
    again = runner.invoke(
        app, ["calphad", "subset", "alcocrni", "--elements", "AL,NI", "--out", str(out)]
    )
    assert again.exit_code == 1
    assert "refusing to overwrite" in again.stderr


def test_bundled_subset_phases_have_finite_energies() -> None:
    models = build_phase_models("cocrfemnni_mfsteel", CANTOR, ["FCC_A1", "BCC_A2", "SIGMA_D8B"])
    for model in models.values():
        y = model.sample_site_fractions(50, generator=torch.Generator().manual_seed(1))
        assert torch.isfinite(model.gibbs(y, 1000.0)).all()
    fcc = models["FCC_A1"]
    equimolar = torch.tensor([[0.2, 0.2, 0.2, 0.2, 0.2, 1.0]], dtype=torch.float64)
    assert fcc.site_fractions[-1] == "FCC_A1:1:VA"
    np.testing.assert_allclose(fcc.composition(equimolar).numpy(), [[0.2] * 5])


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_unary_elements_mix_ideally_and_coverage_says_so() -> None:
    """Pd, added to the Al-Cu-Ni slice of MF Steel from a unary database, has its lattice
    stability in FCC and no interaction: Cu-Pd in FCC_A1 mixes ideally, Cu-Ni does not."""
    from matforge.calphad.subset import interaction_coverage

    db = load_database("alcunipd_mfsteel")
    coverage = interaction_coverage(db, "FCC_A1", ["AL", "CU", "NI", "PD"])
    assert coverage["CU-PD"] == coverage["AL-PD"] == coverage["NI-PD"] == 0
    assert min(coverage["AL-CU"], coverage["AL-NI"], coverage["CU-NI"]) > 0
    gas = 8.3145  # J/mol/K as pycalphad (and so the database's models) take it
    for pair, ideal in ((["CU", "PD"], True), (["CU", "NI"], False)):
        model = build_phase_models(db, pair, ["FCC_A1"])["FCC_A1"]
        assert model.site_fractions[-1] == "FCC_A1:1:VA"
        x = torch.tensor([0.3], dtype=torch.float64)
        y = torch.stack([x, 1 - x, torch.ones_like(x)], dim=1)  # pair order = sorted
        ends = [torch.tensor([[1.0, 0.0, 1.0]]), torch.tensor([[0.0, 1.0, 1.0]])]
        temperature = 1000.0
        pure = [model.gibbs(e.double(), temperature) for e in ends]
        excess = model.gibbs(y, temperature) - x * pure[0] - (1 - x) * pure[1]
        entropy = gas * temperature * (x * torch.log(x) + (1 - x) * torch.log(1 - x))
        gap = float((excess - entropy).abs().max())
        assert (gap < 1e-6) if ideal else (gap > 100.0), (pair, gap)


def test_drop_phases_and_unary_elements_reject_unknown_names() -> None:
    from matforge.calphad.subset import add_unary_elements, drop_phases

    db = subset_database("alcocrni", ["AL", "NI"])
    with pytest.raises(DataError, match="not in the database"):
        drop_phases(db, ["NO_SUCH_PHASE"])
    kept = drop_phases(db, ["L12_FCC"])
    assert "L12_FCC" not in kept.phases
    assert "L12_FCC" in db.phases  # the source is left alone
    with pytest.raises(DataError, match="has no"):
        add_unary_elements(db, "alcocrni", ["PD"])

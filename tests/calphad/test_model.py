"""Gibbs energies compiled to torch, checked against pycalphad's own evaluation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pycalphad = pytest.importorskip("pycalphad", reason="needs the 'calphad' extra (pycalphad)")

from matforge.calphad import build_phase_models, load_database  # noqa: E402
from matforge.core.errors import DataError  # noqa: E402
from matforge.data import get_dataset, list_datasets  # noqa: E402

BUNDLED_TDB = [ds.name for ds in list_datasets() if ds.kind == "tdb"]
# The phases of the Co-Cr-Fe-Mn-Ni system that matter for high-entropy alloys, with
# magnetic terms (FCC, BCC, HCP) and the five-sublattice sigma phase.
PHASES = {
    "cocrfemnni_mfsteel": [
        "BCC_A2",
        "CBCC_A12",
        "CUB_A13",
        "FCC_A1",
        "HCP_A3",
        "LIQUID",
        "SIGMA_D8B",
        "LAVES_C14",
        "MU2_D85",
        "CHI_A12",
    ]
}


def random_site_fractions(model: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.concatenate(
        [rng.dirichlet(np.ones(len(c)), size=n) for c in model.constituents], axis=1
    )


def species_of(db: Any, elements: list[str]) -> list[str]:
    return sorted(elements) + (["VA"] if "VA" in db.elements else [])


def assert_matches_pycalphad(db: Any, elements: list[str], models: dict, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for phase, model in models.items():
        y = random_site_fractions(model, 60, rng)
        temperature = rng.uniform(300.0, 2500.0, size=60)
        gibbs, moles = model.evaluate(torch.tensor(y), torch.tensor(temperature))
        reference = pycalphad.calculate(
            db,
            species_of(db, elements),
            phase,
            T=temperature,
            P=101325,
            N=1,
            points=y,
            broadcast=False,
            output="GM",
        )
        expected = np.asarray(reference.GM).ravel()
        relative = np.abs(gibbs.numpy() - expected) / np.maximum(np.abs(expected), 1.0)
        assert relative.max() < 1e-8, f"{phase}: relative error {relative.max():.2e}"
        np.testing.assert_allclose(
            moles.numpy(), np.asarray(reference.X).reshape(60, -1), atol=1e-12, err_msg=phase
        )


@pytest.mark.reference
@pytest.mark.filterwarnings("ignore:phase BCC_A2. the database uses")
@pytest.mark.parametrize("name", BUNDLED_TDB)
def test_gibbs_energy_matches_pycalphad_on_bundled_databases(name: str) -> None:
    db = load_database(name)
    elements = get_dataset(name).elements
    models = build_phase_models(db, elements, PHASES.get(name))
    assert models
    assert_matches_pycalphad(db, elements, models, seed=len(name))


@pytest.mark.reference
@pytest.mark.parametrize(
    ("name", "phase"),
    [
        ("alzn_mey", "FCC_A1"),
        ("alni_dupin_2001", "BCC_B2"),
        ("crfe_bcc_magnetic", "BCC_A2"),
        ("alcocrni", "SIGMA_SGTE"),
    ],
)
def test_temperature_derivative_is_minus_pycalphad_entropy(name: str, phase: str) -> None:
    """dG/dT by autograd through the compiled model equals -S from pycalphad."""
    db = load_database(name)
    elements = get_dataset(name).elements
    model = build_phase_models(db, elements, [phase])[phase]
    rng = np.random.default_rng(0)
    y = random_site_fractions(model, 20, rng)
    temperature = torch.tensor(rng.uniform(400.0, 1800.0, size=20), requires_grad=True)
    gibbs = model.gibbs(torch.tensor(y), temperature)
    (dg_dt,) = torch.autograd.grad(gibbs.sum(), temperature)
    entropy = pycalphad.calculate(
        db,
        species_of(db, elements),
        phase,
        T=temperature.detach().numpy(),
        P=101325,
        N=1,
        points=y,
        broadcast=False,
        output="SM",
    )
    np.testing.assert_allclose(-dg_dt.numpy(), np.asarray(entropy.SM).ravel(), rtol=1e-7)


def test_site_fraction_gradient_matches_finite_differences() -> None:
    model = build_phase_models("alni_dupin_2001", ["AL", "NI"], ["FCC_L12"])["FCC_L12"]
    rng = np.random.default_rng(3)
    y = torch.tensor(random_site_fractions(model, 5, rng) * 0.9 + 0.02, requires_grad=True)
    (grad,) = torch.autograd.grad(model.gibbs(y, 1100.0).sum(), y)
    step = 1e-6
    for i in range(model.n_site_fractions):
        shift = torch.zeros_like(y)
        shift[:, i] = step
        with torch.no_grad():
            central = (model.gibbs(y + shift, 1100.0) - model.gibbs(y - shift, 1100.0)) / (2 * step)
        np.testing.assert_allclose(grad[:, i].numpy(), central.numpy(), rtol=1e-6, atol=1e-4)


def test_sampled_site_fractions_lie_on_each_sublattice_simplex() -> None:
    model = build_phase_models("alni_dupin_2001", ["AL", "NI"], ["BCC_B2"])["BCC_B2"]
    generator = torch.Generator().manual_seed(0)
    y = model.sample_site_fractions(1000, generator=generator)
    assert y.shape == (1000, model.n_site_fractions)
    assert (y >= 0).all()
    index = torch.tensor(model.sublattice_of)
    for sublattice in range(3):
        sums = y[:, index == sublattice].sum(dim=1)
        torch.testing.assert_close(sums, torch.ones_like(sums))
    # Uniform on the 3-simplex of sublattice 0: each mean is 1/3.
    torch.testing.assert_close(
        y[:, :3].mean(0), torch.full((3,), 1 / 3, dtype=y.dtype), atol=0.03, rtol=0
    )
    again = model.sample_site_fractions(1000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y, again)


def test_model_metadata() -> None:
    model = build_phase_models("alni_dupin_2001", ["NI", "AL"], ["BCC_B2"])["BCC_B2"]
    assert model.elements == ("AL", "NI")
    assert model.constituents == (("AL", "NI", "VA"), ("AL", "NI", "VA"), ("VA",))
    assert model.sublattice_of == (0, 0, 0, 1, 1, 1, 2)
    assert model.site_fractions[0] == "BCC_B2:0:AL"


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unknown element\(s\) \['XX'\] for alzn_mey; it has"):
        build_phase_models("alzn_mey", ["AL", "XX"])
    with pytest.raises(DataError, match=r"unknown phase\(s\) \['BCC_A2'\]"):
        build_phase_models("alzn_mey", ["AL", "ZN"], ["BCC_A2"])
    with pytest.raises(DataError, match="not found"):
        load_database(tmp_path / "missing.tdb")
    with pytest.raises(DataError, match="no bundled data set named 'nosuch'"):
        load_database("nosuch")
    with pytest.raises(DataError, match="is a table, not a TDB database"):
        load_database("mpea")
    broken = tmp_path / "broken.tdb"
    broken.write_text("ELEMENT AL FCC_A1 26.98 !\nPHASE FCC_A1 % 2 1 1 !\n")
    with pytest.raises(DataError, match=re.escape("broken.tdb' line 1: 'ELEMENT AL FCC_A1")):
        load_database(broken)
    unterminated = tmp_path / "unterminated.tdb"
    unterminated.write_text("ELEMENT AL FCC_A1 26.98 4577.3 28.3 !\n\nPARAMETER G(FCC_A1,\n")
    with pytest.raises(DataError, match=re.escape("line 3: 'PARAMETER G(FCC_A1,'")):
        load_database(unterminated)
    undeclared = tmp_path / "undeclared.tdb"
    undeclared.write_text(
        "ELEMENT AL FCC_A1 26.98 4577.3 28.3 !\n\nPHASE FCC_A1 % 2 1 1 !\n"
        "CONSTITUENT FCC_A1 :AL,ZN : VA : !\n"
    )
    with pytest.raises(DataError, match=r"line 4: 'CONSTITUENT .*'ZN' is used but never declared"):
        load_database(undeclared)
    model = build_phase_models("alzn_mey", ["AL", "ZN"], ["FCC_A1"])["FCC_A1"]
    with pytest.raises(DataError, match=r"expected site fractions of shape \(N, 2\)"):
        model.gibbs(torch.ones(4, 3, dtype=torch.float64), 800.0)

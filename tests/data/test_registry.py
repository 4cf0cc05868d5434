from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from matforge.core.composition import Composition
from matforge.core.errors import DataError
from matforge.data import MPEA_COLUMNS, get_dataset, list_datasets, load_mpea


def test_every_file_and_license_text_is_bundled() -> None:
    datasets = list_datasets()
    assert len(datasets) >= 12
    for ds in datasets:
        assert ds.name
        assert ds.license in {"MIT", "Apache-2.0"}
        assert ds.license_files, f"{ds.name} ships no license text"
        for file in ds.files + ds.license_files:
            assert ds.path(file).stat().st_size > 0


def test_unknown_name_suggests_a_close_one() -> None:
    with pytest.raises(
        DataError,
        match=r"no bundled data set named 'alzn' \(did you mean "
        r"'alzn_mey'\?\); available: mpea",
    ):
        get_dataset("alzn")


def test_unknown_file_of_a_dataset() -> None:
    with pytest.raises(DataError, match=re.escape("has no file 'x.csv'")):
        get_dataset("mpea").path("x.csv")


def test_mpea_loads_with_tidy_columns_and_compositions() -> None:
    frame = load_mpea()
    assert len(frame) == 1545
    assert set(MPEA_COLUMNS.values()) <= set(frame.columns)
    assert frame["yield_strength_mpa"].notna().sum() == 1067
    assert frame["composition"].nunique() == 630
    assert all(isinstance(c, Composition) for c in frame["composition"])


def test_mpea_formulas_parse_to_the_published_mole_fractions() -> None:
    """Our parser against the data set's own composition table (3 decimals)."""
    published = pd.read_csv(get_dataset("mpea").path("hea/MPEA_compositions.csv"))
    elements = [c for c in published.columns if c != "Alloy name"]
    worst = 0.0
    for _, row in published.iterrows():
        ours = Composition(row["Alloy name"]).to_vector(elements)
        theirs = row[elements].fillna(0.0).to_numpy(dtype=float)
        worst = max(worst, float(abs(ours - theirs).max()))
    assert len(published) == 630
    assert worst <= 5e-4 + 1e-9, f"largest deviation {worst}"


@pytest.mark.reference
def test_tdb_metadata_matches_pycalphad() -> None:
    pycalphad = pytest.importorskip("pycalphad", reason="needs the 'reference' extra")
    for ds in list_datasets():
        if ds.kind != "tdb":
            continue
        db = pycalphad.Database(str(ds.path()))
        elements = sorted(set(db.elements) - {"VA", "/-"})
        assert elements == sorted(ds.elements), ds.name
        assert sorted(db.phases) == sorted(ds.phases), ds.name


def test_bundled_copies_match_the_shared_reference_data(shared_data: Path) -> None:
    for ds in list_datasets():
        if not ds.verbatim:
            continue
        for file in ds.files:
            original = shared_data / file
            assert original.read_bytes() == ds.path(file).read_bytes(), file

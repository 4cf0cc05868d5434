"""Data sets bundled with matforge: a registry of what they are, where from, and how to cite.

>>> from matforge.data import get_dataset, load_mpea
>>> get_dataset("alzn_mey").path()          # a TDB file, ready for pycalphad's Database
>>> load_mpea()                              # the MPEA table with tidy column names
"""

from __future__ import annotations

import difflib
import functools
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from matforge.core.config import StrictModel, load_config
from matforge.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Dataset", "data_root", "get_dataset", "list_datasets", "load_mpea"]


def data_root() -> Path:
    """The folder holding the bundled files (inside the installed package)."""
    return Path(str(resources.files("matforge.data")))


class Dataset(StrictModel):
    """One bundled data set and its provenance."""

    name: str = ""
    kind: Literal["table", "tdb"]
    title: str
    description: str
    files: list[str] = Field(min_length=1)
    source: str
    license: str
    license_files: list[str] = Field(default_factory=list)
    citation: str
    doi: str | None = None
    elements: list[str] = Field(default_factory=list)
    phases: list[str] = Field(default_factory=list)
    #: False for files matforge derived from a source (e.g. a database subset).
    verbatim: bool = True

    def path(self, file: str | None = None) -> Path:
        """Absolute path of one of the files (the first by default)."""
        relative = self.files[0] if file is None else file
        if relative not in self.files + self.license_files:
            names = ", ".join(self.files)
            raise DataError(f"data set {self.name!r} has no file {file!r}; its files: {names}")
        path = data_root() / relative
        if not path.is_file():
            raise DataError(
                f"bundled file {str(path)!r} of data set {self.name!r} is missing; "
                f"the installation is incomplete (reinstall matforge)"
            )
        return path

    def paths(self) -> list[Path]:
        return [self.path(f) for f in self.files]

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.paths())


class _Registry(StrictModel):
    datasets: dict[str, Dataset]


@functools.cache
def _registry() -> dict[str, Dataset]:
    # Read through the same loader as users' configs, so a broken entry names its line.
    parsed = load_config(data_root() / "registry.yaml", _Registry)
    return {name: ds.model_copy(update={"name": name}) for name, ds in parsed.datasets.items()}


def list_datasets() -> list[Dataset]:
    """All bundled data sets, in registry order."""
    return list(_registry().values())


def get_dataset(name: str) -> Dataset:
    """The bundled data set called `name`; the error lists the names that exist."""
    registry = _registry()
    if name in registry:
        return registry[name]
    close = difflib.get_close_matches(name, list(registry), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise DataError(f"no bundled data set named {name!r}{hint}; available: {', '.join(registry)}")


# Tidy names for the MPEA table's columns (the file itself is kept unchanged).
MPEA_COLUMNS = {
    "IDENTIFIER: Reference ID": "reference_id",
    "FORMULA": "formula",
    "PROPERTY: Microstructure": "microstructure",
    "PROPERTY: Processing method": "processing",
    "PROPERTY: BCC/FCC/other": "structure",
    "PROPERTY: grain size ($\\mu$m)": "grain_size_um",
    "PROPERTY: Exp. Density (g/cm$^3$)": "density_exp_g_cm3",
    "PROPERTY: Calculated Density (g/cm$^3$)": "density_calc_g_cm3",
    "PROPERTY: HV": "hardness_hv",
    "PROPERTY: Type of test": "test_type",
    "PROPERTY: Test temperature ($^\\circ$C)": "test_temperature_c",
    "PROPERTY: YS (MPa)": "yield_strength_mpa",
    "PROPERTY: UTS (MPa)": "uts_mpa",
    "PROPERTY: Elongation (%)": "elongation_pct",
    "PROPERTY: Elongation plastic (%)": "plastic_elongation_pct",
    "PROPERTY: Exp. Young modulus (GPa)": "youngs_modulus_exp_gpa",
    "PROPERTY: Calculated Young modulus (GPa)": "youngs_modulus_calc_gpa",
    "PROPERTY: O content (wppm)": "oxygen_wppm",
    "PROPERTY: N content (wppm)": "nitrogen_wppm",
    "PROPERTY: C content (wppm)": "carbon_wppm",
    "REFERENCE: doi": "doi",
    "REFERENCE: year": "year",
    "REFERENCE: title": "title",
}


def load_mpea(*, with_compositions: bool = True) -> pd.DataFrame:
    """The MPEA table (Borg et al. 2020) with tidy column names.

    With `with_compositions`, a ``composition`` column holds the parsed `Composition` of
    each entry's formula.
    """
    import pandas as pd

    from matforge.core.composition import Composition

    path = get_dataset("mpea").path("hea/MPEA_dataset.csv")
    frame = pd.read_csv(path)
    unknown = sorted(set(frame.columns) - set(MPEA_COLUMNS))
    if unknown:
        raise DataError(f"{str(path)!r}: unexpected columns {unknown}")
    frame = frame.rename(columns=MPEA_COLUMNS)
    if with_compositions:
        frame["composition"] = [Composition(f) for f in frame["formula"]]
    return frame

"""Element properties for featurization, read from the `mendeleev` package and cached.

mendeleev (L. M. Mentel, https://github.com/lmmentel/mendeleev) ships a curated SQLite
database with a source for every value, so matforge reads from it instead of keeping a table
of its own. The first call builds one table for all elements (well under a second); later
calls are served from memory.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matforge.core.composition import Composition, validate_element
from matforge.core.errors import MatforgeError


@dataclass(frozen=True)
class ElementProperty:
    name: str
    unit: str
    description: str
    origin: str


PROPERTIES: dict[str, ElementProperty] = {
    p.name: p
    for p in [
        ElementProperty("atomic_number", "", "atomic number Z", "elements.atomic_number"),
        ElementProperty("atomic_mass", "u", "standard atomic weight", "elements.atomic_weight"),
        ElementProperty(
            "metallic_radius",
            "pm",
            "metallic radius for coordination number 12 (Goldschmidt)",
            "elements.metallic_radius_c12",
        ),
        ElementProperty(
            "covalent_radius",
            "pm",
            "single-bond covalent radius (Pyykko and Atsumi)",
            "elements.covalent_radius_pyykko",
        ),
        ElementProperty(
            "electronegativity", "", "Pauling electronegativity", "elements.en_pauling"
        ),
        ElementProperty(
            "vec",
            "",
            "valence electron count as used in high-entropy-alloy phase rules (Guo et al., "
            "J. Appl. Phys. 109 (2011) 103505): the group number for s- and d-block elements, "
            "group - 10 for the p block, 3 for lanthanides and actinides",
            "derived from elements.group_id and elements.block",
        ),
        ElementProperty(
            "melting_point",
            "K",
            "melting temperature (the highest listed for allotropes)",
            "phasetransitions.melting_point",
        ),
        ElementProperty("density", "g/cm^3", "density at room temperature", "elements.density"),
        ElementProperty("group", "", "group of the periodic table", "elements.group_id"),
        ElementProperty("period", "", "period of the periodic table", "elements.period"),
    ]
}


def _valence_electron_count(group: float, block: str) -> float:
    if block == "f" or (np.isnan(group) and block == "d"):
        return 3.0
    if np.isnan(group):
        return float("nan")
    return group - 10.0 if block == "p" else group


def data_source() -> str:
    """Name and version of the package the element data come from."""
    from importlib.metadata import version

    return f"mendeleev {version('mendeleev')} (https://github.com/lmmentel/mendeleev)"


@functools.cache
def element_table() -> pd.DataFrame:
    """All elements (index: symbol) with the columns of `PROPERTIES`; cached after first use."""
    from mendeleev.fetch import fetch_table

    raw = fetch_table("elements").set_index("symbol")
    transitions = fetch_table("phasetransitions")
    # Rows flagged as transitions (e.g. grey -> white tin) are not melting points.
    melting = transitions[transitions["is_transition"].fillna(0) == 0]
    melting_point = melting.groupby("atomic_number")["melting_point"].max()
    table = pd.DataFrame(
        {
            "atomic_number": raw["atomic_number"].astype(int),
            "atomic_mass": raw["atomic_weight"].astype(float),
            "metallic_radius": raw["metallic_radius_c12"].astype(float),
            "covalent_radius": raw["covalent_radius_pyykko"].astype(float),
            "electronegativity": raw["en_pauling"].astype(float),
            "vec": [
                _valence_electron_count(g, b)
                for g, b in zip(raw["group_id"].astype(float), raw["block"], strict=True)
            ],
            "melting_point": raw["atomic_number"].map(melting_point).astype(float),
            "density": raw["density"].astype(float),
            "group": raw["group_id"].astype(float),
            "period": raw["period"].astype(int),
        },
        index=raw.index,
    )
    table.attrs["source"] = data_source()
    return table


def _check_property(name: str) -> None:
    if name not in PROPERTIES:
        raise MatforgeError(
            f"unknown element property {name!r}; available: {', '.join(PROPERTIES)}"
        )


def element_property(symbol: str, name: str) -> float:
    """One property of one element; raises if the source has no value for it."""
    return float(property_vector([symbol], name)[0])


def property_vector(elements: Sequence[str], name: str) -> np.ndarray:
    """`name` for each of `elements`, in order, as float64."""
    _check_property(name)
    for symbol in elements:
        validate_element(symbol)
    values = element_table().loc[list(elements), name].to_numpy(dtype=float)
    missing = [el for el, v in zip(elements, values, strict=True) if np.isnan(v)]
    if missing:
        raise MatforgeError(
            f"{data_source()} has no {name!r} ({PROPERTIES[name].description}) for {missing}"
        )
    return values


def weighted_mean(composition: Composition, name: str) -> float:
    """Mole-fraction-weighted mean of an element property over a composition."""
    elements = composition.elements
    return float(np.dot(composition.to_vector(elements), property_vector(elements, name)))

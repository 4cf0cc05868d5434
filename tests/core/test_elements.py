from __future__ import annotations

import numpy as np
import pytest

from matforge.core.composition import Composition
from matforge.core.elements import (
    PROPERTIES,
    data_source,
    element_property,
    element_table,
    property_vector,
    weighted_mean,
)
from matforge.core.errors import CompositionError, MatforgeError


@pytest.mark.parametrize(
    ("symbol", "vec"),
    # Guo et al., J. Appl. Phys. 109 (2011) 103505, Table I.
    [
        ("Al", 3),
        ("Co", 9),
        ("Cr", 6),
        ("Cu", 11),
        ("Fe", 8),
        ("Mn", 7),
        ("Ni", 10),
        ("Ti", 4),
        ("Zn", 12),
        ("Si", 4),
        ("Mo", 6),
        ("Nb", 5),
        ("Ce", 3),
        ("La", 3),
    ],
)
def test_valence_electron_count_follows_hea_convention(symbol: str, vec: int) -> None:
    assert element_property(symbol, "vec") == vec


def test_reference_values() -> None:
    assert element_property("Fe", "atomic_number") == 26
    assert element_property("Fe", "atomic_mass") == pytest.approx(55.845, abs=1e-3)
    assert element_property("Al", "metallic_radius") == pytest.approx(143.0)
    assert element_property("Ni", "electronegativity") == pytest.approx(1.91)
    assert element_property("Fe", "melting_point") == pytest.approx(1811, abs=1)
    # Tin's grey->white transition at 286 K is not its melting point (505 K).
    assert element_property("Sn", "melting_point") == pytest.approx(505.08, abs=0.1)


def test_cantor_alloy_vec_is_eight() -> None:
    assert weighted_mean(Composition("CoCrFeMnNi"), "vec") == pytest.approx(8.0)


def test_property_vector_keeps_order() -> None:
    values = property_vector(["Ni", "Al", "Fe"], "atomic_number")
    np.testing.assert_array_equal(values, [28, 13, 26])


def test_table_is_cached_and_names_its_source() -> None:
    assert element_table() is element_table()
    assert list(element_table().columns) == list(PROPERTIES)
    assert element_table().attrs["source"].startswith("mendeleev ")
    assert "mendeleev" in data_source()


def test_errors() -> None:
    with pytest.raises(MatforgeError, match="unknown element property 'radius'"):
        property_vector(["Fe"], "radius")
    with pytest.raises(CompositionError, match="unknown element 'Qq'"):
        property_vector(["Qq"], "vec")
    with pytest.raises(MatforgeError, match=r"has no 'electronegativity'.*\['He'\]"):
        property_vector(["Fe", "He"], "electronegativity")

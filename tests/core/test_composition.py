from __future__ import annotations

import math
import pickle
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from matforge.core.composition import (
    Composition,
    compositions_from_matrix,
    compositions_to_matrix,
    parse_formula,
)
from matforge.core.errors import CompositionError

METALS = ["Al", "Co", "Cr", "Cu", "Fe", "Mn", "Mo", "Nb", "Ni", "Ti", "V", "W", "Zr", "Hf", "Ta"]


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("CoCrFeMnNi", dict.fromkeys(["Co", "Cr", "Fe", "Mn", "Ni"], 0.2)),
        ("Co20Cr20Fe20Mn20Ni20", dict.fromkeys(["Co", "Cr", "Fe", "Mn", "Ni"], 0.2)),
        (
            "Al0.5CoCrFeNi",
            {"Al": 0.5 / 4.5, "Co": 1 / 4.5, "Cr": 1 / 4.5, "Fe": 1 / 4.5, "Ni": 1 / 4.5},
        ),
        ("Al0.25 Co1 Fe1 Ni1", {"Al": 0.25 / 3.25, "Co": 1 / 3.25, "Fe": 1 / 3.25, "Ni": 1 / 3.25}),
        (
            "(CoCrFeNi)94Ti2Al4",
            {"Co": 0.235, "Cr": 0.235, "Fe": 0.235, "Ni": 0.235, "Ti": 0.02, "Al": 0.04},
        ),
        ("[FeNi]0.8Cr0.2", {"Fe": 0.4, "Ni": 0.4, "Cr": 0.2}),
        ("FeFeNi", {"Fe": 2 / 3, "Ni": 1 / 3}),
        ("Fe.5Ni.5", {"Fe": 0.5, "Ni": 0.5}),
        ("Ni3Al", {"Ni": 0.75, "Al": 0.25}),
        ("W", {"W": 1.0}),
    ],
)
def test_parses_literature_notations(formula: str, expected: dict[str, float]) -> None:
    comp = Composition(formula)
    assert set(comp) == set(expected)
    for el, x in expected.items():
        assert comp[el] == pytest.approx(x, abs=1e-12)
    assert math.fsum(comp.values()) == pytest.approx(1.0, abs=1e-15)


def test_equimolar_shorthand_equals_atomic_percent() -> None:
    assert Composition("CoCrFeMnNi") == Composition("Co20Cr20Fe20Mn20Ni20")
    assert hash(Composition("CoCrFeMnNi")) == hash(Composition("Co20Cr20Fe20Mn20Ni20"))


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("CoXxNi", "unknown element 'Xx' in 'CoXxNi'"),
        ("CoCrfeNi", "unexpected character 'f' at position 5"),
        ("fe", "upper-case"),
        ("Co-Ni", "unexpected character '-' at position 3"),
        ("Co2%Ni", "unexpected character '%'"),
        ("", "empty formula"),
        ("   ", "empty formula"),
        ("(CoNi", "unbalanced '('"),
        ("CoNi)", "unexpected character ')'"),
        ("()", "expected an element symbol"),
        ("(Co0)2Ni", "has no positive amount"),
        ("Co0Ni0", "no positive amount"),
        ("X", "unknown element 'X'"),
    ],
)
def test_invalid_formulas_name_the_problem(formula: str, message: str) -> None:
    with pytest.raises(CompositionError, match=re.escape(message)):
        Composition(formula)


def test_lowercase_symbol_suggests_capitalized() -> None:
    with pytest.raises(CompositionError, match="did you mean 'Fe'"):
        Composition({"fe": 1.0})


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"Co": -0.1, "Ni": 1.1}, "must be non-negative, got -0.1"),
        ({"Co": float("nan"), "Ni": 1}, "must be finite"),
        ({"Co": "lots", "Ni": 1}, "must be a number, got 'lots'"),
        ({"Co": 0, "Ni": 0}, "no positive amount"),
        ({"Qq": 1}, "unknown element 'Qq'"),
        ({1: 1}, "element keys must be strings"),
    ],
)
def test_invalid_mappings(mapping: dict, message: str) -> None:
    with pytest.raises(CompositionError, match=message):
        Composition(mapping)


def test_not_a_formula_or_mapping() -> None:
    with pytest.raises(CompositionError, match="got int"):
        Composition(3)  # type: ignore[arg-type]
    with pytest.raises(CompositionError, match="must be a string"):
        parse_formula(None)  # type: ignore[arg-type]


def test_amount_mapping_is_normalized_and_zeros_dropped() -> None:
    comp = Composition({"Co": 2, "Ni": 2, "Fe": 0})
    assert comp.fractions == {"Co": 0.5, "Ni": 0.5}
    assert "Fe" not in comp
    assert comp.get("Fe", 0.0) == 0.0


def test_from_fractions_checks_the_sum() -> None:
    assert Composition.from_fractions({"Co": 0.25, "Ni": 0.75})["Ni"] == 0.75
    with pytest.raises(CompositionError, match=re.escape("sum to 0.9, not 1")):
        Composition.from_fractions({"Co": 0.4, "Ni": 0.5})
    with pytest.raises(CompositionError, match=re.escape("mole fraction of 'Co' is 1.5, above 1")):
        Composition.from_fractions({"Co": 1.5, "Ni": 0.0})
    with pytest.raises(CompositionError, match=re.escape("'Ni' must be non-negative, got -0.5")):
        Composition.from_fractions({"Co": 1.5, "Ni": -0.5})
    # Within the tolerance, it renormalizes.
    comp = Composition.from_fractions({"Co": 0.5, "Ni": 0.5 + 5e-7})
    assert math.fsum(comp.values()) == pytest.approx(1.0, abs=1e-15)


def test_vectors_over_an_ordered_element_list() -> None:
    elements = ["Ni", "Fe", "Cr", "Co"]
    comp = Composition("Co10Cr20Fe30Ni40")
    vector = comp.to_vector(elements)
    np.testing.assert_allclose(vector, [0.4, 0.3, 0.2, 0.1])
    assert Composition.from_vector(vector, elements) == comp
    assert comp.to_vector(["Al", *elements])[0] == 0.0
    with pytest.raises(CompositionError, match=r"contains \['Co'\]"):
        comp.to_vector(["Ni", "Fe", "Cr"])
    with pytest.raises(CompositionError, match="does not match 3 elements"):
        Composition.from_vector([0.5, 0.5], ["Ni", "Fe", "Cr"])
    with pytest.raises(CompositionError, match="duplicates"):
        Composition.from_vector([0.5, 0.5], ["Ni", "Ni"])
    with pytest.raises(CompositionError, match="sum to"):
        Composition.from_vector([0.5, 0.6], ["Ni", "Fe"])


def test_matrix_round_trip() -> None:
    elements = ["Co", "Cr", "Fe", "Mn", "Ni"]
    comps = [Composition("CoCrFeMnNi"), Composition("Co10Cr30Fe20Mn10Ni30"), Composition("CoNi")]
    matrix = compositions_to_matrix(comps, elements)
    assert matrix.shape == (3, 5)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    assert compositions_from_matrix(matrix, elements) == comps
    assert compositions_to_matrix([], elements).shape == (0, 5)
    with pytest.raises(CompositionError, match="2-D"):
        compositions_from_matrix(np.ones(5), elements)


def test_mapping_protocol_and_views() -> None:
    comp = Composition("Al0.5CoCrFeNi")
    assert len(comp) == 5
    assert comp.elements == ("Al", "Co", "Cr", "Fe", "Ni")
    assert list(comp) == list(comp.elements)
    with pytest.raises(KeyError):
        comp["Mn"]
    assert comp.atomic_percent()["Al"] == pytest.approx(100 / 9)
    assert str(comp) == "Al0.5CoCrFeNi"
    assert repr(comp) == "Composition('Al0.5CoCrFeNi')"
    assert Composition("Co20Cr20Fe20Mn20Ni20").formula == "CoCrFeMnNi"
    assert Composition("Fe70Ni30").to_string(digits=3) == "FeNi0.429"
    assert Composition(comp) == comp


def test_equality_ordering_and_hashing() -> None:
    a = Composition("CoNi")
    b = Composition({"Ni": 0.5, "Co": 0.5})
    c = Composition("Co2Ni")
    assert a == b
    assert a != c
    assert a != "CoNi"
    assert len({a, b, c}) == 2
    assert sorted([c, a]) == sorted([a, c])
    assert a.isclose(Composition({"Co": 0.5 + 1e-12, "Ni": 0.5}))
    assert not a.isclose(c)


def test_pickle_round_trip() -> None:
    comp = Composition("(CoCrFeNi)94Ti2Al4")
    assert pickle.loads(pickle.dumps(comp)) == comp


def test_immutable() -> None:
    comp = Composition("CoNi")
    with pytest.raises((AttributeError, TypeError)):
        comp["Co"] = 1.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        comp.extra = 1  # type: ignore[attr-defined]


amounts = st.dictionaries(
    st.sampled_from(METALS),
    st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=6,
)


@given(amounts)
def test_fractions_are_normalized(mapping: dict[str, float]) -> None:
    comp = Composition(mapping)
    assert math.fsum(comp.values()) == pytest.approx(1.0, abs=1e-14)
    assert all(x > 0 for x in comp.values())
    assert set(comp) == set(mapping)


@given(amounts)
def test_formula_round_trip(mapping: dict[str, float]) -> None:
    comp = Composition(mapping)
    assert Composition(comp.formula).isclose(comp, atol=1e-10)
    assert Composition(str(comp)).isclose(comp, atol=1e-10)


@given(amounts, st.permutations(METALS))
def test_vector_round_trip(mapping: dict[str, float], order: list[str]) -> None:
    comp = Composition(mapping)
    vector = comp.to_vector(order)
    assert vector.sum() == pytest.approx(1.0, abs=1e-14)
    back = Composition.from_vector(vector, order)
    assert back.isclose(comp, atol=1e-14)
    np.testing.assert_allclose(back.to_vector(order), vector, atol=1e-15)


@given(amounts, st.floats(min_value=1e-3, max_value=1e3))
def test_scaling_amounts_gives_equal_composition(mapping: dict[str, float], k: float) -> None:
    comp = Composition(mapping)
    scaled = Composition({el: k * a for el, a in mapping.items()})
    assert scaled.isclose(comp, atol=1e-12)


@given(st.text(alphabet="AaCcFeNiOo()[]0123456789.-% eE", max_size=20))
def test_any_text_parses_or_raises_composition_error(text: str) -> None:
    """The parser never fails with anything but a CompositionError that names the input."""
    try:
        comp = Composition(text)
    except CompositionError as exc:
        message = str(exc)
        comp = None
    if comp is None:
        assert message
    else:
        assert math.fsum(comp.values()) == pytest.approx(1.0, abs=1e-12)

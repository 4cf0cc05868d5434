import pytest
import torch

from matforge.core.errors import ConfigError
from matforge.design import DeepEnsembleSurrogate, GPSurrogate, cross_validate
from matforge.design.descriptors import descriptor_matrix

ELEMENTS = ("Co", "Cr", "Ni")


def _data(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    raw = torch.rand(n, 3, generator=g, dtype=torch.float64)
    x = raw / raw.sum(1, keepdim=True)
    y = (
        200 * x[:, 1] * x[:, 2]
        + 50 * x[:, 0]
        + 2.0 * torch.randn(n, generator=g, dtype=torch.float64)
    )
    return x, y


def test_gp_with_descriptors_is_accurate_and_calibrated():
    x, y = _data(80)
    calibration = cross_validate(lambda: GPSurrogate(ELEMENTS, ("delta", "vec")), x, y, folds=5)
    assert calibration.mae < 4.0  # noise sd 2, signal range ~60
    assert 0.8 <= calibration.coverage_90 <= 0.98
    assert calibration.predictions.shape == (80, 2)


def test_deep_ensemble_predicts_with_uncertainty_through_the_botorch_interface():
    x, y = _data(60, seed=1)
    surrogate = DeepEnsembleSurrogate(members=3, epochs=300).fit(x, y)
    test_x, test_y = _data(30, seed=2)
    mean, std = surrogate.predict(test_x)
    # Against the best constant predictor (the training mean): a model that learned
    # nothing would not beat it by a factor of 2.
    constant = (y.mean() - test_y).abs().mean()
    assert (mean - test_y).abs().mean() < 0.5 * constant
    assert (std > 0).all()
    posterior = surrogate.model.posterior(test_x[:, None, :])
    assert posterior.mean.shape == (30, 1, 1)


def test_descriptors_match_their_definitions():
    from matforge.core.elements import property_vector

    x = torch.tensor([[0.5, 0.0, 0.5]], dtype=torch.float64)
    delta, vec, chi = descriptor_matrix(x, ELEMENTS)[0].tolist()
    assert vec == pytest.approx(0.5 * 9 + 0.5 * 10)  # Co group 9, Ni group 10
    # Equimolar binary: delta = 100 |r_a - r_b| / (r_a + r_b), chi difference = |a - b| / 2.
    r_co, _, r_ni = property_vector(ELEMENTS, "metallic_radius")
    chi_co, _, chi_ni = property_vector(ELEMENTS, "electronegativity")
    assert delta == pytest.approx(100 * abs(r_co - r_ni) / (r_co + r_ni), rel=1e-12)
    assert chi == pytest.approx(abs(chi_co - chi_ni) / 2, rel=1e-9)
    assert delta > 0.1  # Co 125 pm, Ni 124 pm in mendeleev: the sizes differ


def test_bad_training_data_are_rejected():
    with pytest.raises(ConfigError, match="NaN"):
        GPSurrogate(ELEMENTS).fit(torch.rand(4, 3), torch.tensor([1.0, float("nan"), 2.0, 3.0]))
    with pytest.raises(ConfigError, match="expected X"):
        GPSurrogate(ELEMENTS).fit(torch.rand(4, 3), torch.rand(5))


# Takeuchi and Inoue, Mater. Trans. 46 (2005) 2817, Table 1 (kJ/mol, rounded to integers).
TAKEUCHI_INOUE = {
    ("Co", "Cr"): -4,
    ("Co", "Fe"): -1,
    ("Co", "Mn"): -5,
    ("Co", "Ni"): 0,
    ("Cr", "Fe"): -1,
    ("Cr", "Mn"): 2,
    ("Cr", "Ni"): -7,
    ("Fe", "Mn"): 0,
    ("Fe", "Ni"): -2,
    ("Mn", "Ni"): -8,
    ("Cu", "Ni"): 4,
    ("Fe", "Ti"): -17,
    ("Ni", "Ti"): -35,
    ("Co", "Ti"): -28,
    ("Cu", "Fe"): 13,
}


def test_miedema_binary_enthalpies_match_takeuchi_and_inoue():
    from matforge.design.descriptors import binary_mixing_enthalpies

    elements = ("Co", "Cr", "Cu", "Fe", "Mn", "Ni", "Ti")
    h = binary_mixing_enthalpies(elements)
    for (a, b), value in TAKEUCHI_INOUE.items():
        i, j = elements.index(a), elements.index(b)
        assert float(h[i, j]) == pytest.approx(value, abs=1.0), (a, b)
        assert float(h[i, j]) == pytest.approx(float(h[j, i]), abs=1e-9)


def test_cantor_mixing_enthalpy_and_refusal_of_p_block_elements():
    cantor = ("Co", "Cr", "Fe", "Mn", "Ni")
    x = torch.full((1, 5), 0.2, dtype=torch.float64)
    (value,) = descriptor_matrix(x, cantor, ["mixing_enthalpy"])[0].tolist()
    # From the rounded table: 4 * 0.2 * 0.2 * (sum of the ten pair values, -26) = -4.16.
    assert value == pytest.approx(-4.16, abs=0.3)
    with pytest.raises(ConfigError, match=r"\['Al'\]"):
        descriptor_matrix(torch.full((1, 3), 1 / 3), ("Al", "Co", "Ni"), ["mixing_enthalpy"])

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
    assert (mean - test_y).abs().mean() < 10.0
    assert (std > 0).all()
    posterior = surrogate.model.posterior(test_x[:, None, :])
    assert posterior.mean.shape == (30, 1, 1)


def test_descriptors_match_their_definitions():
    x = torch.tensor([[0.5, 0.0, 0.5]], dtype=torch.float64)
    delta, vec, chi = descriptor_matrix(x, ELEMENTS)[0].tolist()
    assert vec == pytest.approx(0.5 * 9 + 0.5 * 10)  # Co group 9, Ni group 10
    assert delta >= 0
    assert chi >= 0


def test_bad_training_data_are_rejected():
    with pytest.raises(ConfigError, match="NaN"):
        GPSurrogate(ELEMENTS).fit(torch.rand(4, 3), torch.tensor([1.0, float("nan"), 2.0, 3.0]))
    with pytest.raises(ConfigError, match="expected X"):
        GPSurrogate(ELEMENTS).fit(torch.rand(4, 3), torch.rand(5))

"""The MPEA data set: parsing with a drop report, and the surrogate on real strengths."""

import torch

from matforge.design import GPSurrogate, cross_validate
from matforge.design.mpea import (
    composition_groups,
    composition_matrix,
    mpea_pool,
    room_temperature_strength,
)

FAMILY = ("Al", "Co", "Cr", "Cu", "Fe", "Mn", "Ni", "Ti")


def test_every_row_is_kept_or_dropped_with_a_reason():
    table, report = room_temperature_strength()
    assert report.kept == len(table) > 600
    assert report.kept + sum(report.dropped.values()) == 1545
    assert report.dropped["no yield strength"] == 1545 - 1067
    assert (table["yield_strength_mpa"] > 0).all()
    assert any("test temperature" in line for line in report.lines())


def test_gp_beats_the_mean_on_held_out_alloys_and_is_roughly_calibrated():
    table, _ = room_temperature_strength()
    table = table[[set(c.elements) <= set(FAMILY) for c in table["composition"]]]
    x, elements = composition_matrix(table, FAMILY)
    y = torch.tensor(table["yield_strength_mpa"].to_numpy(), dtype=torch.float64)
    groups = composition_groups(table)
    cv = cross_validate(
        lambda: GPSurrogate(elements, ("delta", "vec")), x, y, folds=5, groups=groups
    )
    baseline = (y - y.mean()).abs().mean()
    assert cv.mae < 0.85 * float(baseline), (cv.mae, float(baseline))
    assert 0.75 <= cv.coverage_90 <= 0.97


def test_pool_holds_one_candidate_per_alloy_of_the_family():
    oracle = mpea_pool(FAMILY)
    assert len(oracle.candidates) > 50
    assert torch.allclose(
        oracle.candidates.sum(1), torch.ones(len(oracle.candidates), dtype=torch.float64)
    )
    assert len(torch.unique(torch.round(oracle.candidates * 1e4), dim=0)) == len(oracle.candidates)

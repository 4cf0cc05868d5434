"""Strategies do what they say, transfer helps where the tasks share structure, data errors
name their line, ensembles report calibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matforge.core.composition import Composition
from matforge.core.errors import ConfigError
from matforge.transfer.curves import learning_curve, paired_differences
from matforge.transfer.data import FormulaSet, read_formula_table
from matforge.transfer.ensemble import calibration, train_ensemble
from matforge.transfer.model import ModelSpec, SetRegressor
from matforge.transfer.training import FitSettings, fit, train_strategy, validation_split

ELEMENTS = ["Fe", "Ni", "Co", "Cr", "Mn", "Al", "Ti", "Cu", "Mo", "V"]
WEIGHTS = dict(zip(ELEMENTS, np.linspace(-1.0, 1.0, len(ELEMENTS)) ** 3, strict=True))


def synthetic(n: int, seed: int, scale: float, offset: float) -> FormulaSet:
    """y = scale * (sum_i f_i w_i + (sum_i f_i w_i)^2) + offset: two tasks sharing a
    representation (the same latent), as formation energy and a property might."""
    rng = np.random.default_rng(seed)
    compositions, targets = [], []
    for _ in range(n):
        chosen = rng.choice(ELEMENTS, size=rng.integers(2, 6), replace=False)
        amounts = rng.dirichlet(np.ones(len(chosen)))
        composition = Composition(dict(zip(chosen, amounts, strict=True)))
        latent = sum(f * WEIGHTS[e] for e, f in composition.fractions.items())
        compositions.append(composition)
        targets.append(scale * (latent + latent**2) + offset)
    return FormulaSet([c.formula for c in compositions], compositions, np.array(targets))


SPEC = ModelSpec(encoder="deepsets", size=32, depth=2, embedding="learned", head=(32,))


@pytest.fixture(scope="module")
def source_model() -> SetRegressor:
    source = synthetic(600, 0, 1.0, 0.0)
    train, val = validation_split(len(source), 0.15, 0)
    torch.manual_seed(0)
    return fit(
        SetRegressor(SPEC),
        source.subset(train),
        source.subset(val),
        FitSettings(epochs=150, batch_size=64, patience=30),
    ).model


def test_transfer_beats_scratch_on_a_related_task(source_model) -> None:
    target = synthetic(140, 1, -3.0, 2.0)
    curve = learning_curve(
        target,
        SPEC,
        ["scratch", "feature", "finetune", "l2sp"],
        [12],
        3,
        FitSettings(epochs=150, batch_size=8, patience=25),
        source=source_model,
    )
    table = paired_differences(curve).set_index("strategy")
    best_transfer = table.loc[["feature", "finetune", "l2sp"], "mae"].min()
    assert best_transfer < 0.7 * table.loc["scratch", "mae"]


def test_feature_transfer_freezes_the_encoder_and_l2sp_stays_close(source_model) -> None:
    target = synthetic(40, 2, 2.0, 0.0)
    settings = FitSettings(epochs=30, batch_size=8, patience=30)
    frozen = train_strategy("feature", SPEC, target, None, settings, source_model).model
    for before, after in zip(
        source_model.encoder.parameters(), frozen.encoder.parameters(), strict=True
    ):
        assert torch.equal(before, after)
    strong = FitSettings(**{**settings.__dict__, "l2sp_alpha": 10.0})
    weak = FitSettings(**{**settings.__dict__, "l2sp_alpha": 0.0})

    def distance(model: SetRegressor) -> float:
        return sum(
            float(((a - b).detach() ** 2).sum())
            for a, b in zip(
                source_model.encoder.parameters(), model.encoder.parameters(), strict=True
            )
        )

    near = train_strategy("l2sp", SPEC, target, None, strong, source_model).model
    far = train_strategy("l2sp", SPEC, target, None, weak, source_model).model
    assert distance(near) < 0.5 * distance(far)
    with pytest.raises(ConfigError, match="pre-trained source"):
        train_strategy("finetune", SPEC, target, None, settings, None)


def test_ensemble_calibration_report(source_model) -> None:
    data = synthetic(80, 3, 1.0, 0.0)
    test = synthetic(60, 4, 1.0, 0.0)
    ensemble = train_ensemble(
        "finetune",
        SPEC,
        data,
        FitSettings(epochs=40, batch_size=16, patience=20),
        members=3,
        source=source_model,
    )
    mean, std = ensemble.predict(test.batch)
    report = calibration(mean, std, test.targets)
    assert report["mae"] < np.mean(np.abs(test.targets - test.targets.mean()))
    assert 0 <= report["coverage_1sigma"] <= report["coverage_2sigma"] <= 1
    assert (std > 0).all()
    # a perfectly calibrated Gaussian spread gives ~68% / 95% coverage and RMS z ~ 1
    rng = np.random.default_rng(0)
    truth = rng.standard_normal(20000)
    ideal = calibration(np.zeros_like(truth), np.ones_like(truth), truth)
    assert ideal["coverage_1sigma"] == pytest.approx(0.683, abs=0.01)
    assert ideal["rms_z"] == pytest.approx(1.0, abs=0.02)


def test_bad_rows_are_named_by_line_and_dropped_only_when_asked(tmp_path) -> None:
    path = tmp_path / "data.csv"
    path.write_text(
        "formula,target\nFe0.7Ni0.3,1.0\nFe0.5Xx0.5,2.0\n\nAl(Ni,3.0\nCu,abc\nCoCr,4.0\n"
    )
    with pytest.raises(ConfigError) as error:
        read_formula_table(path)
    message = str(error.value)
    assert "line 3" in message
    assert "Xx" in message
    assert "line 5" in message
    assert "line 6" in message
    assert "--drop-bad" in message
    data = read_formula_table(path, drop_bad=True)
    assert data.formulas == ["Fe0.7Ni0.3", "CoCr"]
    assert [line for line, _ in data.dropped] == [3, 5, 6]


def test_cosine_swa_returns_the_average_of_the_late_epochs() -> None:
    """The returned weights are the mean of the epoch-end weights from swa_start on: with
    swa_start at the last epoch they are that epoch's weights, with more epochs averaged
    they differ from the last; the learning rate anneals to 0; no early stop."""
    data = synthetic(48, 5, 1.0, 0.0)
    snapshots: list[dict[str, torch.Tensor]] = []
    settings = FitSettings(epochs=6, batch_size=8, schedule="cosine_swa", swa_start=0.5)
    torch.manual_seed(0)
    model = SetRegressor(SPEC)
    original_step = torch.optim.AdamW.step
    rates: list[float] = []

    def record(epoch: int, score: float) -> None:
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})

    def step(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        rates.append(self.param_groups[0]["lr"])
        return original_step(self, *args, **kwargs)

    torch.optim.AdamW.step = step
    try:
        result = fit(model, data, data, settings, progress=record)
    finally:
        torch.optim.AdamW.step = original_step
    assert len(result.history) == 6
    averaged = result.model.state_dict()
    name = "head.0.weight"
    expected = torch.stack([s[name].double() for s in snapshots[2:]]).mean(0)
    assert torch.allclose(averaged[name].double(), expected, atol=1e-6)
    assert not torch.allclose(averaged[name], snapshots[-1][name])
    assert rates[0] == pytest.approx(settings.learning_rate)
    assert rates[-1] < 0.01 * settings.learning_rate
    predicted = result.model.predict(data.batch).double()
    assert result.best_validation_mae == pytest.approx(float((predicted - data.y).abs().mean()))
    with pytest.raises(ConfigError, match="schedule"):
        FitSettings(schedule="plateau")  # type: ignore[arg-type]

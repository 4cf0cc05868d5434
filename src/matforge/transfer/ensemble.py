"""Deep ensembles of composition regressors and a calibration report.

Members differ in their random initialization (of the head, for transferred models) and
in the validation rows held out for early stopping; the ensemble predicts the members'
mean and their spread (`matforge.core.ensemble.spread`). `calibration` compares the
spread with the errors on held-out data: the share of targets inside mean +- 1 and 2
standard deviations (0.683 and 0.954 if the spread were a calibrated Gaussian), the RMS of
the z-scores (1 if calibrated) and the Gaussian negative log-likelihood.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from matforge.core.ensemble import spread
from matforge.transfer.data import FormulaSet
from matforge.transfer.featurize import CompositionBatch
from matforge.transfer.model import ModelSpec, SetRegressor
from matforge.transfer.training import FitSettings, train_strategy, validation_split

__all__ = ["Ensemble", "calibration", "train_ensemble"]


@dataclass
class Ensemble:
    members: list[SetRegressor]

    def predict(self, batch: CompositionBatch) -> tuple[np.ndarray, np.ndarray]:
        stacked = torch.stack([m.predict(batch).cpu() for m in self.members]).double()
        mean, std = spread(stacked)
        return mean.numpy(), std.numpy()


def train_ensemble(
    strategy: str,
    spec: ModelSpec,
    data: FormulaSet,
    settings: FitSettings,
    *,
    members: int = 5,
    validation_fraction: float = 0.2,
    source: SetRegressor | None = None,
) -> Ensemble:
    models = []
    for member in range(members):
        seed = settings.seed + 1000 * member
        train_rows, validation_rows = validation_split(len(data), validation_fraction, seed)
        member_settings = FitSettings(**{**settings.__dict__, "seed": seed})
        result = train_strategy(
            strategy,
            spec,
            data.subset(train_rows),
            data.subset(validation_rows),
            member_settings,
            source,
        )
        models.append(result.model)
    return Ensemble(models)


def calibration(mean: np.ndarray, std: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    std = np.maximum(std, 1e-12)
    z = (truth - mean) / std
    return {
        "mae": float(np.mean(np.abs(truth - mean))),
        "coverage_1sigma": float(np.mean(np.abs(z) <= 1)),
        "coverage_2sigma": float(np.mean(np.abs(z) <= 2)),
        "rms_z": float(np.sqrt(np.mean(z**2))),
        "nll": float(np.mean(0.5 * z**2 + np.log(std) + 0.5 * math.log(2 * math.pi))),
        "mean_std": float(np.mean(std)),
    }

"""Training and the transfer strategies.

`fit` trains a `SetRegressor` on a `FormulaSet` with an L1 loss on standardized targets
(mean absolute error, the figure reported), AdamW, and early stopping on a validation set
(the best epoch's weights are kept). Strategies for a target task, given a model
pre-trained on a source task:

- ``scratch``: a new model, the source ignored;
- ``feature``: the source encoder frozen, a new head trained (feature transfer);
- ``finetune``: every weight trained from the source's, the encoder with a learning rate
  `encoder_rate` times the head's (discriminative learning rates, Howard & Ruder 2018);
- ``l2sp``: every weight trained, the encoder pulled toward the source weights,
  alpha/2 |w - w_source|^2 (L2-SP, Li, Grandvalet & Davoine 2018), and the new head's
  weights toward zero, beta/2 |w_head|^2.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from matforge.core.errors import ConfigError
from matforge.transfer.data import FormulaSet
from matforge.transfer.model import ModelSpec, SetRegressor

__all__ = ["STRATEGIES", "FitResult", "FitSettings", "fit", "train_strategy", "validation_split"]

STRATEGIES = ("scratch", "feature", "finetune", "l2sp")


@dataclass(frozen=True)
class FitSettings:
    epochs: int = 400
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    patience: int = 40  # epochs without a better validation MAE before stopping
    max_seconds: float | None = None
    seed: int = 0
    device: str = "cpu"
    encoder_rate: float = 0.1  # finetune: encoder learning rate / head learning rate
    l2sp_alpha: float = 1e-2
    l2sp_beta: float = 1e-4

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ConfigError("epochs, batch_size and patience must be positive")
        if not 0 < self.learning_rate < 1:
            raise ConfigError(f"learning_rate must lie in (0, 1), got {self.learning_rate}")


@dataclass
class FitResult:
    model: SetRegressor
    best_epoch: int
    best_validation_mae: float
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def validation_split(
    n: int, fraction: float, seed: int, minimum: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices; the validation part has at least `minimum` rows."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    held = min(max(minimum, round(fraction * n)), n - 1)
    return np.sort(order[held:]), np.sort(order[:held])


def _mae(model: SetRegressor, data: FormulaSet) -> float:
    predicted = model.predict(data.batch).cpu()
    return float((predicted - data.y).abs().mean())


def fit(
    model: SetRegressor,
    train: FormulaSet,
    validation: FormulaSet | None,
    settings: FitSettings,
    *,
    groups: list[dict] | None = None,
    regularizer: Callable[[], torch.Tensor] | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> FitResult:
    """Train in place (best validation epoch restored); returns the model and its record."""
    torch.manual_seed(settings.seed)
    device = torch.device(settings.device)
    model.to(device)
    model.set_target_scaling(train.y)
    target = model.standardize(train.y.to(device))
    batch = train.batch.to(device)
    parameters = groups or [{"params": [p for p in model.parameters() if p.requires_grad]}]
    optimizer = torch.optim.AdamW(
        parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    generator = torch.Generator().manual_seed(settings.seed)
    best = (math.inf, 0, copy.deepcopy(model.state_dict()))
    history = []
    start = time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=generator).to(device)
        total = 0.0
        for first in range(0, len(train), settings.batch_size):
            index = order[first : first + settings.batch_size]
            loss = (model(batch[index]) - target[index]).abs().mean()
            if regularizer is not None:
                loss = loss + regularizer()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(index)
        score = _mae(model, validation) if validation is not None else total / len(train)
        history.append({"epoch": epoch, "train_loss": total / len(train), "validation": score})
        if progress is not None:
            progress(epoch, score)
        if score < best[0]:
            best = (score, epoch, copy.deepcopy(model.state_dict()))
        elapsed = time.perf_counter() - start
        if epoch - best[1] >= settings.patience:
            break
        if settings.max_seconds is not None and elapsed > settings.max_seconds:
            break
    model.load_state_dict(best[2])
    model.eval()
    return FitResult(model, best[1], best[0], time.perf_counter() - start, history)


def train_strategy(
    strategy: str,
    spec: ModelSpec,
    train: FormulaSet,
    validation: FormulaSet | None,
    settings: FitSettings,
    source: SetRegressor | None = None,
) -> FitResult:
    """Train a target model with one of `STRATEGIES` (all but scratch need `source`)."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if strategy == "scratch":
        torch.manual_seed(settings.seed)
        return fit(SetRegressor(spec), train, validation, settings)
    if source is None:
        raise ConfigError(f"strategy {strategy!r} needs a pre-trained source model")
    model = source.with_new_head(settings.seed)
    if strategy == "feature":
        for parameter in model.encoder.parameters():
            parameter.requires_grad_(False)
        return fit(model, train, validation, settings)
    if strategy == "finetune":
        groups = [
            {
                "params": list(model.encoder.parameters()),
                "lr": settings.learning_rate * settings.encoder_rate,
            },
            {"params": list(model.head.parameters()), "lr": settings.learning_rate},
        ]
        return fit(model, train, validation, settings, groups=groups)
    anchors = [p.detach().clone() for p in model.encoder.parameters()]
    encoder = list(model.encoder.parameters())
    head_weights = [p for n, p in model.head.named_parameters() if n.endswith("weight")]

    def l2sp() -> torch.Tensor:
        pull = sum(((p - a) ** 2).sum() for p, a in zip(encoder, anchors, strict=True))
        shrink = sum((w**2).sum() for w in head_weights)
        return 0.5 * settings.l2sp_alpha * pull + 0.5 * settings.l2sp_beta * shrink

    plain = FitSettings(**{**settings.__dict__, "weight_decay": 0.0})
    return fit(model, train, validation, plain, regularizer=l2sp)

"""Training and the transfer strategies.

`fit` trains a `SetRegressor` on a `FormulaSet` with an L1 loss on standardized targets
(mean absolute error, the figure reported) and AdamW, on one of two schedules:

- ``early_stopping``: a constant learning rate; the weights of the epoch with the best
  validation MAE are kept, training stops after `patience` epochs without a better one;
- ``cosine_swa``: all `epochs` at a cosine-annealed learning rate, and the returned
  weights are the average of the weights at the end of each epoch from `swa_start` (a
  fraction of the epochs) on (stochastic weight averaging, Izmailov et al. 2018; CrabNet
  uses SWA too). The validation set is only scored, never selected on: with 20-30
  validation rows the best-epoch choice is mostly noise.

Strategies for a target task, given a model
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
from typing import Literal

import numpy as np
import torch

from matforge.core.errors import ConfigError
from matforge.transfer.data import FormulaSet
from matforge.transfer.model import ModelSpec, SetRegressor

__all__ = [
    "SCHEDULES",
    "STRATEGIES",
    "FitResult",
    "FitSettings",
    "fit",
    "train_strategy",
    "validation_split",
]

STRATEGIES = ("scratch", "feature", "finetune", "l2sp")
SCHEDULES = ("early_stopping", "cosine_swa")


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
    schedule: Literal["early_stopping", "cosine_swa"] = "early_stopping"
    swa_start: float = 0.5  # cosine_swa: average the weights from this fraction of epochs

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ConfigError("epochs, batch_size and patience must be positive")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0 <= self.swa_start < 1:
            raise ConfigError(f"swa_start must lie in [0, 1), got {self.swa_start}")
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


class WeightAverage:
    """Running mean of a model's floating-point weights (float64 accumulators)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.count = 0
        self.sums = {
            name: torch.zeros_like(value, dtype=torch.float64)
            for name, value in model.state_dict().items()
            if value.is_floating_point()
        }

    def add(self, model: torch.nn.Module) -> None:
        self.count += 1
        state = model.state_dict()
        for name, total in self.sums.items():
            total += state[name].detach().double()

    def load_into(self, model: torch.nn.Module) -> None:
        state = model.state_dict()
        averaged = {
            name: (total / self.count).to(state[name].dtype) for name, total in self.sums.items()
        }
        model.load_state_dict({**state, **averaged})


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
    annealed = settings.schedule == "cosine_swa"
    steps = settings.epochs * math.ceil(len(train) / settings.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)) if annealed else 1.0
    )
    average = WeightAverage(model) if annealed else None
    swa_epoch = max(1, math.ceil(settings.swa_start * settings.epochs))
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
            scheduler.step()
            total += float(loss.detach()) * len(index)
        if average is not None and epoch >= swa_epoch:
            average.add(model)
        score = _mae(model, validation) if validation is not None else total / len(train)
        history.append({"epoch": epoch, "train_loss": total / len(train), "validation": score})
        if progress is not None:
            progress(epoch, score)
        if annealed:
            continue
        if score < best[0]:
            best = (score, epoch, copy.deepcopy(model.state_dict()))
        elapsed = time.perf_counter() - start
        if epoch - best[1] >= settings.patience:
            break
        if settings.max_seconds is not None and elapsed > settings.max_seconds:
            break
    if average is not None:
        average.load_into(model)
        score = _mae(model, validation) if validation is not None else math.nan
        best = (score, len(history), model.state_dict())
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

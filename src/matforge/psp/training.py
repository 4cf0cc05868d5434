"""Training links and chains on tables of measurements, and ensembles of chains.

Each output enters the loss in a scale-free form: log of the grain size (errors in percent,
not micrometres), phase fractions as they are, other quantities (the property) divided by
their standard deviation in the training data. Training is full batch: Adam, then L-BFGS
to polish (the data sets are hundreds of rows). `fit_link` trains one link on its own
columns; `fit_chain` trains a composed chain jointly on the final property and on any
intermediate quantity the table also holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from matforge.core.ensemble import spread
from matforge.core.errors import ConfigError
from matforge.core.progress import track
from matforge.psp.links import Chain, Link, NeuralPropertyLink, Standardizer


@dataclass(frozen=True)
class TrainSettings:
    adam_steps: int = 1000
    learning_rate: float = 1e-2
    lbfgs_steps: int = 2000
    weight_decay: float = 1e-6
    seed: int = 0


def columns(
    data: pd.DataFrame, names: Sequence[str], where: str = "data"
) -> dict[str, torch.Tensor]:
    missing = [n for n in names if n not in data.columns]
    if missing:
        raise ConfigError(f"{where}: missing columns {missing}; found {list(data.columns)}")
    return {n: torch.tensor(data[n].to_numpy(dtype=float), dtype=torch.float64) for n in names}


def _prepare(link: torch.nn.Module, values: dict[str, torch.Tensor]) -> None:
    """Input statistics (and output scale of neural property links) from training data."""
    for module in link.modules():
        if isinstance(module, Link) and hasattr(module, "scale"):
            scale: Standardizer = module.scale
            if all(q.name in values for q in module.inputs):
                scale.fit([values[q.name] for q in module.inputs])
        if isinstance(module, NeuralPropertyLink):
            name = module.outputs[0].name
            if name in values:
                module.y_mean.copy_(values[name].mean())
                module.y_std.copy_(values[name].std().clamp_min(1e-12))


def _residuals(
    predicted: dict[str, torch.Tensor], target: dict[str, torch.Tensor], scales: dict[str, float]
) -> torch.Tensor:
    parts = []
    for name, truth in target.items():
        guess = predicted[name]
        if name.startswith("grain_size"):
            parts.append(torch.log(guess) - torch.log(truth))
        else:
            parts.append((guess - truth) / scales.get(name, 1.0))
    return torch.cat(parts)


def _train(
    module: torch.nn.Module,
    inputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    settings: TrainSettings,
    description: str,
) -> list[float]:
    torch.manual_seed(settings.seed)
    for m in module.modules():
        if isinstance(m, torch.nn.Linear):
            m.reset_parameters()
    _prepare(module, {**inputs, **targets})
    scales = {
        n: float(v.std())
        for n, v in targets.items()
        if not n.startswith(("grain_size", "fraction_"))
    }
    parameters = [p for p in module.parameters() if p.requires_grad]
    if not parameters:
        return []

    def loss_fn() -> torch.Tensor:
        r = _residuals(module(inputs), targets, scales)
        penalty = sum((p**2).sum() for p in parameters)
        return (r**2).mean() + settings.weight_decay * penalty

    history = []
    adam = torch.optim.Adam(parameters, lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(adam, max(settings.adam_steps, 1))
    for _ in track(range(settings.adam_steps), description=description):
        adam.zero_grad()
        loss = loss_fn()
        loss.backward()
        adam.step()
        schedule.step()
        history.append(float(loss.detach()))
    if settings.lbfgs_steps:
        lbfgs = torch.optim.LBFGS(
            parameters,
            max_iter=settings.lbfgs_steps,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-12,
            tolerance_change=1e-15,
        )

        def closure() -> torch.Tensor:
            lbfgs.zero_grad()
            loss = loss_fn()
            loss.backward()
            return loss.detach()  # LBFGS needs only the value

        lbfgs.step(closure)
        history.append(float(loss_fn().detach()))
    return history


def fit_link(
    link: Link, data: pd.DataFrame, settings: TrainSettings = TrainSettings()
) -> list[float]:
    """Train one link on its own input and output columns; returns the loss history."""
    inputs = columns(data, link.input_names(), "link inputs")
    targets = columns(data, link.output_names(), "link outputs")
    return _train(link, inputs, targets, settings, f"fit {type(link).__name__}")


def fit_chain(
    chain: Chain,
    data: pd.DataFrame,
    settings: TrainSettings = TrainSettings(),
    *,
    targets: Sequence[str] | None = None,
) -> list[float]:
    """Train all links together on `targets` (default: every chain output in the table)."""
    names = list(targets) if targets is not None else [n for n in chain.outputs if n in data]
    if not names:
        raise ConfigError(f"no chain output among the columns {list(data.columns)}")
    inputs = columns(data, chain.inputs, "chain inputs")
    return _train(chain, inputs, columns(data, names, "chain targets"), settings, "fit chain")


def link_errors(
    module: torch.nn.Module, data: pd.DataFrame, inputs: Sequence[str], outputs: Sequence[str]
) -> list[dict[str, float | str]]:
    """MAE, RMSE and R^2 of each output (grain size also as mean relative error)."""
    with torch.no_grad():
        predicted = module(columns(data, inputs))
    rows = []
    for name in outputs:
        truth = data[name].to_numpy(dtype=float)
        guess = predicted[name].numpy()
        error = guess - truth
        total = ((truth - truth.mean()) ** 2).sum()
        row: dict[str, float | str] = {
            "quantity": name,
            "mae": float(np.abs(error).mean()),
            "rmse": float(np.sqrt((error**2).mean())),
            "r2": float(1 - (error**2).sum() / total) if total > 0 else float("nan"),
        }
        if name.startswith("grain_size"):
            row["mean_relative_error"] = float(np.abs(error / truth).mean())
        rows.append(row)
    return rows


class ChainEnsemble(torch.nn.Module):
    """Several chains trained with different seeds (and bootstrap resamples): the mean is
    the prediction, the standard deviation its uncertainty."""

    def __init__(self, chains: Sequence[Chain]) -> None:
        super().__init__()
        if not chains:
            raise ValueError("an ensemble needs at least one chain")
        self.chains = torch.nn.ModuleList(chains)

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.chains[0].inputs

    def members(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        outs = [chain(values) for chain in self.chains]
        return {k: torch.stack([o[k] for o in outs]) for k in outs[0]}

    def forward(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        stacked = {k: spread(v) for k, v in self.members(values).items()}
        out = {k: mean for k, (mean, _) in stacked.items()}
        if len(self.chains) > 1:
            out.update({f"{k}_std": std for k, (_, std) in stacked.items()})
        return out

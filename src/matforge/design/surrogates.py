"""Surrogates of the design objective behind one interface, and their calibration.

A `Surrogate` is fitted on compositions X (n, d) and observations y (n,) and exposes a
BoTorch `Model` (`.model`), so every acquisition function in `design.acquisition` works with
any of them; `predict` gives the predictive mean and standard deviation of a new
observation (noise included, what calibration is about). The ensemble's variance always
includes its learned noise (a mixture of per-member Gaussians).

* `GPSurrogate`: BoTorch's `SingleTaskGP` (exact GP, RBF kernel, a length scale per input) on the
  composition and, optionally, descriptors (`design.descriptors`), inputs normalized to the
  unit cube and outcomes standardized. Its priors are BoTorch's defaults since 0.12, chosen
  for small data sets: log-normal length-scale priors whose scale grows with sqrt(dimension)
  (Hvarfner et al., ICML 2024) and a log-normal noise prior. Hyperparameters by marginal
  likelihood (`fit_gpytorch_mll`).
* `DeepEnsembleSurrogate`: M small MLPs, each predicting a mean and a variance, trained on
  the Gaussian negative log likelihood from different initializations (Lakshminarayanan et
  al., NeurIPS 2017); the prediction is the mixture's mean and variance.

`cross_validate` reports held-out MAE, RMSE and the coverage of the central 90% predictive
interval (0.90 for a calibrated model).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from botorch.models.model import Model

from matforge.core.ensemble import mixture_moments
from matforge.core.errors import ConfigError

Z90 = 1.6448536269514722  # standard normal quantile of 0.95


class Surrogate(Protocol):
    model: Model

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> Surrogate: ...

    def predict(
        self, x: torch.Tensor, *, observation_noise: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


def _checked(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64).reshape(-1)
    if x.ndim != 2 or len(x) != len(y):
        raise ConfigError(
            f"expected X (n, d) and y (n,), got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if len(y) < 2:
        raise ConfigError(f"a surrogate needs at least 2 observations, got {len(y)}")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ConfigError("training data contain NaN or infinite values")
    return x, y


def _predict(
    model: Model, x: torch.Tensor, observation_noise: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        posterior = model.posterior(
            torch.as_tensor(x, dtype=torch.float64), observation_noise=observation_noise
        )
        return posterior.mean.squeeze(-1), posterior.variance.clamp(min=0).sqrt().squeeze(-1)


class _Predicts:
    model: Model | None

    def predict(
        self, x: torch.Tensor, *, observation_noise: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of a new observation at x (with the noise) or,
        with `observation_noise=False`, of the noise-free objective."""
        if self.model is None:
            raise ConfigError("fit the surrogate before predicting")
        return _predict(self.model, x, observation_noise)


#: State-dict prefixes of a SingleTaskGP's hyperparameters (not its data transforms).
_HYPERPARAMETERS = ("likelihood.", "covar_module.", "mean_module.")


class GPSurrogate(_Predicts):
    """Exact GP (BoTorch `SingleTaskGP`) on compositions plus descriptors."""

    def __init__(self, elements: Sequence[str], descriptors: Sequence[str] = ()) -> None:
        self.elements = tuple(elements)
        self.descriptors = tuple(descriptors)
        self.model: Model | None = None
        self._start: dict[str, torch.Tensor] = {}

    def warm_start(self, previous: GPSurrogate) -> None:
        """Start the hyperparameter fit from `previous`'s optimum (a design loop refits
        on one more point each iteration, where the old optimum is close to the new)."""
        if previous.model is None or previous.descriptors != self.descriptors:
            return
        self._start = {
            k: v.detach().clone()
            for k, v in previous.model.state_dict().items()
            if k.startswith(_HYPERPARAMETERS)
        }

    def _transform(self, width: int):  # type: ignore[no-untyped-def]
        from botorch.models.transforms.input import ChainedInputTransform, Normalize

        from matforge.design.descriptors import DescriptorFeatures

        if not self.descriptors:
            return Normalize(d=width)
        return ChainedInputTransform(
            features=DescriptorFeatures(self.elements, self.descriptors),
            normalize=Normalize(d=width + len(self.descriptors)),
        )

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> GPSurrogate:
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms.outcome import Standardize
        from gpytorch.mlls import ExactMarginalLogLikelihood

        x, y = _checked(x, y)
        model = SingleTaskGP(
            x,
            y[:, None],
            input_transform=self._transform(x.shape[1]),
            outcome_transform=Standardize(m=1),
        )
        if self._start:
            model.load_state_dict(self._start, strict=False)
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        model.eval()
        self.model = model
        return self


class _EnsembleModel(Model):
    """A BoTorch model whose posterior is the Gaussian matching the ensemble's mixture."""

    def __init__(
        self,
        nets: list[torch.nn.Module],
        shift: torch.Tensor,
        scale: torch.Tensor,
        x_low: torch.Tensor,
        x_span: torch.Tensor,
    ) -> None:
        super().__init__()
        self.nets = torch.nn.ModuleList(nets)
        self.register_buffer("shift", shift)
        self.register_buffer("scale", scale)
        self.register_buffer("x_low", x_low)
        self.register_buffer("x_span", x_span)

    @property
    def num_outputs(self) -> int:
        return 1

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size()

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = (x - self.x_low) / self.x_span
        outputs = torch.stack([net(z) for net in self.nets])  # (M, ..., 2)
        means, variances = outputs[..., 0], torch.nn.functional.softplus(outputs[..., 1]) + 1e-6
        mean, variance = mixture_moments(means, variances)
        return self.shift + self.scale * mean, self.scale**2 * variance

    def posterior(
        self,
        X,  # noqa: N803 (BoTorch's name)
        output_indices=None,
        observation_noise=False,
        posterior_transform=None,
        **kwargs,
    ):  # type: ignore[no-untyped-def]
        from botorch.posteriors.gpytorch import GPyTorchPosterior
        from gpytorch.distributions import MultivariateNormal
        from linear_operator.operators import DiagLinearOperator

        mean, variance = self.moments(X)
        posterior = GPyTorchPosterior(MultivariateNormal(mean, DiagLinearOperator(variance)))
        return posterior_transform(posterior) if posterior_transform is not None else posterior


class DeepEnsembleSurrogate(_Predicts):
    """M MLPs (mean and variance heads) trained on the Gaussian NLL; see module docstring."""

    def __init__(
        self,
        members: int = 5,
        hidden: int = 64,
        epochs: int = 600,
        learning_rate: float = 3e-3,
        weight_decay: float = 1e-4,
        seed: int = 0,
    ) -> None:
        if members < 2:
            raise ConfigError(f"a deep ensemble needs at least 2 members, got {members}")
        self.members, self.hidden, self.epochs = members, hidden, epochs
        self.learning_rate, self.weight_decay, self.seed = learning_rate, weight_decay, seed
        self.model: Model | None = None

    def _net(self, width: int) -> torch.nn.Module:
        return torch.nn.Sequential(
            torch.nn.Linear(width, self.hidden),
            torch.nn.SiLU(),
            torch.nn.Linear(self.hidden, self.hidden),
            torch.nn.SiLU(),
            torch.nn.Linear(self.hidden, 2),
        ).double()

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> DeepEnsembleSurrogate:
        x, y = _checked(x, y)
        shift, scale = y.mean(), y.std().clamp(min=1e-12)
        target = (y - shift) / scale
        x_low = x.min(0).values
        x_span = (x.max(0).values - x_low).clamp(min=1e-12)
        z = (x - x_low) / x_span
        generator = torch.Generator().manual_seed(self.seed)
        nets = []
        for _ in range(self.members):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
            net = self._net(x.shape[1])
            optimizer = torch.optim.Adam(
                net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
            )
            for _ in range(self.epochs):
                optimizer.zero_grad()
                out = net(z)
                variance = torch.nn.functional.softplus(out[:, 1]) + 1e-6
                loss = 0.5 * (torch.log(variance) + (target - out[:, 0]) ** 2 / variance).mean()
                loss.backward()
                optimizer.step()
            nets.append(net.eval())
        self.model = _EnsembleModel(nets, shift, scale, x_low, x_span)
        for p in self.model.parameters():
            p.requires_grad_(False)
        return self


@dataclass(frozen=True)
class Calibration:
    mae: float
    rmse: float
    coverage_90: float
    mean_interval_width_90: float
    folds: int
    n: int
    predictions: torch.Tensor  # (n, 2): held-out mean and std, in input order

    def as_dict(self) -> dict[str, float | int]:
        return {
            "mae": self.mae,
            "rmse": self.rmse,
            "coverage_90": self.coverage_90,
            "mean_interval_width_90": self.mean_interval_width_90,
            "folds": self.folds,
            "n": self.n,
        }


def cross_validate(
    make: Callable[[], Surrogate],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    folds: int = 5,
    seed: int = 0,
    groups: torch.Tensor | None = None,
) -> Calibration:
    """k-fold held-out predictions: MAE, RMSE and coverage of the 90% interval.

    With `groups` (an id per row), rows of one group share a fold (grouped k-fold), e.g.
    repeated measurements of one alloy.
    """
    x, y = _checked(x, y)
    groups = torch.arange(len(y)) if groups is None else torch.as_tensor(groups)
    _, groups = torch.unique(groups, return_inverse=True)
    n_groups = int(groups.max()) + 1
    if not 2 <= folds <= n_groups:
        raise ConfigError(f"folds must lie in [2, {n_groups}], got {folds}")
    order = torch.randperm(n_groups, generator=torch.Generator().manual_seed(seed))
    fold_of_group = torch.empty(n_groups, dtype=torch.long)
    fold_of_group[order] = torch.arange(n_groups) % folds
    fold = fold_of_group[groups]
    predictions = torch.empty(len(y), 2, dtype=torch.float64)
    for k in range(folds):
        test = torch.nonzero(fold == k)[:, 0]
        train = fold != k
        mean, std = make().fit(x[train], y[train]).predict(x[test])
        predictions[test, 0], predictions[test, 1] = mean, std
    error = predictions[:, 0] - y
    inside = error.abs() <= Z90 * predictions[:, 1]
    return Calibration(
        mae=float(error.abs().mean()),
        rmse=float(math.sqrt(float((error**2).mean()))),
        coverage_90=float(inside.double().mean()),
        mean_interval_width_90=float((2 * Z90 * predictions[:, 1]).mean()),
        folds=folds,
        n=len(y),
        predictions=predictions,
    )


def make_surrogate(
    kind: str, elements: Sequence[str], descriptors: Sequence[str] = (), seed: int = 0
) -> Surrogate:
    """`gp` or `ensemble` by name (what configs use)."""
    if kind == "gp":
        return GPSurrogate(elements, descriptors)
    if kind == "ensemble":
        if descriptors:
            raise ConfigError("the deep ensemble takes compositions only (descriptors: [])")
        return DeepEnsembleSurrogate(seed=seed)
    raise ConfigError(f"surrogate kind must be 'gp' or 'ensemble', got {kind!r}")

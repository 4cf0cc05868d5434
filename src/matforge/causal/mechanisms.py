"""Mechanisms: the structural equation of one node, value = f(parents, noise).

Every mechanism is fitted from observational data (the node's parents' columns and its own
column) and can then sample, predict and, where it is invertible, abduct the noise of an
observed unit (the first step of a counterfactual). Additive-noise mechanisms
value = f(parents) + noise are invertible: noise = value - f(parents).

- `EmpiricalRoot`: a node without observed parents, drawn from its observed values.
- `PolynomialMechanism`: f = least-squares polynomial of the parents (degree 1 is the
  linear-Gaussian / linear additive-noise model), noise Gaussian or resampled residuals.
- `MLPMechanism`: f = a torch MLP (standardized inputs and output, L-BFGS with a small
  weight decay), additive noise.
- `HallPetchMechanism`: a known physics function with fitted constants: Hall-Petch per
  phase combined by the rule of mixtures, `matforge.psp.HallPetchLink`.
- `LogisticMechanism`: a binary node, P(value = 1) = sigmoid(w . parents + b). Not
  invertible: a unit's noise is not identified, so counterfactuals through it are refused.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from itertools import combinations_with_replacement
from typing import Any, ClassVar, Literal

import torch

from matforge.core.errors import ConfigError

__all__ = [
    "EmpiricalRoot",
    "HallPetchMechanism",
    "LogisticMechanism",
    "MLPMechanism",
    "Mechanism",
    "NonInvertibleError",
    "PolynomialMechanism",
    "mechanism_from_state",
]

Noise = Literal["gaussian", "empirical"]
DTYPE = torch.float64


class NonInvertibleError(ConfigError):
    """A counterfactual needs the noise of a unit at a mechanism that cannot give it."""


class Mechanism(ABC):
    """value = apply(parents, noise); `parents` is (n, p) float64 in the graph's order."""

    kind: ClassVar[str]
    invertible: ClassVar[bool] = True

    def __init__(self, node: str = "", parents: tuple[str, ...] = ()) -> None:
        self.node = node
        self.parents = tuple(parents)
        self.fitted = False

    @abstractmethod
    def fit(self, parents: torch.Tensor, values: torch.Tensor) -> Mechanism: ...

    @abstractmethod
    def predict(self, parents: torch.Tensor) -> torch.Tensor:
        """The noise-free part f(parents) (the conditional mean for zero-mean noise)."""

    @abstractmethod
    def draw_noise(self, n: int, generator: torch.Generator) -> torch.Tensor: ...

    def apply(self, parents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.predict(parents) + noise

    def abduct(self, parents: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """The noise that reproduces `values` from `parents`."""
        return values - self.predict(parents)

    def linear_form(self) -> tuple[float, torch.Tensor] | None:
        """(intercept, coefficients) where f is affine and the noise has mean zero."""
        return None

    def noise_mean(self) -> float:
        return 0.0

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "node": self.node, "parents": list(self.parents)}

    def _check_fit(self, parents: torch.Tensor, values: torch.Tensor) -> None:
        if parents.shape != (values.shape[0], len(self.parents)):
            raise ConfigError(
                f"node {self.node!r}: expected {len(self.parents)} parent column(s) "
                f"{list(self.parents)} for {values.shape[0]} rows, got {tuple(parents.shape)}"
            )
        if values.shape[0] < len(self.parents) + 2:
            raise ConfigError(
                f"node {self.node!r}: {values.shape[0]} rows are too few to fit a mechanism "
                f"with {len(self.parents)} parent(s)"
            )

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise ConfigError(f"the mechanism of node {self.node!r} is not fitted yet")


class _ResidualNoise:
    """Gaussian noise with the residuals' standard deviation, or resampled residuals.

    With ``log=True`` the regression is of log(value): value = exp(f(parents) + noise),
    for positive quantities (grain sizes, times) whose noise is multiplicative; `predict`
    is then the conditional mean exp(f) * mean(exp(residuals)) (Duan's smearing).
    """

    log: bool = False

    def _target(self, values: torch.Tensor) -> torch.Tensor:
        if not self.log:
            return values
        if (values <= 0).any():
            raise ConfigError(
                f"node {self.node!r}: log=True needs positive values, got {float(values.min())}"
            )
        return values.log()

    def _regression(self, parents: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predict(self, parents: torch.Tensor) -> torch.Tensor:
        self._require_fitted()
        f = self._regression(parents)
        return f if not self.log else f.exp() * self.residuals.exp().mean()

    def apply(self, parents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        f = self._regression(parents) + noise
        return f.exp() if self.log else f

    def abduct(self, parents: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        return self._target(values) - self._regression(parents)

    def _set_noise(self, residuals: torch.Tensor, noise: Noise) -> None:
        if noise not in ("gaussian", "empirical"):
            raise ConfigError(f"noise must be 'gaussian' or 'empirical', got {noise!r}")
        self.noise = noise
        self.residuals = residuals.detach().clone()
        self.noise_std = float(residuals.std()) if residuals.numel() > 1 else 0.0

    def draw_noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if self.noise == "gaussian":
            return self.noise_std * torch.randn(n, generator=generator, dtype=DTYPE)
        index = torch.randint(len(self.residuals), (n,), generator=generator)
        return self.residuals[index]


class EmpiricalRoot(Mechanism):
    """A node without observed parents: draws its own observed values (noise = value)."""

    kind = "empirical"

    def fit(self, parents: torch.Tensor, values: torch.Tensor) -> EmpiricalRoot:
        if parents.shape[1]:
            raise ConfigError(f"node {self.node!r}: an empirical root takes no parents")
        self.values = values.detach().clone().to(DTYPE)
        self.fitted = True
        return self

    def predict(self, parents: torch.Tensor) -> torch.Tensor:
        return torch.zeros(parents.shape[0], dtype=DTYPE)

    def draw_noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        self._require_fitted()
        return self.values[torch.randint(len(self.values), (n,), generator=generator)]

    def linear_form(self) -> tuple[float, torch.Tensor]:
        return 0.0, torch.zeros(0, dtype=DTYPE)

    def noise_mean(self) -> float:
        return float(self.values.mean())

    def state(self) -> dict[str, Any]:
        return {**super().state(), "values": self.values}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EmpiricalRoot:
        mechanism = cls(state["node"], tuple(state["parents"]))
        mechanism.values = state["values"].to(DTYPE)
        mechanism.fitted = True
        return mechanism


def _polynomial_features(x: torch.Tensor, degree: int) -> torch.Tensor:
    columns = [torch.ones(x.shape[0], dtype=x.dtype)]
    for order in range(1, degree + 1):
        for combo in combinations_with_replacement(range(x.shape[1]), order):
            columns.append(torch.prod(x[:, list(combo)], dim=1))
    return torch.stack(columns, dim=1)


class PolynomialMechanism(_ResidualNoise, Mechanism):
    """f = least-squares polynomial of degree `degree` in the parents (degree 1: linear)."""

    kind = "polynomial"

    def __init__(
        self,
        node: str = "",
        parents: tuple[str, ...] = (),
        *,
        degree: int = 1,
        noise: Noise = "gaussian",
        log: bool = False,
    ) -> None:
        super().__init__(node, parents)
        if degree < 1:
            raise ConfigError(f"node {node!r}: polynomial degree must be >= 1, got {degree}")
        self.degree, self.noise, self.log = degree, noise, log

    def fit(self, parents: torch.Tensor, values: torch.Tensor) -> PolynomialMechanism:
        self._check_fit(parents, values)
        # centring and scaling the inputs keeps the normal equations well conditioned
        self.shift = parents.mean(0)
        self.scale = parents.std(0).clamp(min=1e-12) if parents.shape[1] else parents.sum(0)
        target = self._target(values)
        design = _polynomial_features((parents - self.shift) / self.scale, self.degree)
        self.weights = torch.linalg.lstsq(design, target.unsqueeze(1), driver="gelsd").solution[
            :, 0
        ]
        self._set_noise(target - design @ self.weights, self.noise)
        self.fitted = True
        return self

    def _regression(self, parents: torch.Tensor) -> torch.Tensor:
        design = _polynomial_features((parents - self.shift) / self.scale, self.degree)
        return design @ self.weights

    def linear_form(self) -> tuple[float, torch.Tensor] | None:
        if self.degree != 1 or self.log:
            return None
        coefficients = self.weights[1:] / self.scale
        return float(self.weights[0] - coefficients @ self.shift), coefficients

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "degree": self.degree,
            "noise": self.noise,
            "log": self.log,
            "shift": self.shift,
            "scale": self.scale,
            "weights": self.weights,
            "residuals": self.residuals,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PolynomialMechanism:
        mechanism = cls(
            state["node"],
            tuple(state["parents"]),
            degree=state["degree"],
            noise=state["noise"],
            log=state["log"],
        )
        mechanism.shift, mechanism.scale = state["shift"], state["scale"]
        mechanism.weights = state["weights"]
        mechanism._set_noise(state["residuals"], state["noise"])
        mechanism.fitted = True
        return mechanism


def _lbfgs(parameters: list[torch.Tensor], loss_fn, iterations: int) -> None:
    optimizer = torch.optim.LBFGS(
        parameters, max_iter=iterations, line_search_fn="strong_wolfe", tolerance_grad=1e-10
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    optimizer.step(closure)


class MLPMechanism(_ResidualNoise, Mechanism):
    """f = MLP(parents), standardized; fitted by L-BFGS on the mean squared error."""

    kind = "mlp"

    def __init__(
        self,
        node: str = "",
        parents: tuple[str, ...] = (),
        *,
        hidden: tuple[int, ...] = (32, 32),
        weight_decay: float = 1e-4,
        iterations: int = 500,
        noise: Noise = "empirical",
        log: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(node, parents)
        self.hidden, self.weight_decay, self.iterations = tuple(hidden), weight_decay, iterations
        self.noise, self.log, self.seed = noise, log, seed

    def _network(self) -> torch.nn.Sequential:
        layers: list[torch.nn.Module] = []
        width = len(self.parents)
        for size in self.hidden:
            layers += [torch.nn.Linear(width, size), torch.nn.Tanh()]
            width = size
        layers.append(torch.nn.Linear(width, 1))
        return torch.nn.Sequential(*layers).to(DTYPE)

    def fit(self, parents: torch.Tensor, values: torch.Tensor) -> MLPMechanism:
        self._check_fit(parents, values)
        if not self.parents:
            raise ConfigError(f"node {self.node!r}: an MLP mechanism needs parents")
        torch.manual_seed(self.seed)
        self.network = self._network()
        target = self._target(values)
        self.x_shift, self.x_scale = parents.mean(0), parents.std(0).clamp(min=1e-12)
        self.y_shift, self.y_scale = float(target.mean()), float(target.std().clamp(min=1e-12))
        x = (parents - self.x_shift) / self.x_scale
        y = (target - self.y_shift) / self.y_scale
        weights = [p for name, p in self.network.named_parameters() if name.endswith("weight")]

        def loss() -> torch.Tensor:
            misfit = ((self.network(x)[:, 0] - y) ** 2).mean()
            return misfit + self.weight_decay * sum((w**2).sum() for w in weights)

        _lbfgs(list(self.network.parameters()), loss, self.iterations)
        self.fitted = True
        with torch.no_grad():
            self._set_noise(target - self._regression(parents), self.noise)
        return self

    def _regression(self, parents: torch.Tensor) -> torch.Tensor:
        x = (parents - self.x_shift) / self.x_scale
        return self.network(x)[:, 0] * self.y_scale + self.y_shift

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "hidden": list(self.hidden),
            "weight_decay": self.weight_decay,
            "iterations": self.iterations,
            "noise": self.noise,
            "log": self.log,
            "seed": self.seed,
            "x_shift": self.x_shift,
            "x_scale": self.x_scale,
            "y_shift": self.y_shift,
            "y_scale": self.y_scale,
            "network": {k: v.detach() for k, v in self.network.state_dict().items()},
            "residuals": self.residuals,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MLPMechanism:
        mechanism = cls(
            state["node"],
            tuple(state["parents"]),
            hidden=tuple(state["hidden"]),
            weight_decay=state["weight_decay"],
            iterations=state["iterations"],
            noise=state["noise"],
            log=state["log"],
            seed=state["seed"],
        )
        mechanism.network = mechanism._network()
        mechanism.network.load_state_dict(state["network"])
        mechanism.x_shift, mechanism.x_scale = state["x_shift"], state["x_scale"]
        mechanism.y_shift, mechanism.y_scale = state["y_shift"], state["y_scale"]
        mechanism._set_noise(state["residuals"], state["noise"])
        mechanism.fitted = True
        return mechanism


class HallPetchMechanism(_ResidualNoise, Mechanism):
    """sigma = sum_i f_i (sigma0_i + k_i d^-1/2) + noise (`matforge.psp.HallPetchLink`).

    Parents: the grain-size node (um) and one fraction node per phase; with
    `balance_phase`, that phase's fraction is 1 - the sum of the others (not a node).
    """

    kind = "hall-petch"

    def __init__(
        self,
        node: str = "",
        parents: tuple[str, ...] = (),
        *,
        grain_size: str = "",
        balance_phase: str | None = None,
        noise: Noise = "empirical",
    ) -> None:
        super().__init__(node, parents)
        if grain_size not in parents:
            raise ConfigError(
                f"node {node!r}: hall-petch needs its grain-size node among the parents "
                f"{list(parents)}, got grain_size={grain_size!r}"
            )
        self.grain_size, self.balance_phase, self.noise = grain_size, balance_phase, noise
        self.fractions = [p for p in parents if p != grain_size]
        phases = list(self.fractions) + ([balance_phase] if balance_phase else [])
        if not phases:
            raise ConfigError(f"node {node!r}: hall-petch needs at least one phase fraction")
        from matforge.psp.links import HallPetchLink

        self.link = HallPetchLink(phases)

    def _values(self, parents: torch.Tensor) -> dict[str, torch.Tensor]:
        columns = dict(zip(self.parents, parents.unbind(1), strict=True))
        values = {"grain_size_um": columns[self.grain_size]}
        for name in self.fractions:
            values[f"fraction_{name}"] = columns[name]
        if self.balance_phase:
            others = sum(columns[name] for name in self.fractions)
            values[f"fraction_{self.balance_phase}"] = 1 - others
        return values

    def fit(self, parents: torch.Tensor, values: torch.Tensor) -> HallPetchMechanism:
        self._check_fit(parents, values)
        if (parents[:, self.parents.index(self.grain_size)] <= 0).any():
            raise ConfigError(f"node {self.node!r}: grain sizes must be positive")
        inputs = self._values(parents)
        scale = float(values.std().clamp(min=1e-12))

        def loss() -> torch.Tensor:
            predicted = self.link(inputs)[self.link.outputs[0].name]
            return (((predicted - values) / scale) ** 2).mean()

        _lbfgs(list(self.link.parameters()), loss, 500)
        self.fitted = True
        with torch.no_grad():
            self._set_noise(values - self._regression(parents), self.noise)
        return self

    def _regression(self, parents: torch.Tensor) -> torch.Tensor:
        return self.link(self._values(parents))[self.link.outputs[0].name]

    def constants(self) -> dict[str, dict[str, float]]:
        names = self.link.phases
        return {
            "sigma0_MPa": dict(zip(names, self.link.sigma0.tolist(), strict=True)),
            "k_MPa_m05": dict(zip(names, self.link.k.tolist(), strict=True)),
        }

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "grain_size": self.grain_size,
            "balance_phase": self.balance_phase,
            "noise": self.noise,
            "link": {k: v.detach() for k, v in self.link.state_dict().items()},
            "residuals": self.residuals,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> HallPetchMechanism:
        mechanism = cls(
            state["node"],
            tuple(state["parents"]),
            grain_size=state["grain_size"],
            balance_phase=state["balance_phase"],
            noise=state["noise"],
        )
        mechanism.link.load_state_dict(state["link"])
        mechanism._set_noise(state["residuals"], state["noise"])
        mechanism.fitted = True
        return mechanism


class LogisticMechanism(Mechanism):
    """A binary node: value ~ Bernoulli(sigmoid(w . standardized parents + b))."""

    kind = "logistic"
    invertible = False

    def fit(self, parents: torch.Tensor, values: torch.Tensor) -> LogisticMechanism:
        self._check_fit(parents, values)
        if not torch.isin(values, torch.tensor([0.0, 1.0], dtype=values.dtype)).all():
            raise ConfigError(f"node {self.node!r}: a logistic mechanism needs 0/1 values")
        self.shift = parents.mean(0)
        self.scale = parents.std(0).clamp(min=1e-12)
        x = (parents - self.shift) / self.scale
        self.weights = torch.zeros(x.shape[1] + 1, dtype=DTYPE, requires_grad=True)

        def loss() -> torch.Tensor:
            logits = x @ self.weights[1:] + self.weights[0]
            bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, values)
            return bce + 1e-6 * (self.weights**2).sum()

        _lbfgs([self.weights], loss, 200)
        self.weights = self.weights.detach()
        self.fitted = True
        return self

    def predict(self, parents: torch.Tensor) -> torch.Tensor:
        self._require_fitted()
        x = (parents - self.shift) / self.scale
        return torch.sigmoid(x @ self.weights[1:] + self.weights[0])

    def draw_noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.rand(n, generator=generator, dtype=DTYPE)

    def apply(self, parents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return (noise < self.predict(parents)).to(DTYPE)

    def abduct(self, parents: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        raise NonInvertibleError(
            f"node {self.node!r} has a logistic (binary) mechanism: a unit's noise is not "
            "identified from its value, so counterfactuals that change this node's parents "
            "are not defined; use an additive-noise mechanism or intervene on it directly"
        )

    def state(self) -> dict[str, Any]:
        return {**super().state(), "shift": self.shift, "scale": self.scale, "w": self.weights}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LogisticMechanism:
        mechanism = cls(state["node"], tuple(state["parents"]))
        mechanism.shift, mechanism.scale, mechanism.weights = (
            state["shift"],
            state["scale"],
            state["w"],
        )
        mechanism.fitted = True
        return mechanism


_KINDS: dict[str, type[Mechanism]] = {
    cls.kind: cls
    for cls in (
        EmpiricalRoot,
        PolynomialMechanism,
        MLPMechanism,
        HallPetchMechanism,
        LogisticMechanism,
    )
}


def mechanism_from_state(state: dict[str, Any]) -> Mechanism:
    kind = state.get("kind")
    if kind not in _KINDS:
        raise ConfigError(f"unknown mechanism kind {kind!r}; known: {sorted(_KINDS)}")
    return _KINDS[kind].from_state(state)  # type: ignore[attr-defined]

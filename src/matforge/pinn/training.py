"""The training loop shared by the PINNs: Adam (with schedules, loss re-weighting and
collocation resampling between steps), then L-BFGS with a strong-Wolfe line search."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from matforge.pinn.losses import CompositeLoss, GradientNormWeights


@dataclass
class TrainingHistory:
    """Per-term loss values (unweighted) and weights, every `record_every` Adam steps and
    L-BFGS function evaluations (numbered on from the last Adam step), and at the end."""

    steps: list[int] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    terms: dict[str, list[float]] = field(default_factory=dict)
    weights: dict[str, list[float]] = field(default_factory=dict)

    def record(
        self, step: int, total: float, values: dict[str, float], loss: CompositeLoss
    ) -> None:
        self.steps.append(step)
        self.total.append(total)
        for name, value in values.items():
            self.terms.setdefault(name, []).append(value)
        for name, weight in loss.weights().items():
            self.weights.setdefault(name, []).append(weight)


def check_settings(settings: object) -> None:
    """Range checks shared by the settings dataclasses of the PINN problems; each message
    names the field."""
    positive = ("learning_rate", "width_start", "width_end", "cusp_width", "min_thickness")
    at_least = {"n_layers": 1, "starts": 1, "collocation": 2, "adam_steps": 0, "lbfgs_steps": 0}
    for name in positive:
        value = getattr(settings, name, 1.0)
        if not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    for name, low in at_least.items():
        value = getattr(settings, name, low)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    bounds = getattr(settings, "modulus_bounds", (1.0, 2.0))
    if len(bounds) != 2 or not 0 < bounds[0] < bounds[1]:
        raise ValueError(f"modulus_bounds must be (low, high) with 0 < low < high, got {bounds}")
    if getattr(settings, "data_weight", 1.0) < 0:
        raise ValueError("data_weight must be >= 0")
    hidden = getattr(settings, "hidden", (1,))
    if not hidden or any(not isinstance(h, int) or h < 1 for h in hidden):
        raise ValueError(f"hidden must be a non-empty list of positive layer widths, got {hidden}")


def train(
    parameters: Sequence[torch.Tensor],
    loss: CompositeLoss,
    *,
    adam_steps: int,
    learning_rate: float,
    lbfgs_steps: int,
    before_step: Callable[[int], None] | None = None,
    before_lbfgs: Callable[[], None] | None = None,
    record_every: int = 100,
    progress: Callable[[int], None] | None = None,
) -> TrainingHistory:
    """Minimize `loss` over `parameters`. `before_step(step)` runs before each Adam step
    (width schedules, resampling); `before_lbfgs()` once before L-BFGS (final width)."""
    parameters = list(parameters)
    history = TrainingHistory()
    adam = torch.optim.Adam(parameters, lr=learning_rate)
    for step in range(adam_steps):
        if before_step is not None:
            before_step(step)
        if isinstance(loss.weighting, GradientNormWeights) and step % loss.weighting.every == 0:
            loss.weighting.update(loss.terms, parameters)
        adam.zero_grad()
        total, values = loss.evaluate()
        total.backward()
        adam.step()
        if step % record_every == 0:
            history.record(step, float(total.detach()), values, loss)
        if progress is not None:
            progress(1)
    if before_lbfgs is not None:
        before_lbfgs()
    if lbfgs_steps:
        lbfgs = torch.optim.LBFGS(
            parameters,
            max_iter=lbfgs_steps,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-12,
            tolerance_change=1e-16,
        )

        evaluations = [0]

        def closure() -> torch.Tensor:
            lbfgs.zero_grad()
            total, values = loss.evaluate()
            total.backward()
            if evaluations[0] % record_every == 0:
                history.record(adam_steps + evaluations[0], float(total.detach()), values, loss)
            evaluations[0] += 1
            return total.detach()  # L-BFGS needs only the value

        lbfgs.step(closure)
    total, values = loss.evaluate()
    history.record(
        history.steps[-1] + 1 if history.steps else 0, float(total.detach()), values, loss
    )
    return history

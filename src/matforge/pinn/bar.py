"""Identify the layer moduli and interface positions of a bar from displacement data.

The PINN (dimensionless: positions / L, forces / P, moduli / E_ref, displacements / u_ref
with u_ref = P L / (A E_ref)) has two outputs: the displacement u(x) = x NN_u (the fixed
end u(0) = 0 holds exactly) and the axial force N(x). Loss terms:

- data: mean squared misfit of u at the sensors (relative to the largest |u|), weighted;
- PDE residual in mixed (first-order) form at collocation points: equilibrium
  dN/dx + b = 0 and the constitutive law N - A E(x) du/dx = 0, with E(x) the compliance-
  blended smoothed layered modulus (layers in series), whose width shrinks during training;
- Neumann boundary: N(L) = P.

Interface continuity of displacement and traction is built in: u and N are continuous
network outputs. The network sees, besides x, the cusp features sqrt((x - y_k)^2 + c^2) at
the current interface estimates y_k (a cusp-capturing PINN, after Tseng et al., J. Comput.
Phys. 491 (2023) 112359): the displacement's slope jumps at an interface, which a smooth
network cannot draw without them. Moduli are log-uniform in [bounds], interfaces ordered
with a minimum layer thickness, several starts keep the best final loss. Adam, then L-BFGS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from matforge.pinn.layered import NarrowingWidth, smoothed_modulus
from matforge.pinn.losses import CompositeLoss, FixedWeights, LossTerm
from matforge.pinn.parameters import LogBoxParameter, OrderedInterfaces
from matforge.pinn.training import TrainingHistory, check_settings, train


@dataclass(frozen=True)
class BarSettings:
    n_layers: int = 3
    modulus_bounds: tuple[float, float] = (0.1, 100.0)  # x E_ref
    min_thickness: float = 0.05  # x L
    hidden: tuple[int, ...] = (32, 32)
    collocation: int = 201
    data_weight: float = 100.0
    width_start: float = 0.05  # x L
    width_end: float = 0.005
    cusp_width: float = 0.005
    adam_steps: int = 4000
    learning_rate: float = 3e-3
    lbfgs_steps: int = 2000
    starts: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass
class BarIdentification:
    moduli: np.ndarray  # Pa
    interfaces: np.ndarray  # m
    loss: float
    start_losses: list[float] = field(default_factory=list)
    history: TrainingHistory | None = None


@dataclass
class ClosedFormFit:
    moduli: np.ndarray  # Pa
    interfaces: np.ndarray  # m
    sum_of_squares: float  # m^2
    moduli_std: np.ndarray  # Laplace posterior standard deviations
    interfaces_std: np.ndarray


class _BarPinn(torch.nn.Module):
    def __init__(self, settings: BarSettings, start: int, generator: torch.Generator) -> None:
        super().__init__()
        n = settings.n_layers
        low, high = settings.modulus_bounds
        if start == 0:  # the geometric middle of the bounds, then random starts
            initial = torch.full((n,), float(np.sqrt(low * high)), dtype=torch.float64)
        else:
            logs = torch.empty(n, dtype=torch.float64).uniform_(
                float(np.log(low)) + 0.5, float(np.log(high)) - 0.5, generator=generator
            )
            initial = torch.exp(logs)
        self.moduli = LogBoxParameter("moduli", low, high, initial)
        self.interfaces = OrderedInterfaces("interfaces", n, 1.0, settings.min_thickness)
        layers: list[torch.nn.Module] = []
        width = 1 + (n - 1)
        for h in settings.hidden:
            layers += [torch.nn.Linear(width, h, dtype=torch.float64), torch.nn.Tanh()]
            width = h
        layers.append(torch.nn.Linear(width, 2, dtype=torch.float64))
        self.net = torch.nn.Sequential(*layers)
        self.cusp = settings.cusp_width

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.interfaces()
        cusp = torch.sqrt((x[:, None] - y) ** 2 + self.cusp**2)
        out = self.net(torch.cat([x[:, None], cusp], dim=1))
        return x * out[:, 0], out[:, 1]


def _train_start(
    settings: BarSettings,
    start: int,
    collocation: torch.Tensor,
    data: tuple[torch.Tensor, torch.Tensor],
    body_force: float,
) -> tuple[_BarPinn, TrainingHistory]:
    """One start: a fresh network and parameters, trained on the data and the physics."""
    xs, us = data
    scale = us.abs().max()
    generator = torch.Generator().manual_seed(settings.seed * 1000 + start)
    torch.manual_seed(settings.seed * 1000 + start)
    model = _BarPinn(settings, start, generator)
    width = NarrowingWidth(settings.width_start, settings.width_end, settings.adam_steps)

    def residuals() -> torch.Tensor:
        x = collocation.clone().requires_grad_(True)
        u, force = model(x)
        (du,) = torch.autograd.grad(u.sum(), x, create_graph=True)
        (dforce,) = torch.autograd.grad(force.sum(), x, create_graph=True)
        modulus = smoothed_modulus(x, model.moduli(), model.interfaces(), width.value, "compliance")
        return torch.stack([dforce + body_force, force - modulus * du])  # equilibrium, constitutive

    def misfit() -> torch.Tensor:
        return (model(xs)[0] - us) / scale

    def end_force() -> torch.Tensor:
        return model(torch.ones(1, dtype=torch.float64))[1] - 1.0

    loss = CompositeLoss(
        [
            LossTerm("data", "data", misfit, settings.data_weight),
            # x 2: the sum of the two residuals' mean squares, as they were designed
            LossTerm("pde", "pde", residuals, 2.0),
            LossTerm("end_force", "neumann", end_force),
        ],
        FixedWeights(),
    )
    history = train(
        list(model.parameters()),
        loss,
        adam_steps=settings.adam_steps,
        learning_rate=settings.learning_rate,
        lbfgs_steps=settings.lbfgs_steps,
        before_step=width.at_step,
        before_lbfgs=width.finish,
    )
    return model, history


def identify_bar(
    positions: np.ndarray,
    displacements: np.ndarray,
    *,
    length: float,
    area: float,
    end_force: float,
    body_force: float = 0.0,
    reference_modulus: float = 1e9,
    settings: BarSettings = BarSettings(),
) -> BarIdentification:
    """Moduli and interfaces of an n-layer bar (fixed at 0, force at L) from u at sensors."""
    u_ref = end_force * length / (area * reference_modulus)
    xs = torch.as_tensor(np.asarray(positions) / length, dtype=torch.float64)
    us = torch.as_tensor(np.asarray(displacements) / u_ref, dtype=torch.float64)
    b = body_force * length / end_force
    collocation = torch.linspace(0.0, 1.0, settings.collocation, dtype=torch.float64)
    best: BarIdentification | None = None
    losses = []
    for start in range(settings.starts):
        model, history = _train_start(settings, start, collocation, (xs, us), b)
        final = history.total[-1]
        losses.append(final)
        if best is None or final < best.loss:
            with torch.no_grad():
                best = BarIdentification(
                    model.moduli().numpy() * reference_modulus,
                    model.interfaces().numpy() * length,
                    final,
                    history=history,
                )
    assert best is not None
    best.start_losses = losses
    return best


def fit_closed_form(
    positions: np.ndarray,
    displacements: np.ndarray,
    *,
    n_layers: int,
    length: float,
    area: float,
    end_force: float,
    body_force: float = 0.0,
    reference_modulus: float = 1e9,
    starts: int = 20,
    seed: int = 0,
) -> ClosedFormFit:
    """The best a fit can do: nonlinear least squares of the exact closed-form solution
    (`LayeredBar`) to the same data, from `starts` random starts (scipy, trust region),
    with the Laplace (Gauss-Newton) posterior spread of each parameter: the covariance
    s^2 (J^T J)^-1 at the optimum, s^2 the residual variance, in log-moduli and interface
    positions, reported as standard deviations in Pa and m."""
    import scipy.optimize

    x = np.asarray(positions, dtype=float)
    observed = np.asarray(displacements, dtype=float)
    u_ref = end_force * length / (area * reference_modulus)

    def primitive(s: np.ndarray) -> np.ndarray:  # integral_0^s N, as in LayeredBar
        return end_force * s + body_force * (length * s - 0.5 * s**2)

    def residual(p: np.ndarray) -> np.ndarray:
        moduli = np.exp(p[:n_layers]) * reference_modulus
        edges = np.concatenate([[0.0], np.sort(p[n_layers:]) * length, [length]])
        if (np.diff(edges) <= 0).any():
            return np.full(len(observed), 1e3)
        u = sum(
            (primitive(np.clip(x, lo, hi)) - primitive(lo)) / (area * e)
            for lo, hi, e in zip(edges[:-1], edges[1:], moduli, strict=True)
        )
        return (u - observed) / u_ref

    rng = np.random.default_rng(seed)
    best = None
    for _ in range(starts):
        p0 = np.concatenate(
            [
                np.log(rng.uniform(0.5, 8.0, n_layers)),
                np.sort(rng.uniform(0.05, 0.95, n_layers - 1)),
            ]
        )
        result = scipy.optimize.least_squares(residual, p0, diff_step=1e-6)
        if best is None or result.cost < best.cost:
            best = result
    assert best is not None
    moduli = np.exp(best.x[:n_layers]) * reference_modulus
    dof = max(len(observed) - len(best.x), 1)
    variance = 2 * best.cost / dof
    covariance = variance * np.linalg.pinv(best.jac.T @ best.jac)
    std = np.sqrt(np.clip(np.diag(covariance), 0, None))
    order = np.argsort(best.x[n_layers:])
    return ClosedFormFit(
        moduli,
        best.x[n_layers:][order] * length,
        float(2 * best.cost) * u_ref**2,
        moduli * std[:n_layers],
        std[n_layers:][order] * length,
    )

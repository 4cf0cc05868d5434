"""The 2D problem: a plate of n layers through its thickness in plane strain.

Geometry and loads as in `fem.LayeredPlate`: [0, W] x [0, H], rollers on x = 0 (u_x = 0)
and y = 0 (u_y = 0), x = W free or on a roller, normal traction t (1 + a cos(pi x / W)) on
y = H. Dimensionless variables: lengths / H, moduli / E_ref, stresses / |t|,
displacements / (|t| H / E_ref).

The network (mixed form) outputs u_x, u_y and the two traction components on horizontal
planes, sigma_yy and sigma_xy, which are continuous across the interfaces; sigma_xx, which
jumps there, follows from the constitutive law. Most boundary conditions hold exactly by
construction: u_x = x a_x (x (W - x) a_x with a roller at W), u_y = y a_y,
sigma_yy = t(x) + (H - y) s, sigma_xy = x (W - x) y (H - y) s' (no shear on any face).
Loss terms:

- data: displacement misfit at the sensors (relative to the largest |u|);
- PDE (at collocation points, resampled by residual): equilibrium div sigma = 0, and the
  compliance form of the constitutive law for the horizontal-plane tractions,
  E eps_yy = (1 + nu)((1 - nu) sigma_yy - nu sigma_xx), E gamma_xy = 2 (1 + nu) sigma_xy;
- Neumann: sigma_xx = 0 on the free edge x = W (forward problem). With data, the PDE is
  not enforced in a strip of width `free_edge_margin` along a free edge, where the
  interfaces meet it in a stress singularity; the data carry the field there;
- interface (optional): continuity of the traction computed from the displacement
  gradient with the sharp moduli on either side of each interface.

The smoothed modulus enters twice, with two blending rules: sigma_xx =
E eps_xx / (1 - nu^2) + nu sigma_yy / (1 - nu) sees the layers side by side (in parallel:
blend E), the vertical and shear compliances see them stacked (in series: blend 1/E).
Displacements have kinks at the interfaces; the network gets the cusp features
sqrt((y - y_k)^2 + c^2) at the current interface estimates, as in the 1D problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from matforge.pinn.layered import NarrowingWidth, check_layers, smoothed_modulus
from matforge.pinn.losses import (
    CompositeLoss,
    FixedWeights,
    GradientNormWeights,
    LossTerm,
    interface_jump,
)
from matforge.pinn.parameters import LogBoxParameter, OrderedInterfaces
from matforge.pinn.sampling import Box, resample_by_residual
from matforge.pinn.training import TrainingHistory, check_settings, train


@dataclass(frozen=True)
class PlateSettings:
    n_layers: int = 3
    modulus_bounds: tuple[float, float] = (0.02, 50.0)  # x E_ref
    min_thickness: float = 0.05  # x H
    hidden: tuple[int, ...] = (40, 40, 40)
    collocation: int = 1000
    edge_points: int = 100
    # With data, no PDE collocation within this distance (x H) of a free edge: where the
    # interfaces meet a free edge the stresses are singular, the strong form cannot hold
    # there, and enforcing it biases the moduli (17.6% -> 1.0% on the benchmark plate).
    free_edge_margin: float = 0.2
    data_weight: float = 100.0
    interface_weight: float = 0.0
    weighting: Literal["fixed", "gradient-norm"] = "fixed"
    width_start: float = 0.05  # x H
    width_end: float = 0.005
    cusp_width: float = 0.005
    adam_steps: int = 2000
    learning_rate: float = 2e-3
    lbfgs_steps: int = 500
    resample_every: int = 1000  # 0: keep the first random draw
    candidates: int = 20000
    starts: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_settings(self)
        if self.weighting not in ("fixed", "gradient-norm"):
            raise ValueError(
                f"weighting must be 'fixed' or 'gradient-norm', got {self.weighting!r}"
            )
        if self.free_edge_margin < 0:
            raise ValueError(f"free_edge_margin must be >= 0, got {self.free_edge_margin}")


@dataclass(frozen=True)
class PlateLoading:
    """What is known of the experiment: geometry, load, supports and Poisson ratio."""

    width: float = 2.0
    height: float = 1.0
    traction: float = -1.0  # mean t_y on y = H
    poisson: float = 0.3
    load_variation: float = 0.0  # t_y(x) = traction (1 + load_variation cos(pi x / W))
    right_edge: Literal["free", "roller"] = "free"

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.traction == 0:
            raise ValueError("width and height must be positive and the traction non-zero")
        if not 0 <= self.poisson < 0.5:
            raise ValueError(f"poisson must lie in [0, 0.5), got {self.poisson}")
        if self.right_edge not in ("free", "roller"):
            raise ValueError(f"right_edge must be 'free' or 'roller', got {self.right_edge!r}")

    @classmethod
    def of(cls, plate: object) -> PlateLoading:
        """The loading of a `fem.LayeredPlate` (its moduli and interfaces left out)."""
        names = ("width", "height", "traction", "poisson", "load_variation", "right_edge")
        return cls(**{name: getattr(plate, name) for name in names})


@dataclass
class PlateIdentification:
    moduli: np.ndarray  # in the units of the data (traction units)
    interfaces: np.ndarray  # in length units
    loss: float
    start_losses: list[float] = field(default_factory=list)
    history: TrainingHistory | None = None
    predict: Callable[[np.ndarray], np.ndarray] | None = None  # displacements at points


class _PlatePinn(torch.nn.Module):
    def __init__(
        self,
        settings: PlateSettings,
        loading: PlateLoading,
        moduli: torch.Tensor | LogBoxParameter,
        interfaces: torch.Tensor | OrderedInterfaces,
    ) -> None:
        super().__init__()
        self.aspect = loading.width / loading.height
        self.right_roller = loading.right_edge == "roller"
        self.variation = loading.load_variation
        self.moduli_source, self.interfaces_source = moduli, interfaces
        if isinstance(moduli, torch.nn.Module):
            self.add_module("moduli_parameter", moduli)
        if isinstance(interfaces, torch.nn.Module):
            self.add_module("interfaces_parameter", interfaces)
        layers: list[torch.nn.Module] = []
        width = 2 + settings.n_layers - 1
        for h in settings.hidden:
            layers += [torch.nn.Linear(width, h, dtype=torch.float64), torch.nn.Tanh()]
            width = h
        layers.append(torch.nn.Linear(width, 4, dtype=torch.float64))
        self.net = torch.nn.Sequential(*layers)
        self.cusp = settings.cusp_width

    def moduli(self) -> torch.Tensor:
        m = self.moduli_source
        return m() if isinstance(m, torch.nn.Module) else m

    def interfaces(self) -> torch.Tensor:
        i = self.interfaces_source
        return i() if isinstance(i, torch.nn.Module) else i

    def forward(self, points: torch.Tensor, traction: float) -> tuple[torch.Tensor, ...]:
        x, y = points[:, 0], points[:, 1]
        cusp = torch.sqrt((y[:, None] - self.interfaces()) ** 2 + self.cusp**2)
        features = torch.cat([(2 * x / self.aspect - 1)[:, None], (2 * y - 1)[:, None], cusp], 1)
        out = self.net(features)
        ux = x * (self.aspect - x) * out[:, 0] if self.right_roller else x * out[:, 0]
        uy = y * out[:, 1]
        top = traction * (1 + self.variation * torch.cos(torch.pi * x / self.aspect))
        syy = top + (1 - y) * out[:, 2]
        sxy = x * (self.aspect - x) * y * (1 - y) * out[:, 3]
        return ux, uy, syy, sxy


def _grad(value: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    (g,) = torch.autograd.grad(value.sum(), points, create_graph=True)
    return g


@dataclass
class _Physics:
    model: _PlatePinn
    poisson: float
    traction: float
    width: NarrowingWidth

    def stresses(self, points: torch.Tensor) -> dict[str, torch.Tensor]:
        nu = self.poisson
        points = points.detach().requires_grad_(True)
        ux, uy, syy, sxy = self.model(points, self.traction)
        gx, gy = _grad(ux, points), _grad(uy, points)
        moduli, interfaces = self.model.moduli(), self.model.interfaces()
        y = points[:, 1]
        parallel = smoothed_modulus(y, moduli, interfaces, self.width.value, "modulus")
        series = smoothed_modulus(y, moduli, interfaces, self.width.value, "compliance")
        sxx = parallel / (1 - nu**2) * gx[:, 0] + nu / (1 - nu) * syy
        return {
            "points": points,
            "sxx": sxx,
            "syy": syy,
            "sxy": sxy,
            "exx": gx[:, 0],
            "eyy": gy[:, 1],
            "gxy": gx[:, 1] + gy[:, 0],
            "series": series,
        }

    def pde(self, points: torch.Tensor) -> torch.Tensor:
        """(m, 4): two equilibrium and two constitutive residuals."""
        nu = self.poisson
        s = self.stresses(points)
        p = s["points"]
        dsxx, dsyy, dsxy = _grad(s["sxx"], p), _grad(s["syy"], p), _grad(s["sxy"], p)
        return torch.stack(
            [
                dsxx[:, 0] + dsxy[:, 1],
                dsxy[:, 0] + dsyy[:, 1],
                s["series"] * s["eyy"] - (1 + nu) * ((1 - nu) * s["syy"] - nu * s["sxx"]),
                s["series"] * s["gxy"] - 2 * (1 + nu) * s["sxy"],
            ],
            dim=1,
        )

    def sharp_traction(self, points: torch.Tensor, modulus: torch.Tensor) -> torch.Tensor:
        """(m, 2): sigma_yy and sigma_xy from the displacement gradient with modulus E."""
        nu = self.poisson
        s = self.stresses(points)
        lame = modulus / ((1 + nu) * (1 - 2 * nu))
        syy = lame * ((1 - nu) * s["eyy"] + nu * s["exx"])
        sxy = modulus / (2 * (1 + nu)) * s["gxy"]
        return torch.stack([syy, sxy], dim=1)


def _fit(
    settings: PlateSettings,
    loading: PlateLoading,
    moduli: torch.Tensor | LogBoxParameter,
    interfaces: torch.Tensor | OrderedInterfaces,
    data: tuple[torch.Tensor, torch.Tensor] | None,
    generator: torch.Generator,
) -> tuple[_PlatePinn, TrainingHistory]:
    model = _PlatePinn(settings, loading, moduli, interfaces)
    traction = float(np.sign(loading.traction))
    width = NarrowingWidth(settings.width_start, settings.width_end, settings.adam_steps)
    physics = _Physics(model, loading.poisson, traction, width)
    aspect = model.aspect
    margin = settings.free_edge_margin if data is not None and loading.right_edge == "free" else 0
    if margin >= aspect:
        raise ValueError(f"free_edge_margin {margin} leaves no room in a plate of width {aspect} H")
    box = Box((0.0, 0.0), (aspect - margin, 1.0))
    state = {
        "collocation": box.random(settings.collocation, generator),
        "edge": box.face(0, "high", settings.edge_points, generator),
    }
    terms = [LossTerm("pde", "pde", lambda: physics.pde(state["collocation"]))]
    if loading.right_edge == "free" and margin == 0:  # else the edge lies outside the PDE region
        terms.append(
            LossTerm("free_edge", "neumann", lambda: physics.stresses(state["edge"])["sxx"])
        )
    if data is not None:
        points, observed = data
        scale = observed.abs().max()

        def misfit() -> torch.Tensor:
            ux, uy, _, _ = model(points, traction)
            return (torch.stack([ux, uy], 1) - observed) / scale

        terms.insert(0, LossTerm("data", "data", misfit, settings.data_weight))
    if settings.interface_weight > 0:
        offset = 3 * max(settings.cusp_width, settings.width_end)
        xs = torch.linspace(0.0, aspect, 41, dtype=torch.float64)[1:-1]
        up = torch.tensor([0.0, 1.0], dtype=torch.float64)
        jumps = []
        for k in range(settings.n_layers - 1):

            def on_interface(k: int = k) -> torch.Tensor:
                return torch.stack([xs, model.interfaces()[k].expand_as(xs)], 1)

            def below(p: torch.Tensor, k: int = k) -> torch.Tensor:
                return physics.sharp_traction(p, model.moduli()[k])

            def above(p: torch.Tensor, k: int = k) -> torch.Tensor:
                return physics.sharp_traction(p, model.moduli()[k + 1])

            jumps.append(interface_jump(below, on_interface, up, offset, field_above=above))

        def jump() -> torch.Tensor:
            return torch.cat([j() for j in jumps])

        terms.append(LossTerm("interface", "interface", jump, settings.interface_weight))
    weighting = GradientNormWeights() if settings.weighting == "gradient-norm" else FixedWeights()
    loss = CompositeLoss(terms, weighting)

    def before_step(step: int) -> None:
        width.at_step(step)
        if settings.resample_every and step and step % settings.resample_every == 0:
            pool = box.random(settings.candidates, generator)
            state["collocation"] = resample_by_residual(
                pool,
                lambda p: (physics.pde(p) ** 2).sum(1),
                settings.collocation,
                generator=generator,
            )

    history = train(
        list(model.parameters()),
        loss,
        adam_steps=settings.adam_steps,
        learning_rate=settings.learning_rate,
        lbfgs_steps=settings.lbfgs_steps,
        before_step=before_step,
        before_lbfgs=width.finish,
    )
    return model, history


def _predictor(
    model: _PlatePinn, loading: PlateLoading, u_ref: float
) -> Callable[[np.ndarray], np.ndarray]:
    def predict(points: np.ndarray) -> np.ndarray:
        p = torch.as_tensor(np.asarray(points, dtype=float) / loading.height)
        with torch.no_grad():
            ux, uy, _, _ = model(p, float(np.sign(loading.traction)))
        return torch.stack([ux, uy], 1).numpy() * u_ref

    return predict


def solve_plate_pinn(
    moduli: np.ndarray,
    interfaces: np.ndarray,
    loading: PlateLoading,
    settings: PlateSettings = PlateSettings(),
) -> PlateIdentification:
    """The forward problem: train the PINN with the layers known (no data term)."""
    check_layers(list(moduli), list(interfaces), loading.height)
    reference = float(np.max(moduli))
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    model, history = _fit(
        settings,
        loading,
        torch.as_tensor(np.asarray(moduli, dtype=float) / reference),
        torch.as_tensor(np.asarray(interfaces, dtype=float) / loading.height),
        None,
        generator,
    )
    u_ref = abs(loading.traction) * loading.height / reference
    return PlateIdentification(
        np.asarray(moduli, dtype=float),
        np.asarray(interfaces, dtype=float),
        history.total[-1],
        [history.total[-1]],
        history,
        _predictor(model, loading, u_ref),
    )


def identify_plate(
    points: np.ndarray,
    displacements: np.ndarray,
    loading: PlateLoading,
    *,
    reference_modulus: float | None = None,
    settings: PlateSettings = PlateSettings(),
) -> PlateIdentification:
    """Layer moduli and interface heights of the plate from displacements (N, 2) at
    points (N, 2). E_ref defaults to the apparent modulus |t| H / max |u|; the modulus
    bounds of the settings are relative to it."""
    points = np.asarray(points, dtype=float)
    displacements = np.asarray(displacements, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2 or displacements.shape != points.shape:
        raise ValueError(
            f"points and displacements must both be (N, 2), got {points.shape} and "
            f"{displacements.shape}"
        )
    height = loading.height
    if reference_modulus is None:
        reference_modulus = abs(loading.traction) * height / float(np.abs(displacements).max())
    u_ref = abs(loading.traction) * height / reference_modulus
    data = (torch.as_tensor(points / height), torch.as_tensor(displacements / u_ref))
    low, high = settings.modulus_bounds
    best: PlateIdentification | None = None
    losses = []
    for start in range(settings.starts):
        seed = settings.seed * 1000 + start
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        if start == 0:  # the apparent modulus for every layer, then random starts
            initial = torch.ones(settings.n_layers, dtype=torch.float64)
        else:
            initial = torch.exp(
                torch.empty(settings.n_layers, dtype=torch.float64).uniform_(
                    -1.5, 1.5, generator=generator
                )
            )
        initial = initial.clamp(low * 1.01, high * 0.99)
        moduli = LogBoxParameter("moduli", low, high, initial)
        interfaces = OrderedInterfaces("interfaces", settings.n_layers, 1.0, settings.min_thickness)
        model, history = _fit(settings, loading, moduli, interfaces, data, generator)
        loss = history.total[-1]
        losses.append(loss)
        if best is None or loss < best.loss:
            with torch.no_grad():
                best = PlateIdentification(
                    model.moduli().numpy() * reference_modulus,
                    model.interfaces().numpy() * height,
                    loss,
                    history=history,
                    predict=_predictor(model, loading, u_ref),
                )
    assert best is not None
    best.start_losses = losses
    return best

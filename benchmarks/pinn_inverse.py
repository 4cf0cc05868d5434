"""PINN identification of layer moduli and interfaces: matforge beside DeepXDE.

1D: a 3-layer bar (moduli 2, 5, 1 GPa; interfaces 0.3, 0.65 m; L = 1 m, A = 1e-4 m^2,
end force 1 kN, body force 500 N/m), displacements at 50 sensors from the closed form,
noise-free and with 1% noise. Solved by

- matforge (`identify_bar`: mixed form, cusp features, width schedule, bounded moduli,
  ordered interfaces, Adam then L-BFGS);
- DeepXDE (pytorch backend) on the same data and the same nondimensionalization, written
  the way its inverse-problem examples are: u from a plain tanh network, the PDE
  d/dx(E(x) du/dx) + b = 0 with the compliance-blended sigmoid modulus at a fixed width
  (--deepxde-width, default 0.02 L: on the noise-free data 0.005 gave 107% / 12%, 0.02
  48% / 24%, 0.05 1881% / 6% max modulus / interface errors), Dirichlet u(0) = 0, the end
  force as an operator condition, the data as a point-set condition, and matforge's
  bounded, ordered parameterization of the moduli and interfaces written on DeepXDE's
  external trainable variables; Adam then L-BFGS with the same step counts and weights;
- DeepXDE with matforge's own formulation, everything DeepXDE can express: the mixed form
  (outputs u and N, u = x NN_u by an output transform so u(0) = 0 exactly, residuals
  N' + b and N - E u'), the cusp features sqrt((x - y_k)^2 + c^2) at the current
  interfaces as a feature transform, the smoothing width narrowing 0.05 -> 0.005 L over
  the Adam steps (a callback) and held for L-BFGS, the end force N(1) = P, 201 uniform
  collocation points, the same network size, weights, step counts and parameterization.
  What still differs: DeepXDE's own training loop and L-BFGS wrapper, its Glorot-normal
  initialization, and the random draws;
- the closed-form nonlinear least-squares fit (the best achievable estimate).

2D: a 3-layer plate in plane strain (moduli 1, 3, 0.5; interfaces 0.3, 0.65 of H = 1;
W = 2; rollers at x = 0, W and y = 0; top traction -(1 + 0.5 cos(pi x / W))), 200
noise-free sensors from scikit-fem P2 finite elements: matforge's identification, and the
forward PINN with the layers known against the FEM field (relative L2 on a 60 x 60 grid).
The same for the plate with a free edge at x = W and a uniform load, whose interfaces meet
the free edge in a stress singularity: the identification leaves the PDE out of a strip
0.2 H wide along that edge (`free_edge_margin`); the forward problem cannot (no data).

    .venv/bin/python benchmarks/pinn_inverse.py        # about 4.5 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from matforge.pinn import BarSettings, LayeredBar, fit_closed_form, identify_bar
from matforge.pinn.fem import LayeredPlate, solve_plate
from matforge.pinn.plate import PlateLoading, PlateSettings, identify_plate, solve_plate_pinn

MODULI = np.array([2.0e9, 5.0e9, 1.0e9])
INTERFACES = np.array([0.3, 0.65])
GEOMETRY = {"length": 1.0, "area": 1e-4, "end_force": 1e3, "body_force": 500.0}
SENSORS = np.linspace(0.0, 1.0, 51)[1:]
E_REF = 1e9


def errors_pct(moduli, interfaces, true_moduli, true_interfaces, extent=1.0):
    return (
        float(100 * np.abs(np.asarray(moduli) / true_moduli - 1).max()),
        float(100 * np.abs((np.asarray(interfaces) - true_interfaces) / extent).max()),
    )


class _DeepXDELayers:
    """The layers' unknowns as DeepXDE external variables, with matforge's bounded, ordered
    parameterization (log-uniform moduli in [0.1, 100] E_ref, interfaces from softmax
    thicknesses of at least min_thickness): without it DeepXDE's moduli run off (a layer
    stiffens without bound and vanishes). Also sets DeepXDE up (float64, seed)."""

    def __init__(self, settings: BarSettings) -> None:
        os.environ.setdefault("DDE_BACKEND", "pytorch")
        import deepxde as dde

        dde.config.set_default_float("float64")
        dde.config.set_random_seed(settings.seed)
        self.settings = settings
        self.raw_moduli = [dde.Variable(0.0) for _ in range(3)]
        self.raw_thickness = [dde.Variable(0.0) for _ in range(3)]
        self.variables = [*self.raw_moduli, *self.raw_thickness]

    def moduli_and_interfaces(self) -> tuple[torch.Tensor, torch.Tensor]:
        low, high = self.settings.modulus_bounds
        moduli = low * (high / low) ** torch.sigmoid(torch.stack(self.raw_moduli))
        free = 1.0 - 3 * self.settings.min_thickness
        thickness = self.settings.min_thickness + free * torch.softmax(
            torch.stack(self.raw_thickness), 0
        )
        return moduli, torch.cumsum(thickness, 0)[:-1]

    def modulus(self, x: torch.Tensor, width: float) -> torch.Tensor:
        """The compliance-blended sigmoid modulus (series layers), (N, 1)."""
        moduli, interfaces = self.moduli_and_interfaces()
        steps = torch.sigmoid((x - interfaces) / width)  # (N, 2)
        compliance = 1 / moduli
        return 1 / (
            compliance[0] + (steps * (compliance[1:] - compliance[:-1])).sum(1, keepdim=True)
        )

    def train(
        self, model: object, weights: list[float], callbacks: list = (), before_lbfgs=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Adam then L-BFGS with matforge's step counts; the moduli (Pa) and interfaces (m)."""
        import deepxde as dde

        settings = self.settings
        model.compile(
            "adam",
            lr=settings.learning_rate,
            external_trainable_variables=self.variables,
            loss_weights=weights,
        )
        model.train(
            iterations=settings.adam_steps,
            display_every=10**9,
            verbose=0,
            callbacks=list(callbacks),
        )
        if before_lbfgs is not None:
            before_lbfgs()
        dde.optimizers.set_LBFGS_options(maxiter=settings.lbfgs_steps)
        model.compile("L-BFGS", external_trainable_variables=self.variables, loss_weights=weights)
        model.train(display_every=10**9, verbose=0)
        with torch.no_grad():
            moduli, interfaces = self.moduli_and_interfaces()
        return moduli.numpy() * E_REF, interfaces.numpy() * GEOMETRY["length"]


def deepxde_bar(
    observed: np.ndarray, settings: BarSettings, width: float
) -> tuple[np.ndarray, np.ndarray]:
    layers = _DeepXDELayers(settings)
    import deepxde as dde

    u_ref = GEOMETRY["end_force"] * GEOMETRY["length"] / (GEOMETRY["area"] * E_REF)
    b = GEOMETRY["body_force"] * GEOMETRY["length"] / GEOMETRY["end_force"]

    def modulus(x):
        return layers.modulus(x, width)

    def pde(x, u):
        du = dde.grad.jacobian(u, x)
        flux = modulus(x) * du
        (dflux,) = torch.autograd.grad(flux.sum(), x, create_graph=True)
        return dflux + b

    def end_force(x, u, _):
        return modulus(x) * dde.grad.jacobian(u, x) - 1.0

    domain = dde.geometry.Interval(0.0, 1.0)
    conditions = [
        dde.icbc.DirichletBC(domain, lambda x: 0.0, lambda x, on: on and np.isclose(x[0], 0.0)),
        dde.icbc.OperatorBC(domain, end_force, lambda x, on: on and np.isclose(x[0], 1.0)),
        dde.icbc.PointSetBC(SENSORS[:, None], (observed / u_ref)[:, None]),
    ]
    data = dde.data.PDE(
        domain, pde, conditions, num_domain=settings.collocation - 2, num_boundary=2
    )
    net = dde.nn.FNN([1, *settings.hidden, 1], "tanh", "Glorot normal")
    return layers.train(dde.Model(data, net), [1.0, 1.0, 1.0, settings.data_weight])


def deepxde_bar_mixed(observed: np.ndarray, settings: BarSettings) -> tuple[np.ndarray, np.ndarray]:
    """DeepXDE on matforge's formulation (module docstring: what still differs)."""
    layers = _DeepXDELayers(settings)
    import deepxde as dde

    from matforge.pinn.layered import NarrowingWidth

    u_ref = GEOMETRY["end_force"] * GEOMETRY["length"] / (GEOMETRY["area"] * E_REF)
    b = GEOMETRY["body_force"] * GEOMETRY["length"] / GEOMETRY["end_force"]
    width = NarrowingWidth(settings.width_start, settings.width_end, settings.adam_steps)

    def modulus(x):
        return layers.modulus(x, width.value)

    def pde(x, y):
        du = dde.grad.jacobian(y, x, i=0)
        dforce = dde.grad.jacobian(y, x, i=1)
        return [dforce + b, y[:, 1:2] - modulus(x) * du]

    def end_force(x, y, _):
        return y[:, 1:2] - 1.0

    class Narrowing(dde.callbacks.Callback):
        def on_epoch_begin(self):  # type: ignore[no-untyped-def]
            width.at_step(self.model.train_state.step)

    domain = dde.geometry.Interval(0.0, 1.0)
    conditions = [
        dde.icbc.OperatorBC(domain, end_force, lambda x, on: on and np.isclose(x[0], 1.0)),
        dde.icbc.PointSetBC(SENSORS[:, None], (observed / u_ref)[:, None], component=0),
    ]
    data = dde.data.PDE(
        domain,
        pde,
        conditions,
        num_domain=settings.collocation - 2,
        num_boundary=2,
        train_distribution="uniform",
    )
    net = dde.nn.FNN([3, *settings.hidden, 2], "tanh", "Glorot normal")

    def cusp_features(x):
        _, interfaces = layers.moduli_and_interfaces()
        cusp = torch.sqrt((x - interfaces) ** 2 + settings.cusp_width**2)
        return torch.cat([x, cusp], dim=1)

    net.apply_feature_transform(cusp_features)
    net.apply_output_transform(lambda x, y: torch.cat([x * y[:, :1], y[:, 1:]], dim=1))
    weights = [1.0, 1.0, 1.0, settings.data_weight]
    return layers.train(dde.Model(data, net), weights, [Narrowing()], width.finish)


def run_bar(noise: float, with_deepxde: bool, width: float) -> dict:
    bar = LayeredBar(tuple(MODULI), tuple(INTERFACES), **GEOMETRY)
    clean = bar.displacement(torch.tensor(SENSORS, dtype=torch.float64)).numpy()
    rng = np.random.default_rng(0)
    observed = clean + noise * np.abs(clean).max() * rng.standard_normal(len(SENSORS))
    settings = BarSettings()
    begin = time.perf_counter()
    found = identify_bar(SENSORS, observed, **GEOMETRY, settings=settings)
    ours = time.perf_counter() - begin
    row = {"matforge": (*errors_pct(found.moduli, found.interfaces, MODULI, INTERFACES), ours)}
    begin = time.perf_counter()
    ref = fit_closed_form(SENSORS, observed, n_layers=3, **GEOMETRY)
    row["closed-form NLS"] = (
        *errors_pct(ref.moduli, ref.interfaces, MODULI, INTERFACES),
        time.perf_counter() - begin,
    )
    if with_deepxde:
        begin = time.perf_counter()
        moduli, interfaces = deepxde_bar(observed, settings, width)
        row["DeepXDE"] = (
            *errors_pct(moduli, interfaces, MODULI, INTERFACES),
            time.perf_counter() - begin,
        )
        begin = time.perf_counter()
        moduli, interfaces = deepxde_bar_mixed(observed, settings)
        row["DeepXDE mixed"] = (
            *errors_pct(moduli, interfaces, MODULI, INTERFACES),
            time.perf_counter() - begin,
        )
    return row


def run_plate(free_edge: bool) -> dict:
    extra = {} if free_edge else {"load_variation": 0.5, "right_edge": "roller"}
    plate = LayeredPlate((1.0, 3.0, 0.5), (0.3, 0.65), width=2.0, height=1.0, **extra)
    loading = PlateLoading.of(plate)
    fem = solve_plate(plate)
    rng = np.random.default_rng(1)
    sensors = np.column_stack([rng.uniform(0, 2, 200), rng.uniform(0, 1, 200)])
    grid = np.stack(
        np.meshgrid(np.linspace(0.01, 1.99, 60), np.linspace(0.01, 0.99, 60)), -1
    ).reshape(-1, 2)
    truth = fem.at(grid)
    settings = PlateSettings()
    begin = time.perf_counter()
    found = identify_plate(sensors, fem.at(sensors), loading, settings=settings)
    inverse = time.perf_counter() - begin
    begin = time.perf_counter()
    forward = solve_plate_pinn(
        np.array(plate.moduli), np.array(plate.interfaces), loading, settings
    )
    forward_seconds = time.perf_counter() - begin
    rel = float(np.linalg.norm(forward.predict(grid) - truth) / np.linalg.norm(truth))
    m, i = errors_pct(
        found.moduli, found.interfaces, np.array(plate.moduli), np.array(plate.interfaces)
    )
    return {
        "moduli": m,
        "interfaces": i,
        "seconds": inverse,
        "forward_rel_l2": rel,
        "forward_seconds": forward_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-deepxde", action="store_true", help="skip the DeepXDE runs")
    parser.add_argument("--deepxde-width", type=float, default=0.02, help="x L")
    parser.add_argument("--only-1d", action="store_true", help="the bar only (no plate)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with_deepxde = not args.no_deepxde
    if with_deepxde:
        try:
            os.environ.setdefault("DDE_BACKEND", "pytorch")
            import deepxde  # noqa: F401
        except ImportError:
            print("DeepXDE not installed (pip install 'matforge[benchmark]'): skipping it")
            with_deepxde = False
    begin = time.perf_counter()
    print("1D bar, 3 layers, 50 sensors: max error of moduli (%) and interfaces (% of L)")
    print(
        "(DeepXDE: its inverse-example form, primal u, fixed width; DeepXDE mixed: "
        "matforge's formulation in DeepXDE, see the docstring for what still differs)"
    )
    print(
        f"{'noise':>6} {'solver':<16} {'moduli %':>9} {'interf. %':>9} {'seconds':>8} "
        f"{'time ratio':>10}"
    )
    bars = {}
    for noise in (0.0, 0.01):
        bars[noise] = run_bar(noise, with_deepxde, args.deepxde_width)
        for name, (m, i, s) in bars[noise].items():
            ratio = s / bars[noise]["matforge"][2]
            print(f"{noise:>6.0%} {name:<16} {m:>9.3f} {i:>9.3f} {s:>8.1f} {ratio:>10.2f}")
    if args.only_1d:
        ours = bars[0.0]["matforge"]
        benchmark = {"moduli_err_pct_1d": ours[0], "interface_err_pct_1d": ours[1]}
        if with_deepxde:
            for key, name in (("deepxde", "DeepXDE"), ("deepxde_mixed", "DeepXDE mixed")):
                for noise, suffix in ((0.0, ""), (0.01, "_noise1")):
                    m, i, s = bars[noise][name]
                    benchmark[f"{key}_moduli_err_pct_1d{suffix}"] = m
                    benchmark[f"{key}_interface_err_pct_1d{suffix}"] = i
                    benchmark[f"{key}_seconds_1d{suffix}"] = s
        benchmark["seconds"] = time.perf_counter() - begin
        print("BENCHMARK " + json.dumps(benchmark))
        return
    plates = {"rollers, cosine load": run_plate(False), "free edge, uniform": run_plate(True)}
    print("\n2D plate, plane strain, 3 layers, 200 noise-free FEM sensors")
    header = ("case", "moduli %", "interf. %", "seconds", "fwd rel L2", "fwd s")
    print("{:<22} {:>9} {:>9} {:>8} {:>11} {:>6}".format(*header))
    for name, r in plates.items():
        print(
            f"{name:<22} {r['moduli']:>9.3f} {r['interfaces']:>9.3f} {r['seconds']:>8.1f} "
            f"{r['forward_rel_l2']:>11.4f} {r['forward_seconds']:>6.1f}"
        )
    ours, plate = bars[0.0]["matforge"], plates["rollers, cosine load"]
    benchmark = {
        "moduli_err_pct_1d": ours[0],
        "interface_err_pct_1d": ours[1],
        "seconds_1d": ours[2],
        "moduli_err_pct_1d_noise1": bars[0.01]["matforge"][0],
        "interface_err_pct_1d_noise1": bars[0.01]["matforge"][1],
        "nls_moduli_err_pct_1d_noise1": bars[0.01]["closed-form NLS"][0],
        "nls_interface_err_pct_1d_noise1": bars[0.01]["closed-form NLS"][1],
        "moduli_err_pct_2d": plate["moduli"],
        "interface_err_pct_2d": plate["interfaces"],
        "seconds_2d": plate["seconds"],
        "forward_rel_l2_2d": plate["forward_rel_l2"],
    }
    if with_deepxde:
        dx = bars[0.0]["DeepXDE"]
        benchmark |= {
            "deepxde_moduli_err_pct_1d": dx[0],
            "deepxde_interface_err_pct_1d": dx[1],
            "deepxde_seconds_1d": dx[2],
            "deepxde_moduli_err_pct_1d_noise1": bars[0.01]["DeepXDE"][0],
            "deepxde_interface_err_pct_1d_noise1": bars[0.01]["DeepXDE"][1],
            "time_ratio_1d": ours[2] / dx[2],
            "deepxde_width": args.deepxde_width,
        }
        for noise, suffix in ((0.0, ""), (0.01, "_noise1")):
            m, i, s = bars[noise]["DeepXDE mixed"]
            benchmark[f"deepxde_mixed_moduli_err_pct_1d{suffix}"] = m
            benchmark[f"deepxde_mixed_interface_err_pct_1d{suffix}"] = i
            benchmark[f"deepxde_mixed_seconds_1d{suffix}"] = s
    free = plates["free edge, uniform"]
    benchmark |= {
        "free_edge_moduli_err_pct_2d": free["moduli"],
        "free_edge_interface_err_pct_2d": free["interfaces"],
        "free_edge_forward_rel_l2_2d": free["forward_rel_l2"],
    }
    benchmark["seconds"] = time.perf_counter() - begin
    print("BENCHMARK " + json.dumps(benchmark))


if __name__ == "__main__":
    main()

"""Training a NEP: GPUMD's SNES, and gradients (Adam then L-BFGS) on the same loss.

The loss is GPUMD's: lambda_e RMSE(E / atom) + lambda_f RMSE(F component) + lambda_v
RMSE(virial / atom) + lambda_1 mean|theta| + lambda_2 sqrt(mean theta^2), with GPUMD's
automatic lambda_1 = lambda_2 = sqrt(n_parameters 1e-6 / n_types) unless set.

SNES (Schaul et al., GECCO 2011, as GPUMD's snes.cu): a search distribution N(mu, sigma^2)
per parameter, mu from U(-0.5, 0.5), sigma = 0.1; each generation draws `population`
parameter vectors, ranks them, and updates mu += sigma sum_k u_k s_k and sigma *=
exp(eta_sigma / 2 sum_k u_k (s_k^2 - 1)) with the rank utilities u_k = max(0, ln(P/2 + 1)
- ln k) / sum - 1/P and eta_sigma = (3 + ln D) / (5 sqrt D) / 2. As NEP4 does, the
parameters of species t (its network, the descriptor coefficients with t as the centre) are
updated with the ranking by the loss on the structures that contain t; the shared bias with
the ranking by the total loss. Batches of `batch` structures cycle through the data. As in
GPUMD, the fitness ignores a constant energy-per-atom offset (the mean error is removed
before the energy RMSE) and the elite's output bias is corrected by that offset before it
is reported or returned.

Gradients: the same loss (forces differentiable in the parameters through `nep_batch`),
Adam then L-BFGS, from the same U(-0.5, 0.5) start except the shared output bias, which
starts at the training data's mean energy per atom. Both record learning curves (time,
loss parts, training and, if given, validation RMSEs).

Descriptor scaling (`q_scaler`): per descriptor block (radial, each l, 4-body, 5-body)
1 / (max - min) over the training atoms, computed once from the initial mean parameters
(GPUMD's files hold such per-block values; GPUMD may refresh them while training).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from ase import Atoms

from matforge.core.errors import ConfigError
from matforge.mlip.descriptors import VOIGT, to_voigt
from matforge.mlip.nep import NepSettings, load_parameter_vector
from matforge.mlip.nep_batch import NepTables, build_tables, evaluate, split_vector
from matforge.mlip.nep_io import NepTrainingSettings


@dataclass
class NepDataset:
    """Structures as NEP tables with their labels (the reference terms subtracted)."""

    tables: NepTables
    energy: torch.Tensor  # (S,) eV
    forces: torch.Tensor  # (N, 3) eV/A
    virial: torch.Tensor  # (S, 6) eV, VOIGT order; rows without a virial are ignored
    has_virial: torch.Tensor  # (S,) bool
    contains: torch.Tensor  # (T + 1, S) bool: structure holds species t (last row: all)

    @property
    def n_atoms(self) -> torch.Tensor:
        return self.tables.n_atoms.to(torch.float64)

    @classmethod
    def from_structures(
        cls, settings: NepSettings, structures: Sequence[Atoms], reference=None
    ) -> NepDataset:
        if not structures:
            raise ConfigError("NEP training needs at least one labelled structure")
        tables = build_tables(settings, structures)
        energies, forces, virials, has = [], [], [], []
        for index, atoms in enumerate(structures):
            calc = atoms.calc
            results = getattr(calc, "results", {}) if calc is not None else {}
            if "energy" not in results or "forces" not in results:
                where = atoms.info.get("source", f"structure {index}")
                raise ConfigError(f"{where}: NEP training needs energy and forces labels")
            energies.append(float(results["energy"]))
            forces.append(np.asarray(results["forces"], dtype=float))
            stress = results.get("stress")
            if stress is not None and atoms.pbc.all():
                s = np.asarray(stress, dtype=float)
                s = s if s.shape == (6,) else to_voigt(s)  # ASE's order is VOIGT's
                virials.append(-s * atoms.get_volume())
                has.append(True)
            else:
                virials.append(np.zeros(6))
                has.append(False)
        energy = torch.tensor(energies, dtype=torch.float64)
        force = torch.from_numpy(np.concatenate(forces))
        virial = torch.from_numpy(np.stack(virials))
        if reference is not None:
            from matforge.mlip.batch import AtomsBatch

            batch = AtomsBatch.from_atoms(structures, settings.elements, settings.cutoff_radial)
            from matforge.mlip.potential import Potential

            baseline = Potential(_Null(settings), _Zero(), reference).reference_output(batch)
            energy = energy - baseline.energy
            force = force - baseline.forces
            volumes = batch.volumes
            virial = virial + torch.stack(
                [baseline.stress[:, a, b] * volumes for a, b in VOIGT], dim=1
            )
        t = settings.n_types
        contains = torch.zeros(t + 1, len(structures), dtype=torch.bool)
        contains[t] = True
        contains[tables.species, tables.structure] = True
        return cls(tables, energy, force, virial, torch.tensor(has), contains)


class _Null(torch.nn.Module):
    """A descriptor stand-in so that a reference term can be evaluated alone."""

    def __init__(self, settings: NepSettings) -> None:
        super().__init__()
        self.elements = settings.elements
        self.cutoff = settings.cutoff_radial
        self.n_features = 1

    def forward(self, vectors, center, neighbor_species, center_species):
        return vectors.new_zeros(len(center_species), 1)


class _Zero(torch.nn.Module):
    def forward(self, features, species):
        return features.new_zeros(len(features))


def rmse_terms(out, data: NepDataset, *, shift_energy: bool = False) -> torch.Tensor:
    """(T + 1, B, 3): RMSE of E / atom, of force components and of virial / atom, over the
    structures that contain each species (last row: all structures). With `shift_energy`
    (GPUMD's fitness) the mean energy-per-atom error is removed first: a constant offset,
    which the output bias absorbs (`energy_shift`), costs nothing."""
    per_atom_e = (out.energy - data.energy) / data.n_atoms  # (B, S)
    if shift_energy:
        per_atom_e = per_atom_e - per_atom_e.mean(1, keepdim=True)
    force_sq = ((out.forces - data.forces) ** 2).sum(-1)  # (B, N)
    force_per_structure = force_sq.new_zeros(force_sq.shape[0], len(data.energy)).index_add(
        1, data.tables.structure, force_sq
    )
    rows = []
    for mask in data.contains:
        e = (per_atom_e[:, mask] ** 2).mean(1).sqrt()
        f = (force_per_structure[:, mask].sum(1) / (3 * data.n_atoms[mask].sum())).sqrt()
        with_v = mask & data.has_virial
        if out.virial is not None and bool(with_v.any()):
            dv = (out.virial[:, with_v] - data.virial[with_v]) / data.n_atoms[with_v, None]
            v = (dv**2).mean((1, 2)).sqrt()
        else:
            v = torch.zeros_like(e)
        rows.append(torch.stack([e, f, v], -1))
    return torch.stack(rows)


@dataclass
class LearningCurve:
    rows: list[dict] = field(default_factory=list)

    def add(self, **row) -> None:
        self.rows.append(row)

    def last(self) -> dict:
        return self.rows[-1] if self.rows else {}


@dataclass
class NepTrainResult:
    potential: object
    curve: LearningCurve
    seconds: float
    method: str


def block_q_scaler(data: NepDataset, settings: NepSettings, theta: torch.Tensor) -> torch.Tensor:
    """GPUMD-style per-block 1 / (max - min) of the unscaled descriptors."""
    params = split_vector(theta[None], settings)
    with torch.no_grad():
        q = evaluate(data.tables, params, settings, torch.ones(settings.dim), forces=False)
    q = q.descriptors[0]
    blocks = torch.tensor(settings.block_of_component)
    scaler = torch.ones(settings.dim, dtype=torch.float64)
    for block in blocks.unique():
        columns = blocks == block
        spread = float(q[:, columns].max() - q[:, columns].min())
        scaler[columns] = 1.0 / spread if spread > 0 else 1.0
    return scaler


def variable_types(settings: NepSettings) -> torch.Tensor:
    """Which species' ranking updates each parameter (n_types: the shared bias)."""
    t = settings.n_types
    per_network = (settings.dim + 2) * settings.neurons
    types = [torch.full((per_network,), k) for k in range(t)] + [torch.tensor([t])]
    for n_max, size in (
        (settings.n_max_radial, settings.basis_size_radial),
        (settings.n_max_angular, settings.basis_size_angular),
    ):
        centre = torch.arange(t)[:, None].expand(t, t).reshape(-1)
        types.append(centre.repeat((n_max + 1) * (size + 1)))
    return torch.cat(types)


def _regularization(theta: torch.Tensor, lambdas: tuple[float, float]) -> torch.Tensor:
    l1 = lambdas[0] * theta.abs().mean(-1)
    l2 = lambdas[1] * (theta**2).mean(-1).sqrt()
    return torch.stack([l1, l2], -1)


def train_snes(
    potential,
    datasets: Sequence[NepDataset],
    training: NepTrainingSettings,
    *,
    generations: int | None = None,
    seconds: float | None = None,
    seed: int = 0,
    chunk: int = 10,
    validation: NepDataset | None = None,
    report_every: int = 10,
    callback: Callable[[dict], None] | None = None,
    precision: torch.dtype = torch.float32,
) -> NepTrainResult:
    """GPUMD's SNES on `datasets` (one per batch, cycled by generation). The population is
    evaluated in `precision` (float32, as GPUMD does: forces agree with float64 to about
    1e-6 eV/A, 1.8x faster on a CPU); reported errors and the returned model are float64."""
    settings: NepSettings = potential.descriptor.settings
    rng = torch.Generator().manual_seed(seed)
    d = settings.n_parameters
    population = training.population
    lambdas = training.regularization(settings)
    weights = torch.tensor([training.lambda_e, training.lambda_f, training.lambda_v])
    mu = torch.rand(d, generator=rng, dtype=torch.float64) - 0.5
    sigma = torch.full((d,), 0.1, dtype=torch.float64)
    eta_sigma = (3.0 + math.log(d)) / (5.0 * math.sqrt(d)) / 2.0
    ranks = torch.arange(1, population + 1, dtype=torch.float64)
    utility = (math.log(population * 0.5 + 1.0) - torch.log(ranks)).clamp(min=0)
    utility = utility / utility.sum() - 1.0 / population
    owner = variable_types(settings)
    q_scaler = block_q_scaler(datasets[0], settings, mu)
    potential.descriptor.q_scaler.copy_(q_scaler)
    curve = LearningCurve()
    start = time.perf_counter()
    limit = generations if generations is not None else training.generation
    best_theta, best_loss = mu.clone(), math.inf
    fast_tables = [d.tables.astype(precision) for d in datasets]
    fast_scaler = q_scaler.to(precision)
    for generation in range(limit):
        if seconds is not None and time.perf_counter() - start > seconds:
            break
        data = datasets[generation % len(datasets)]
        tables = fast_tables[generation % len(datasets)]
        s = torch.randn(population, d, generator=rng, dtype=torch.float64)
        candidates = mu + sigma * s
        fitness = []
        with torch.no_grad():
            for k in range(0, population, chunk):
                part = candidates[k : k + chunk]
                out = evaluate(
                    tables,
                    split_vector(part.to(precision), settings),
                    settings,
                    fast_scaler,
                    virials=bool(data.has_virial.any()),
                )
                terms = rmse_terms(out, data, shift_energy=True)  # (T + 1, b, 3)
                fitness.append((terms.double() * weights).sum(-1))
        fitness = torch.cat(fitness, dim=1)  # (T + 1, P)
        reg = _regularization(candidates, lambdas)  # (P, 2)
        total = fitness + reg.sum(-1)
        order = torch.argsort(total, dim=1)  # best first, per species ranking
        grad_mu = torch.zeros(d, dtype=torch.float64)
        grad_sigma = torch.zeros(d, dtype=torch.float64)
        for t in range(settings.n_types + 1):
            mine = owner == t
            ranked = s[order[t]][:, mine]
            grad_mu[mine] = utility @ ranked
            grad_sigma[mine] = utility @ (ranked**2 - 1.0)
        best = int(order[-1, 0])
        if float(total[-1, best]) < best_loss:
            best_loss = float(total[-1, best])
            best_theta = energy_shift(candidates[best], data, settings, q_scaler)
        mu = mu + sigma * grad_mu
        sigma = sigma * torch.exp(eta_sigma * grad_sigma)
        # rows at generation 1 and every report_every-th (GPUMD's loss.out: every 100th)
        if generation == 0 or (generation + 1) % report_every == 0 or generation == limit - 1:
            terms = _regularization_row(reg, best)
            row = {
                "generation": generation + 1,
                "seconds": time.perf_counter() - start,
                "loss": float(total[-1, best]),
                **terms,
            }
            elite = energy_shift(candidates[best], data, settings, q_scaler)
            row |= _rmse(data, settings, q_scaler, elite)
            if validation is not None:
                row |= _prefixed(_rmse(validation, settings, q_scaler, elite), "test_")
            curve.add(**row)
            if callback is not None:
                callback(row)
    load_parameter_vector(potential, best_theta)
    return NepTrainResult(potential, curve, time.perf_counter() - start, "snes")


def energy_shift(theta: torch.Tensor, data: NepDataset, settings: NepSettings, q_scaler):
    """`theta` with its output bias moved by the mean energy-per-atom error on `data`, as
    GPUMD corrects its elite before reporting and writing nep.txt."""
    with torch.no_grad():
        out = evaluate(
            data.tables, split_vector(theta[None], settings), settings, q_scaler, forces=False
        )
        shift = float(((out.energy[0] - data.energy) / data.n_atoms).mean())
    shifted = theta.clone()
    shifted[settings.n_types * (settings.dim + 2) * settings.neurons] += shift
    return shifted


def _regularization_row(reg: torch.Tensor, best: int) -> dict:
    return {"l1": float(reg[best, 0]), "l2": float(reg[best, 1])}


def _rmse(data: NepDataset, settings, q_scaler, theta) -> dict:
    with torch.no_grad():
        out = evaluate(
            data.tables,
            split_vector(theta[None], settings),
            settings,
            q_scaler,
            virials=bool(data.has_virial.any()),
        )
        terms = rmse_terms(out, data)[-1, 0]
    return {
        "rmse_energy": float(terms[0]),
        "rmse_force": float(terms[1]),
        "rmse_virial": float(terms[2]),
    }


def _prefixed(row: dict, prefix: str) -> dict:
    return {prefix + k: v for k, v in row.items()}


def train_gradient(
    potential,
    datasets: Sequence[NepDataset],
    training: NepTrainingSettings,
    *,
    adam_steps: int = 2000,
    lbfgs_steps: int = 200,
    learning_rate: float = 1e-2,
    seconds: float | None = None,
    seed: int = 0,
    validation: NepDataset | None = None,
    report_every: int = 10,
    callback: Callable[[dict], None] | None = None,
) -> NepTrainResult:
    """Adam, then L-BFGS, on GPUMD's loss, from SNES's U(-0.5, 0.5) start; `seconds`
    bounds the whole run (Adam gets at most 80% of it)."""
    settings: NepSettings = potential.descriptor.settings
    rng = torch.Generator().manual_seed(seed)
    theta0 = torch.rand(settings.n_parameters, generator=rng, dtype=torch.float64) - 0.5
    # the output bias starts at the data's mean energy per atom (E_i = ... - b1): otherwise
    # Adam spends hundreds of steps of its learning rate just shifting it
    mean = torch.cat([d.energy / d.n_atoms for d in datasets]).mean()
    theta0[settings.n_types * (settings.dim + 2) * settings.neurons] = -mean
    q_scaler = block_q_scaler(datasets[0], settings, theta0)
    potential.descriptor.q_scaler.copy_(q_scaler)
    theta = theta0.clone().requires_grad_(True)
    lambdas = training.regularization(settings)
    weights = torch.tensor([training.lambda_e, training.lambda_f, training.lambda_v])
    curve = LearningCurve()
    start = time.perf_counter()
    step_count = 0

    def loss_of(data: NepDataset) -> tuple[torch.Tensor, torch.Tensor]:
        out = evaluate(
            data.tables,
            split_vector(theta[None], settings),
            settings,
            q_scaler,
            virials=bool(data.has_virial.any()),
            create_graph=True,
        )
        terms = rmse_terms(out, data)[-1, 0]
        reg = _regularization(theta[None], lambdas)[0]
        return (terms * weights).sum() + reg.sum(), terms

    def record(phase: str, data: NepDataset, loss: torch.Tensor) -> None:
        row = {"step": step_count, "phase": phase, "seconds": time.perf_counter() - start}
        row["loss"] = float(loss)
        row |= _rmse(data, settings, q_scaler, theta.detach())
        if validation is not None:
            row |= _prefixed(_rmse(validation, settings, q_scaler, theta.detach()), "test_")
        curve.add(**row)
        if callback is not None:
            callback(row)

    adam = torch.optim.Adam([theta], lr=learning_rate)
    adam_budget = None if seconds is None else 0.8 * seconds
    for step in range(adam_steps):
        if adam_budget is not None and time.perf_counter() - start > adam_budget:
            break
        data = datasets[step % len(datasets)]
        adam.zero_grad()
        loss, _ = loss_of(data)
        loss.backward()
        adam.step()
        step_count += 1
        if step % report_every == 0:
            record("adam", data, loss.detach())
    # L-BFGS's line search may evaluate many trial points: the budget is checked at every
    # evaluation, and the best parameters evaluated are the result
    lbfgs = torch.optim.LBFGS(
        [theta], lr=1.0, max_iter=5, history_size=20, line_search_fn="strong_wolfe"
    )
    data = datasets[0]
    best: list = [math.inf, theta.detach().clone()]

    class _OutOfTimeError(Exception):
        pass

    def closure() -> torch.Tensor:
        if seconds is not None and time.perf_counter() - start > seconds:
            raise _OutOfTimeError
        lbfgs.zero_grad()
        loss, _ = loss_of(data)
        if float(loss) < best[0]:
            best[0], best[1] = float(loss), theta.detach().clone()
        loss.backward()
        return loss

    for _ in range(max(0, lbfgs_steps // 5)):
        try:
            loss = lbfgs.step(closure)
        except _OutOfTimeError:
            break
        step_count += 5
        record("lbfgs", data, loss.detach())
    if best[0] < math.inf:
        with torch.no_grad():
            theta.copy_(best[1])
    load_parameter_vector(potential, theta.detach())
    return NepTrainResult(potential, curve, time.perf_counter() - start, "gradient")


def make_datasets(
    settings: NepSettings, structures: Sequence[Atoms], batch: int, reference=None, seed: int = 0
) -> list[NepDataset]:
    """The training data cut into GPUMD-style batches of at most `batch` structures."""
    order = np.random.default_rng(seed).permutation(len(structures))
    parts = [order[k : k + batch] for k in range(0, len(order), batch)]
    return [
        NepDataset.from_structures(settings, [structures[i] for i in part], reference)
        for part in parts
    ]

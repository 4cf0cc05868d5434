"""Training a functional on fixed densities, then evaluating it self-consistently.

`prepare` runs a reference functional (PBE by default) once per system and keeps what
the training needs: the density on the grid, the grid weights, and the energy without its
exchange-correlation part, E_rest = E_ref - E_xc^ref[n_ref]. On these densities a
functional's total energy is E[theta] = E_rest + sum_g w_g e_xc^theta(n_ref(g)): exact to
first order in the density change (the SCF energy is stationary in the density), and
dE/dtheta = dE_xc/dtheta at the density, so training needs no gradient through the SCF.
Systems are cached one file each (`cache/NAME.pt`), written atomically as they finish, so
an interrupted preparation resumes where it stopped.

`fit` minimizes the mean squared error of atomization energies (kcal/mol) of the training
molecules (experimental, or reference ones such as CCSD(T) from `matforge.xc.reference`),
keeps the parameters of the best validation MAE, and can add penalties on the
one-electron self-interaction error of the H atom (E_xc[n_H] + J[n_H], 0 for the exact
functional) and on deviations from piecewise linearity in the electron number
(`matforge.xc.fractional`). `scf_atomization_energies` re-runs each system
self-consistently.
"""

from __future__ import annotations

import copy
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from matforge.core.errors import ConfigError
from matforge.xc.data import System, atom_counts, atomization_energy
from matforge.xc.density import SpinDensity
from matforge.xc.functionals import XCFunctional
from matforge.xc.pyscf_bridge import one_torch_thread

if TYPE_CHECKING:
    from matforge.xc.fractional import FractionalSeries

__all__ = [
    "FixedDensity",
    "fit",
    "needed_atoms",
    "predicted_atomization",
    "prepare",
    "scf_atomization_energies",
]

HARTREE_KCAL = 627.5094740631


@dataclass
class FixedDensity:
    name: str
    density: SpinDensity
    weights: torch.Tensor
    rest_energy: float  # E_ref - E_xc^ref, Hartree
    reference_energy: float
    coulomb: float  # J[n], Hartree (used for one-electron penalties)

    def energy(self, functional: XCFunctional) -> torch.Tensor:
        return self.rest_energy + (functional.energy_density(self.density) * self.weights).sum()


def _mol(system: System, basis: str) -> Any:
    from pyscf import gto

    return gto.M(
        atom=system.atoms_string(), basis=basis, spin=system.spin, charge=system.charge, verbose=0
    )


def prepare_one(
    system: System,
    *,
    reference: str,
    basis: str,
    grid_level: int,
    occupations: Callable[[Any], np.ndarray] | None = None,
    exact_exchange: bool = False,
) -> FixedDensity:
    """The reference SCF of `system` and what training keeps of it. `occupations` (mo
    energies -> occupation numbers) fixes the orbital occupations, fractional ones
    included; `exact_exchange` adds the exact-exchange energy densities (local hybrids);
    an SCF that does not converge raises."""
    from matforge.xc.pyscf_bridge import density_on_grid, kohn_sham

    mol = _mol(system, basis)
    mf = kohn_sham(mol, reference, grid_level=grid_level)
    mf.max_cycle = 150
    if occupations is not None:
        mf.get_occ = lambda mo_energy=None, mo_coeff=None: occupations(mo_energy)
    energy = float(mf.kernel())
    if not mf.converged and occupations is None:
        # open-shell atoms in small bases can oscillate under DIIS; the reference is a
        # libxc functional, so the second-order solver (which needs its kernel) is there
        mf = mf.newton()
        energy = float(mf.kernel(mf.mo_coeff, mf.mo_occ))
    if not mf.converged:
        raise RuntimeError(f"{system.name}: reference {reference} SCF did not converge")
    dm = mf.make_rdm1()
    total_dm = dm if dm.ndim == 2 else dm[0] + dm[1]
    veff = mf.get_veff(mol, dm)
    coulomb = 0.5 * float(np.einsum("ij,ji->", mf.get_j(mol, total_dm), total_dm))
    density, weights = density_on_grid(mf, dm)
    if exact_exchange:
        from matforge.xc.exact_exchange import GridDensity, exact_exchange_densities

        density.exact_exchange = exact_exchange_densities(GridDensity.from_scf(mf), dm)
    return FixedDensity(system.name, density, weights, energy - float(veff.exc), energy, coulomb)


def cached_fixed_density(
    path: Path, compute: Callable[[], FixedDensity], name: str
) -> tuple[FixedDensity, bool]:
    """`compute()` once, kept in `path` (written atomically); (density, computed now)."""
    from matforge.core.rundir import atomic_write_bytes

    if path.exists():
        state = torch.load(path, weights_only=True)
        computed = False
    else:
        fixed = compute()
        state = {
            "rho": fixed.density.rho,
            "grad": fixed.density.grad,
            "tau": fixed.density.tau,
            "weights": fixed.weights,
            "rest_energy": fixed.rest_energy,
            "reference_energy": fixed.reference_energy,
            "coulomb": fixed.coulomb,
        }
        if fixed.density.exact_exchange is not None:
            state["exact_exchange"] = fixed.density.exact_exchange
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(path, buffer.getvalue())
        computed = True
    fixed = FixedDensity(
        name,
        SpinDensity(state["rho"], state["grad"], state["tau"], state.get("exact_exchange")),
        state["weights"],
        float(state["rest_energy"]),
        float(state["reference_energy"]),
        float(state["coulomb"]),
    )
    return fixed, computed


def prepare(
    systems: Sequence[System],
    cache: str | Path,
    *,
    reference: str = "PBE",
    basis: str = "def2-svp",
    grid_level: int = 2,
    exact_exchange: bool = False,
    progress: Callable[[str, float], None] | None = None,
) -> dict[str, FixedDensity]:
    """Fixed densities of `systems`, cached in `cache` (with exact-exchange energy
    densities in separate files, "-exx", when `exact_exchange`)."""
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    suffix = "-exx" if exact_exchange else ""
    out = {}
    for system in systems:
        path = cache / f"{system.name}-{reference}-{basis}-{grid_level}{suffix}.pt"
        start = time.perf_counter()
        out[system.name], computed = cached_fixed_density(
            path,
            lambda system=system: prepare_one(
                system,
                reference=reference,
                basis=basis,
                grid_level=grid_level,
                exact_exchange=exact_exchange,
            ),
            system.name,
        )
        if computed and progress is not None:
            progress(system.name, time.perf_counter() - start)
    return out


def predicted_atomization(
    energies: dict[str, torch.Tensor | float], molecules: Sequence[str]
) -> dict[str, torch.Tensor | float]:
    """Atomization energies (kcal/mol) from total energies (Hartree) of molecules and atoms."""
    out = {}
    for name in molecules:
        atoms = sum(count * energies[symbol] for symbol, count in atom_counts(name).items())
        out[name] = (atoms - energies[name]) * HARTREE_KCAL
    return out


def needed_atoms(molecules: Sequence[str]) -> list[str]:
    return sorted({symbol for name in molecules for symbol in atom_counts(name)})


def fit(
    functional: XCFunctional,
    data: dict[str, FixedDensity],
    train: Sequence[str],
    validation: Sequence[str],
    *,
    epochs: int = 200,
    learning_rate: float = 1e-2,
    self_interaction_weight: float = 0.0,
    targets: dict[str, float] | None = None,
    linearity: Sequence[FractionalSeries] = (),
    linearity_weight: float = 0.0,
    progress: Callable[[int, float, float], None] | None = None,
) -> dict[str, Any]:
    """Fit on fixed densities; returns the history and the best validation MAE (kcal/mol);
    `functional` ends with the parameters of the best validation epoch. Full-batch Adam:
    every step sees every training molecule.

    `targets`: atomization energies (kcal/mol) per molecule, e.g. CCSD(T) ones from
    `matforge.xc.reference`; default: experiment (G2-1). `linearity`: fractional-electron
    series (`matforge.xc.fractional`) whose mean squared deviation from piecewise
    linearity, times `linearity_weight`, is added to the loss."""
    needed = [*train, *validation, *needed_atoms([*train, *validation])]
    missing = [n for n in needed if n not in data]
    if missing:
        raise ConfigError(f"no prepared densities for {', '.join(missing)}")
    if targets is None:
        targets = {name: atomization_energy(name) for name in [*train, *validation]}
    untargeted = [n for n in [*train, *validation] if n not in targets]
    if untargeted:
        raise ConfigError(f"no target atomization energy for {', '.join(untargeted)}")
    if linearity_weight and not linearity:
        raise ConfigError("linearity_weight > 0 needs fractional-electron series")
    from matforge.xc.fractional import linearity_penalty

    optimizer = torch.optim.Adam(functional.parameters(), lr=learning_rate)
    best = (float("inf"), 0, copy.deepcopy(functional.state_dict()))
    history = []

    def errors(names: Sequence[str]) -> torch.Tensor:
        energies = {n: data[n].energy(functional) for n in [*names, *needed_atoms(names)]}
        predicted = predicted_atomization(energies, names)
        return torch.stack([predicted[n] - targets[n] for n in names])  # type: ignore[operator]

    with one_torch_thread():
        for epoch in range(epochs + 1):
            with torch.no_grad():
                validation_mae = float(errors(validation).abs().mean())
            if validation_mae < best[0]:
                best = (validation_mae, epoch, copy.deepcopy(functional.state_dict()))
            if epoch == epochs:
                break
            optimizer.zero_grad()
            error = errors(train)
            loss = (error**2).mean()
            linearity_msd = linearity_penalty(functional, linearity) if linearity else None
            if linearity_weight:
                loss = loss + linearity_weight * linearity_msd
            if self_interaction_weight and "H" in data:
                h = data["H"]
                xc = (functional.energy_density(h.density) * h.weights).sum()
                loss = loss + self_interaction_weight * ((xc + h.coulomb) * HARTREE_KCAL) ** 2
            loss.backward()
            optimizer.step()
            train_mae = float(error.detach().abs().mean())
            entry = {"epoch": epoch, "train_mae": train_mae, "validation_mae": validation_mae}
            if linearity_msd is not None:
                entry["linearity_rms"] = float(linearity_msd.detach()) ** 0.5
            history.append(entry)
            if progress is not None:
                progress(epoch, train_mae, validation_mae)
    functional.load_state_dict(best[2])
    return {"best_epoch": best[1], "best_validation_mae": best[0], "history": history}


def scf_atomization_energies(
    functional: XCFunctional | str,
    molecules: Sequence[str],
    *,
    basis: str = "def2-svp",
    grid_level: int = 3,
    systems: dict[str, System] | None = None,
) -> dict[str, Any]:
    """Self-consistent atomization energies (kcal/mol) and their errors against
    experiment; a system whose SCF does not converge under DIIS is solved again (second
    order, or level shift for local hybrids; listed in `fallback`), and one that still
    does not is listed in `failed`, not given a number."""
    from matforge.xc.data import g2_1_atoms, g2_1_molecules
    from matforge.xc.pyscf_bridge import kohn_sham

    systems = systems or {s.name: s for s in [*g2_1_molecules(), *g2_1_atoms()]}
    energies: dict[str, float] = {}
    failed = []
    seconds = {}
    fallback: dict[str, str] = {}
    for name in [*needed_atoms(molecules), *molecules]:
        mol = _mol(systems[name], basis)
        mf = kohn_sham(mol, functional, grid_level=grid_level)
        mf.max_cycle = 150
        start = time.perf_counter()
        energy = float(mf.kernel())
        if not mf.converged:
            # open-shell atoms (O, S, Cl) can oscillate between near-degenerate states
            # under DIIS, depending on rounding (thread counts). The second-order solver
            # needs the kernel (libxc's, or the torch autograd one); a local hybrid has
            # none through PySCF, so it gets a level shift and damping instead.
            if getattr(functional, "uses_exact_exchange", False):
                last = mf.make_rdm1()
                mf = kohn_sham(mol, functional, grid_level=grid_level)
                mf.max_cycle, mf.level_shift, mf.damp = 150, 0.5, 0.3
                energy = float(mf.kernel(dm0=last))
                fallback[name] = "level shift"
            else:
                mf = mf.newton()
                energy = float(mf.kernel(mf.mo_coeff, mf.mo_occ))
                fallback[name] = "second order"
        seconds[name] = time.perf_counter() - start
        if mf.converged:
            energies[name] = energy
        else:
            failed.append(name)
    usable = [m for m in molecules if m in energies and all(a in energies for a in atom_counts(m))]
    predicted = predicted_atomization(energies, usable)  # type: ignore[arg-type]
    errors = {m: float(predicted[m]) - atomization_energy(m) for m in usable}
    return {
        "atomization": {m: float(v) for m, v in predicted.items()},
        "errors": errors,
        "mae": float(np.mean(np.abs(list(errors.values())))) if errors else None,
        "failed": failed,
        "fallback": fallback,
        "seconds": seconds,
    }

"""Expensive labellers behind one interface: configuration in, energy/forces/stress out.

An `Oracle` is a picklable callable (it travels to Dask workers) returning `Labels`.
`CalculatorOracle` wraps any ASE calculator, built on the worker from an import path
("ase.calculators.emt:EMT", or the short name "emt") and keyword parameters;
`PyscfOracle` runs Hartree-Fock or Kohn-Sham DFT in PySCF on a molecule or cluster
(extra `dft`) with analytic nuclear gradients, or coupled cluster (CCSD, CCSD(T)) on a
Hartree-Fock reference for energies alone (labels without forces: reference data, not
potential training). Neither imports torch, so workers stay light.
"""

from __future__ import annotations

import importlib
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from ase import Atoms, units

SHORT_NAMES = {
    "emt": "ase.calculators.emt:EMT",
    "lj": "ase.calculators.lj:LennardJones",
    "morse": "ase.calculators.morse:MorsePotential",
}


@dataclass(frozen=True)
class Labels:
    energy: float  # eV
    forces: np.ndarray | None  # (N, 3) eV/A; None from an energy-only oracle
    stress: np.ndarray | None = None  # (6,) eV/A^3, ASE convention
    seconds: float = 0.0
    worker: str = ""
    started: float = 0.0  # time.time() on the worker
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Oracle(Protocol):
    name: str

    def __call__(self, atoms: Atoms) -> Labels: ...


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def load_calculator_class(path: str) -> type:
    """A class from 'package.module:Class' (or a short name such as 'emt')."""
    target = SHORT_NAMES.get(path.lower(), path)
    module_name, _, class_name = target.partition(":")
    if not class_name:
        raise ValueError(
            f"calculator {path!r}: expected 'package.module:Class' or one of {sorted(SHORT_NAMES)}"
        )
    try:
        module = importlib.import_module(module_name)
        return getattr(module, class_name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"calculator {path!r} cannot be imported: {error}") from error


class CalculatorOracle:
    """Labels from an ASE calculator, created once per worker process."""

    def __init__(
        self,
        calculator: str = "emt",
        parameters: dict[str, Any] | None = None,
        *,
        stress: bool = True,
    ) -> None:
        load_calculator_class(calculator)  # fail now, not on a worker
        self.calculator = calculator
        self.parameters = dict(parameters or {})
        #: Label periodic cells with their stress. A calculator that fails to give it
        #: fails the label (recorded and retried like any failed call); set False for
        #: calculators without stress, and the labels carry none.
        self.stress = stress
        self.name = f"ase:{calculator}"
        self._instance = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_instance": None}

    def make_calculator(self) -> Any:
        return load_calculator_class(self.calculator)(**self.parameters)

    def __call__(self, atoms: Atoms) -> Labels:
        if self._instance is None:
            self._instance = self.make_calculator()
        started = time.time()
        work = atoms.copy()
        work.calc = self._instance
        energy = float(work.get_potential_energy())
        forces = np.array(work.get_forces())
        stress = None
        if self.stress and work.pbc.all():
            try:
                stress = np.array(work.get_stress(voigt=True))
            except Exception as error:  # any calculator's failure: the label fails with it
                raise RuntimeError(
                    f"{self.name}: the stress of a periodic cell failed "
                    f"({type(error).__name__}: {error}); set the oracle's stress: false "
                    "for a calculator without stress"
                ) from error
        return Labels(energy, forces, stress, time.time() - started, _worker_name(), started)


METHODS = ("scf", "ccsd", "ccsd(t)")


class PyscfOracle:
    """Energies from PySCF: ``method="scf"`` is Hartree-Fock (`xc=None`) or Kohn-Sham DFT,
    with analytic forces; ``"ccsd"`` / ``"ccsd(t)"`` add coupled-cluster correlation to a
    Hartree-Fock reference (restricted for closed shells, unrestricted otherwise), energy
    only. A configuration's ``atoms.info["charge"]`` and ``atoms.info["spin"]`` (2S), when
    present, override the oracle's, so one oracle labels a set of molecules, atoms and
    ions. An SCF or coupled-cluster solve that does not converge fails the call.
    `max_memory_mb` is what one calculation may add to the memory the process already
    holds (PySCF's own limit counts the whole process, torch included, and past it takes
    an out-of-core path)."""

    def __init__(
        self,
        *,
        basis: str = "sto-3g",
        xc: str | None = None,
        charge: int = 0,
        spin: int = 0,
        conv_tol: float = 1e-9,
        max_memory_mb: int = 2000,
        method: str = "scf",
        frozen_core: bool = False,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if method != "scf" and xc is not None:
            raise ValueError(f"method {method!r} runs on Hartree-Fock; xc must be None")
        self.basis, self.xc, self.charge, self.spin = basis, xc, charge, spin
        self.conv_tol, self.max_memory_mb = conv_tol, max_memory_mb
        self.method, self.frozen_core = method, frozen_core
        level = (xc or "hf") if method == "scf" else method
        self.name = f"pyscf:{level}/{basis}" + ("/fc" if frozen_core and method != "scf" else "")

    def __call__(self, atoms: Atoms) -> Labels:
        from pyscf import gto

        if atoms.pbc.any():
            raise ValueError("PyscfOracle labels molecules and clusters; got a periodic cell")
        started = time.time()
        spin = int(atoms.info.get("spin", self.spin))
        molecule = gto.M(
            atom=[
                (s, tuple(p))
                for s, p in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)
            ],
            basis=self.basis,
            charge=int(atoms.info.get("charge", self.charge)),
            spin=spin,
            unit="Angstrom",
            verbose=0,
            max_memory=_process_memory_mb() + self.max_memory_mb,
        )
        method = self._scf(molecule, restricted=spin == 0)
        energy = method.kernel()
        if not method.converged:
            raise RuntimeError(f"SCF did not converge ({self.name}, {len(atoms)} atoms)")
        info: dict[str, Any] = {"scf_energy_hartree": float(energy)}
        if self.method == "scf":
            gradient = method.nuc_grad_method().kernel()  # Hartree/Bohr
            forces = -np.asarray(gradient) * units.Hartree / units.Bohr
        else:
            energy, info = self._coupled_cluster(method, info)
            forces = None
        return Labels(
            float(energy) * units.Hartree,
            forces,
            None,
            time.time() - started,
            _worker_name(),
            started,
            info,
        )

    def _scf(self, molecule: Any, *, restricted: bool) -> Any:
        from pyscf import dft, scf

        if self.xc is None:
            method = scf.RHF(molecule) if restricted else scf.UHF(molecule)
        else:
            method = dft.RKS(molecule) if restricted else dft.UKS(molecule)
            method.xc = self.xc
        method.conv_tol = self.conv_tol
        return method

    def _coupled_cluster(self, reference: Any, info: dict[str, Any]) -> tuple[float, dict]:
        from pyscf import cc

        if reference.mol.nelectron < 2:
            return float(reference.e_tot), {**info, "correlation_hartree": 0.0}
        frozen = _core_orbitals(reference.mol) if self.frozen_core else None
        solver = cc.CCSD(reference, frozen=frozen or None)
        solver.conv_tol = 1e-8
        if min(_virtual_counts(reference)) == 0:
            # PySCF's out-of-core unrestricted CCSD fails on a spin channel without virtual
            # orbitals (a minimal basis on F or O); such a system's integrals are tiny,
            # so they are kept in memory
            if reference._eri is None:
                reference._eri = reference.mol.intor("int2e", aosym="s8")
            solver.incore_complete = True
        solver.kernel()
        if not solver.converged:
            raise RuntimeError(f"CCSD did not converge ({self.name})")
        energy = float(solver.e_tot)
        info = {**info, "ccsd_energy_hartree": energy}
        if self.method == "ccsd(t)":
            triples = _triples(solver, self.name)
            energy += triples
            info["triples_hartree"] = triples
        return energy, {**info, "correlation_hartree": energy - info["scf_energy_hartree"]}


def _triples(solver: Any, name: str) -> float:
    """The (T) correction; PySCF's unrestricted (T) divides by the number of virtual
    orbitals of each spin, so a channel without any (a minimal basis on F or O) is handled
    here: with no virtual of one spin and fewer than three of the other, no triple
    excitation exists and (T) is exactly 0."""
    virtuals = _virtual_counts(solver._scf)
    if min(virtuals) == 0:
        if max(virtuals) < 3:
            return 0.0
        raise RuntimeError(f"{name}: (T) with no virtual orbital of one spin is not supported")
    return float(solver.ccsd_t())


def _virtual_counts(reference: Any) -> list[int]:
    """Unoccupied orbitals of each spin channel (one entry for a restricted reference)."""
    occupations = np.asarray(reference.mo_occ)
    channels = occupations if occupations.ndim == 2 else [occupations / 2]
    return [int((np.asarray(o) == 0).sum()) for o in channels]


def _process_memory_mb() -> float:
    from pyscf import lib

    return float(lib.current_memory()[0])


def _core_orbitals(molecule: Any) -> int:
    """Doubly occupied core orbitals to freeze: 1s for Li-Ne, 1s2s2p for Na-Ar."""
    core = {range(3, 11): 1, range(11, 19): 5, range(19, 37): 9}
    return sum(
        next((n for span, n in core.items() if z in span), 0)
        for z in (molecule.atom_charge(i) for i in range(molecule.natm))
    )

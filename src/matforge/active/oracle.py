"""Expensive labellers behind one interface: configuration in, energy/forces/stress out.

An `Oracle` is a picklable callable (it travels to Dask workers) returning `Labels`.
`CalculatorOracle` wraps any ASE calculator, built on the worker from an import path
("ase.calculators.emt:EMT", or the short name "emt") and keyword parameters;
`PyscfOracle` runs Hartree-Fock or Kohn-Sham DFT in PySCF on a molecule or cluster
(extra `dft`) with analytic nuclear gradients. Neither imports torch, so workers stay
light.
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
    forces: np.ndarray  # (N, 3) eV/A
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


class PyscfOracle:
    """Hartree-Fock (`xc=None`) or Kohn-Sham DFT energies and analytic forces in PySCF."""

    def __init__(
        self,
        *,
        basis: str = "sto-3g",
        xc: str | None = None,
        charge: int = 0,
        spin: int = 0,
        conv_tol: float = 1e-9,
        max_memory_mb: int = 2000,
    ) -> None:
        self.basis, self.xc, self.charge, self.spin = basis, xc, charge, spin
        self.conv_tol, self.max_memory_mb = conv_tol, max_memory_mb
        self.name = f"pyscf:{xc or 'hf'}/{basis}"

    def __call__(self, atoms: Atoms) -> Labels:
        from pyscf import dft, gto, scf

        if atoms.pbc.any():
            raise ValueError("PyscfOracle labels molecules and clusters; got a periodic cell")
        started = time.time()
        molecule = gto.M(
            atom=[
                (s, tuple(p))
                for s, p in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)
            ],
            basis=self.basis,
            charge=self.charge,
            spin=self.spin,
            unit="Angstrom",
            verbose=0,
            max_memory=self.max_memory_mb,
        )
        restricted = self.spin == 0
        if self.xc is None:
            method = scf.RHF(molecule) if restricted else scf.UHF(molecule)
        else:
            method = dft.RKS(molecule) if restricted else dft.UKS(molecule)
            method.xc = self.xc
        method.conv_tol = self.conv_tol
        energy = method.kernel()
        if not method.converged:
            raise RuntimeError(f"SCF did not converge ({self.name}, {len(atoms)} atoms)")
        gradient = method.nuc_grad_method().kernel()  # Hartree/Bohr
        forces = -np.asarray(gradient) * units.Hartree / units.Bohr
        return Labels(
            float(energy) * units.Hartree,
            forces,
            None,
            time.time() - started,
            _worker_name(),
            started,
        )

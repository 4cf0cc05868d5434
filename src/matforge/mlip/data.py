"""Training data for interatomic potentials: reading, labels, groups, conversion.

A configuration is an ASE `Atoms` with its labels in a `SinglePointCalculator` (energy in
eV, forces in eV/A, stress in eV/A^3 with ASE's sign convention) and its group and weights
in `atoms.info` ("group"). Readers: extended XYZ and anything else ASE reads
(`read_structures`), ASE databases, FitSNAP's JSON (`read_fitsnap_json`,
`read_fitsnap_groups`) and mlearn's JSON (`read_mlearn_json`). `write_database` stores a
set in an ASE database (SQLite by default).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from matforge.core.errors import ConfigError

#: FitSNAP's JSON stores the pressure tensor in bar (LAMMPS metal units): positive when
#: compressed. ASE's stress is -pressure, in eV/A^3. The conversion is LAMMPS's (nktv2p for
#: metal units), so that stresses round-trip with LAMMPS and FitSNAP exactly; ASE's
#: `units.bar` differs from it by 8e-8 relative.
BAR_PER_EV_PER_A3 = 1.6021765e6
BAR = 1.0 / BAR_PER_EV_PER_A3


def _labelled(
    atoms: Atoms, energy: float | None, forces: np.ndarray | None, stress: np.ndarray | None
) -> Atoms:
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
    return atoms


def read_fitsnap_json(path: str | Path, group: str | None = None) -> Atoms:
    """One FitSNAP JSON configuration (a comment line, then {"Dataset": {"Data": [...]}})."""
    path = Path(path)
    text = path.read_text()
    body = text[text.index("{") :] if "{" in text else ""
    try:
        record = json.loads(body)["Dataset"]["Data"][0]
    except (ValueError, KeyError, IndexError) as error:
        raise ConfigError(f"{path}: not a FitSNAP JSON configuration ({error})") from error
    try:
        lattice = np.asarray(record["Lattice"], dtype=np.float64)
        positions = np.asarray(record["Positions"], dtype=np.float64)
        symbols = list(record["AtomTypes"])
    except KeyError as error:
        raise ConfigError(f"{path}: missing field {error} in Dataset.Data[0]") from error
    if positions.shape != (len(symbols), 3) or lattice.shape != (3, 3):
        raise ConfigError(
            f"{path}: expected Positions (N, 3) for N AtomTypes and a 3x3 Lattice, got "
            f"{positions.shape} and {lattice.shape}"
        )
    if "NumAtoms" in record and int(record["NumAtoms"]) != len(symbols):
        raise ConfigError(f"{path}: NumAtoms {record['NumAtoms']} != {len(symbols)} AtomTypes")
    atoms = Atoms(symbols=symbols, positions=positions, cell=lattice, pbc=True)
    energy = float(record["Energy"]) if "Energy" in record else None
    forces = np.asarray(record["Forces"], dtype=np.float64) if "Forces" in record else None
    stress = None
    if "Stress" in record:
        pressure = np.asarray(record["Stress"], dtype=np.float64)
        stress = -pressure * BAR
    atoms.info["group"] = group if group is not None else path.parent.name
    atoms.info["source"] = str(path)
    return _labelled(atoms, energy, forces, stress)


def read_fitsnap_groups(root: str | Path, groups: Iterable[str] | None = None) -> list[Atoms]:
    """Every JSON configuration under root/<group>/, groups in the given (or sorted) order
    and files in natural order (A15_2 before A15_10)."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root}: no such directory of FitSNAP JSON groups")
    names = list(groups) if groups is not None else sorted(p.name for p in root.iterdir())
    structures = []
    for name in names:
        folder = root / name
        if not folder.is_dir():
            raise ConfigError(f"{folder}: group {name!r} not found")
        for path in sorted(folder.glob("*.json"), key=_natural_key):
            structures.append(read_fitsnap_json(path, name))
    return structures


def _natural_key(path: Path) -> list[object]:
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def read_structures(path: str | Path, index: str = ":") -> list[Atoms]:
    """Labelled structures from any file ASE reads (extended XYZ, ...) or an ASE database
    (.db: every row, with its key-value pairs such as the group in `atoms.info`)."""
    from ase.io import read

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such file")
    if path.suffix == ".db":
        # ase.io.read drops a row's key-value pairs, where the group lives.
        from ase.db import connect

        structures = []
        try:
            rows = list(connect(path).select())
        except Exception as error:  # sqlite3 / ASE errors for a file that is no database
            raise ConfigError(f"{path}: not a readable ASE database ({error})") from None
        for row in rows:
            atoms = row.toatoms()
            atoms.info.update(row.key_value_pairs)
            atoms.info.setdefault("source", f"{path} row {row.id}")
            structures.append(atoms)
        return structures
    try:
        structures = read(path, index=index)
    except Exception as error:  # ASE's readers raise many kinds for a malformed file
        detail = str(error) or type(error).__name__
        raise ConfigError(f"{path}: cannot read structures from it ({detail})") from None
    structures = list(structures) if isinstance(structures, list) else [structures]
    if not structures:
        raise ConfigError(f"{path}: holds no structures")
    return structures


def write_database(structures: Sequence[Atoms], path: str | Path) -> Path:
    """Store structures with their labels and groups in an ASE database; refuses to add to
    an existing file (no silent mixing with a user's data)."""
    from ase.db import connect

    path = Path(path)
    if path.exists():
        raise ConfigError(f"{path} exists; choose a new database file")
    with connect(path) as db:
        for atoms in structures:
            db.write(atoms, group=str(atoms.info.get("group", "")))
    return path


#: mlearn's `virial_stress` is VASP's stress in kBar, positive when compressed: the Elastic
#: groups show it (Si: a strain of -0.0198 along x gives +29.5, i.e. C11 ~ 149 GPa, the PBE
#: value; Mo: C11 ~ 530 GPa; in eV/A^3 or GPa the moduli would be off by 10^2 - 10^3).
KBAR = 1000.0 * BAR  # eV/A^3 per kBar, LAMMPS's conversion as for FitSNAP's bar

#: Shear order of `virial_stress`. Si, Ge and Li: xy yz xz (a cell sheared in yz carries its
#: largest shear stress in column 4). Mo: xy xz yz (its yz-sheared cells peak in column 5),
#: checked in tests/mlip/test_mlearn_data.py on every Elastic configuration.
MLEARN_SHEAR_ORDER = {"Mo": ("xy", "xz", "yz")}
_AXES = {"x": 0, "y": 1, "z": 2}


def read_mlearn_json(
    path: str | Path, *, shear_order: tuple[str, str, str] | None = None
) -> list[Atoms]:
    """mlearn's training/test JSON (pymatgen Structure dicts with `outputs`): energies (eV),
    forces (eV/A) and stresses (ASE convention, eV/A^3) converted from kBar; the group in
    `atoms.info["group"]`. `shear_order` overrides the element's known column order."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such file")
    try:
        records = json.loads(path.read_text())
    except ValueError as error:
        raise ConfigError(f"{path}: not JSON ({error})") from None
    if not isinstance(records, list):
        raise ConfigError(f"{path}: expected a JSON list of mlearn records")
    structures = []
    for index, record in enumerate(records):
        where = f"{path} record {index}"
        try:
            lattice = np.asarray(record["structure"]["lattice"]["matrix"], dtype=np.float64)
            sites = record["structure"]["sites"]
            positions = np.asarray([site["xyz"] for site in sites], dtype=np.float64)
            symbols = [site["species"][0]["element"] for site in sites]
            outputs = record["outputs"]
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise ConfigError(f"{where}: not an mlearn record (missing or bad {error})") from None
        atoms = Atoms(symbols=symbols, positions=positions, cell=lattice, pbc=True)
        energy = outputs.get("energy")
        forces = outputs.get("forces")
        if forces is not None:
            forces = np.asarray(forces, dtype=np.float64)
            if forces.shape != (len(atoms), 3):
                raise ConfigError(
                    f"{where}: forces have shape {forces.shape}, expected ({len(atoms)}, 3)"
                )
        stress = None
        if outputs.get("virial_stress") is not None:
            values = np.asarray(outputs["virial_stress"], dtype=np.float64)
            if values.shape != (6,):
                raise ConfigError(f"{where}: virial_stress needs 6 numbers, got {values.shape}")
            order = shear_order or MLEARN_SHEAR_ORDER.get(
                record.get("element", ""), ("xy", "yz", "xz")
            )
            tensor = np.diag(values[:3])
            for column, name in zip(values[3:], order, strict=True):
                a, b = _AXES[name[0]], _AXES[name[1]]
                tensor[a, b] = tensor[b, a] = column
            stress = -tensor * KBAR
        atoms.info["group"] = str(record.get("group", "all"))
        atoms.info["source"] = where
        structures.append(
            _labelled(atoms, None if energy is None else float(energy), forces, stress)
        )
    return structures

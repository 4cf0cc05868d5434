"""GPUMD's files: nep.txt (a NEP4 model), nep.in (training settings), train.xyz.

nep.txt: a header of 6 lines (7 with ZBL):

    nep4 <n_types> <element>...        (nep4_zbl with ZBL)
    zbl <inner> <outer>                (nep4_zbl only)
    cutoff <radial> <angular> [<MN_radial> <MN_angular>]
    n_max <radial> <angular>
    basis_size <radial> <angular>
    l_max <3-body> <4-body: 0 or 2> <5-body: 0 or 1>
    ANN <neurons> 0

then one number per line: the parameters in `nep.parameter_vector`'s order, then the `dim`
components of q_scaler. Other NEP flavours (nep3, dipole, charge, typewise cutoffs, two
hidden layers) are refused with a message naming the line.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from matforge.core.errors import ConfigError
from matforge.mlip.descriptors import to_voigt
from matforge.mlip.nep import NepSettings, load_parameter_vector, nep_potential, parameter_vector


def _ints(path: Path, number: int, fields: list[str], count: int, name: str) -> list[int]:
    try:
        values = [int(v) for v in fields[1 : 1 + count]]
    except ValueError:
        values = []
    if fields[0] != name or len(values) != count or len(fields) != count + 1:
        raise ConfigError(
            f"{path}, line {number}: expected '{name}' and {count} integers, got "
            f"{' '.join(fields)!r}"
        )
    return values


def read_nep_txt(path: str | Path):
    """A `Potential` from GPUMD's nep.txt; errors name the file and line."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    rows = [(k + 1, line.split()) for k, line in enumerate(lines) if line.strip()]
    if not rows:
        raise ConfigError(f"{path}: empty file")
    number, first = rows[0]
    kind = first[0]
    if kind not in ("nep4", "nep4_zbl"):
        raise ConfigError(
            f"{path}, line {number}: matforge reads NEP4 potentials ('nep4' or 'nep4_zbl'), "
            f"not {kind!r}"
        )
    try:
        n_types = int(first[1])
    except (IndexError, ValueError):
        raise ConfigError(f"{path}, line {number}: expected 'nep4 <n_types> <elements>'") from None
    elements = tuple(first[2:])
    if len(elements) != n_types:
        raise ConfigError(
            f"{path}, line {number}: {n_types} types announced, {len(elements)} elements named"
        )
    cursor = 1
    zbl = None
    if kind == "nep4_zbl":
        number, fields = rows[cursor]
        cursor += 1
        if fields[0] != "zbl" or len(fields) != 3:
            raise ConfigError(f"{path}, line {number}: expected 'zbl <inner> <outer>'")
        zbl = (float(fields[1]), float(fields[2]))
        if zbl == (0.0, 0.0):
            raise ConfigError(f"{path}, line {number}: flexible ZBL (zbl 0 0) is not supported")
    number, fields = rows[cursor]
    if fields[0] != "cutoff" or len(fields) not in (3, 5):
        raise ConfigError(
            f"{path}, line {number}: expected 'cutoff <radial> <angular> [<MN_radial> "
            f"<MN_angular>]' (typewise cutoffs are not supported), got {' '.join(fields)!r}"
        )
    cut_r, cut_a = float(fields[1]), float(fields[2])
    max_neighbors = (int(fields[3]), int(fields[4])) if len(fields) == 5 else None
    n_max = _ints(path, *rows[cursor + 1], 2, "n_max")
    basis = _ints(path, *rows[cursor + 2], 2, "basis_size")
    l_max = _ints(path, *rows[cursor + 3], 3, "l_max")
    number, fields = rows[cursor + 4]
    ann = _ints(path, number, fields, 2, "ANN")
    if ann[1] != 0:
        raise ConfigError(f"{path}, line {number}: a second hidden layer is not supported")
    try:
        settings = NepSettings(
            elements,
            cutoff_radial=cut_r,
            cutoff_angular=cut_a,
            n_max_radial=n_max[0],
            n_max_angular=n_max[1],
            basis_size_radial=basis[0],
            basis_size_angular=basis[1],
            l_max=l_max[0],
            l_max_4body=l_max[1],
            l_max_5body=l_max[2],
            neurons=ann[0],
            zbl=zbl,
            max_neighbors=max_neighbors,
        )
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    body = rows[cursor + 5 :]
    expected = settings.n_parameters + settings.dim
    if len(body) != expected:
        raise ConfigError(
            f"{path}: expected {expected} parameter lines after the header ({settings.n_parameters}"
            f" parameters and {settings.dim} q_scaler values for this architecture), found "
            f"{len(body)}"
        )
    values = np.empty(expected)
    for k, (number, fields) in enumerate(body):
        try:
            if len(fields) != 1:
                raise ValueError
            values[k] = float(fields[0])
        except ValueError:
            raise ConfigError(
                f"{path}, line {number}: expected one number, got {' '.join(fields)!r}"
            ) from None
    potential = nep_potential(settings)
    load_parameter_vector(potential, values[: settings.n_parameters])
    with torch.no_grad():
        potential.descriptor.q_scaler.copy_(torch.from_numpy(values[settings.n_parameters :]))
    return potential


def write_nep_txt(potential, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a NEP `Potential` as GPUMD's nep.txt (atomically; no silent overwrite)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} exists; refusing to overwrite it")
    s: NepSettings = potential.descriptor.settings
    header = [f"nep4{'_zbl' if s.zbl else ''} {s.n_types} {' '.join(s.elements)}"]
    if s.zbl:
        header.append(f"zbl {s.zbl[0]:g} {s.zbl[1]:g}")
    neighbors = s.max_neighbors or default_max_neighbors(s)
    header += [
        f"cutoff {s.cutoff_radial:g} {s.cutoff_angular:g} {neighbors[0]} {neighbors[1]}",
        f"n_max {s.n_max_radial} {s.n_max_angular}",
        f"basis_size {s.basis_size_radial} {s.basis_size_angular}",
        f"l_max {s.l_max} {s.l_max_4body} {s.l_max_5body}",
        f"ANN {s.neurons} 0",
    ]
    values = torch.cat([parameter_vector(potential).detach(), potential.descriptor.q_scaler])
    body = [f"{v:17.10e}" for v in values.tolist()]
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as stream:
        stream.write("\n".join(header + body) + "\n")
    os.replace(temporary, path)
    return path


def default_max_neighbors(s: NepSettings) -> tuple[int, int]:
    """GPUMD's header needs neighbour-count bounds; a generous estimate from the cutoffs
    (a close-packed density of 0.1 atoms/A^3, doubled)."""
    volume = 4.0 / 3.0 * np.pi
    return (
        int(np.ceil(0.2 * volume * s.cutoff_radial**3)),
        int(np.ceil(0.2 * volume * s.cutoff_angular**3)),
    )


@dataclass(frozen=True)
class NepTrainingSettings:
    """nep.in's training keywords (GPUMD's defaults; lambda_1/2 None: GPUMD's automatic
    sqrt(n_parameters 1e-6 / n_types))."""

    lambda_1: float | None = None
    lambda_2: float | None = None
    lambda_e: float = 1.0
    lambda_f: float = 1.0
    lambda_v: float = 0.1
    batch: int = 1000
    population: int = 50
    generation: int = 100000

    def regularization(self, settings: NepSettings) -> tuple[float, float]:
        automatic = float(np.sqrt(settings.n_parameters * 1e-6 / settings.n_types))
        return (
            automatic if self.lambda_1 is None else self.lambda_1,
            automatic if self.lambda_2 is None else self.lambda_2,
        )


MODEL_KEYS = {"type", "version", "cutoff", "n_max", "basis_size", "l_max", "neuron", "zbl"}
TRAINING_KEYS = {
    "lambda_1",
    "lambda_2",
    "lambda_e",
    "lambda_f",
    "lambda_v",
    "batch",
    "population",
    "generation",
}


def read_nep_in(path: str | Path) -> tuple[NepSettings, NepTrainingSettings]:
    """GPUMD's nep.in: the architecture and the training settings (others refused)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    model: dict = {}
    training: dict = {}
    elements: tuple[str, ...] | None = None
    for number, line in enumerate(lines, 1):
        fields = line.split("#")[0].split()
        if not fields:
            continue
        key, values = fields[0], fields[1:]
        where = f"{path}, line {number}"
        if key not in MODEL_KEYS | TRAINING_KEYS:
            raise ConfigError(
                f"{where}: keyword {key!r} is not supported (known: "
                f"{', '.join(sorted(MODEL_KEYS | TRAINING_KEYS))})"
            )
        try:
            if key == "type":
                n = int(values[0])
                elements = tuple(values[1:])
                if len(elements) != n:
                    raise ConfigError(f"{where}: {n} types announced, {len(elements)} named")
            elif key == "version":
                if values != ["4"]:
                    raise ConfigError(f"{where}: matforge trains NEP4 (version 4)")
            elif key == "cutoff":
                model["cutoff_radial"], model["cutoff_angular"] = map(float, values[:2])
                if len(values) != 2:
                    raise ConfigError(f"{where}: typewise cutoffs are not supported")
            elif key == "n_max":
                model["n_max_radial"], model["n_max_angular"] = map(int, values)
            elif key == "basis_size":
                model["basis_size_radial"], model["basis_size_angular"] = map(int, values)
            elif key == "l_max":
                ints = [int(v) for v in values] + [2, 0][len(values) - 1 :]
                model["l_max"], model["l_max_4body"], model["l_max_5body"] = ints[:3]
            elif key == "neuron":
                model["neurons"] = int(values[0])
            elif key == "zbl":
                outer = float(values[0])
                model["zbl"] = (outer / 2.0, outer)  # GPUMD: inner = outer / 2
            elif key in ("lambda_1", "lambda_2", "lambda_e", "lambda_f", "lambda_v"):
                training[key] = float(values[0])
            else:  # batch, population, generation
                training[key] = int(values[0])
        except ConfigError:
            raise
        except (ValueError, IndexError):
            raise ConfigError(f"{where}: cannot read {line.strip()!r}") from None
    if elements is None:
        raise ConfigError(f"{path}: no 'type' line (the species to train)")
    try:
        settings = NepSettings(elements, **model)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    return settings, NepTrainingSettings(**training)


def read_gpumd_xyz(path: str | Path) -> list[Atoms]:
    """GPUMD's extended XYZ (train.xyz, test.xyz): `energy` (eV) and optional `virial`
    (9 numbers, eV) or `stress` in the comment line, `force`/`forces` per atom; each
    structure gets a SinglePointCalculator and `info['source']` naming file and line."""
    from ase.io import read

    path = Path(path)
    try:
        frames = read(path, ":", format="extxyz")
    except Exception as error:  # ASE raises many kinds for a bad file
        raise ConfigError(f"{path}: not a readable extended XYZ file ({error})") from None
    out = []
    line = 1
    for index, atoms in enumerate(frames):
        where = f"{path} line {line}"
        line += len(atoms) + 2
        energy = atoms.info.get("energy")
        if energy is None and atoms.calc is not None:
            energy = atoms.calc.results.get("energy")
        forces = atoms.arrays.get("force", atoms.arrays.get("forces"))
        if forces is None and atoms.calc is not None:
            forces = atoms.calc.results.get("forces")
        if energy is None or forces is None:
            raise ConfigError(f"{where}: structure {index} lacks 'energy' or per-atom forces")
        results = {"energy": float(energy), "forces": np.asarray(forces, dtype=float)}
        virial = atoms.info.get("virial")
        if virial is None and atoms.calc is not None and "stress" in atoms.calc.results:
            results["stress"] = atoms.calc.results["stress"]
        elif virial is not None:
            w = np.asarray(virial, dtype=float).reshape(3, 3)
            results["stress"] = to_voigt(-w / atoms.get_volume())
        clean = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        clean.calc = SinglePointCalculator(clean, **results)
        clean.info.update(source=where, group=str(atoms.info.get("config_type", "all")), weight=1.0)
        out.append(clean)
    return out


def with_max_neighbors(potential, structures) -> None:
    """Record GPUMD's neighbour bounds from structures (the header's MN values)."""
    from matforge.mlip.neighbors import neighbor_pairs

    s: NepSettings = potential.descriptor.settings
    most = [0, 0]
    for atoms in structures:
        pairs = neighbor_pairs([atoms], s.cutoff_radial)
        d = np.linalg.norm(
            atoms.positions[pairs.neighbor.numpy()]
            + pairs.shift.numpy() @ atoms.cell.array
            - atoms.positions[pairs.center.numpy()],
            axis=1,
        )
        for k, cut in enumerate((s.cutoff_radial, s.cutoff_angular)):
            counts = np.bincount(pairs.center.numpy()[d < cut], minlength=len(atoms))
            most[k] = max(most[k], int(counts.max()) if len(counts) else 0)
    potential.descriptor.settings = replace(s, max_neighbors=(most[0] + 10, most[1] + 10))

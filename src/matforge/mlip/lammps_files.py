"""LAMMPS's SNAP files: `.snapcoeff` (per-element radius, weight, coefficients) and
`.snapparam` (bispectrum settings), read and written so that a matforge SNAP runs in
LAMMPS (`pair_style snap`) and a FitSNAP/LAMMPS SNAP runs in matforge."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from matforge.core.errors import ConfigError
from matforge.core.rundir import atomic_write_text
from matforge.mlip.snap import SnapParameters

_PARAM_FLAGS = ("switchflag", "bzeroflag", "quadraticflag")
_UNSUPPORTED = ("chemflag", "bnormflag", "wselfallflag", "switchinnerflag")


def _content_lines(path: Path) -> list[tuple[int, list[str]]]:
    lines = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        text = raw.split("#", 1)[0].strip()
        if text:
            lines.append((number, text.split()))
    return lines


def read_snapcoeff(
    path: str | Path,
) -> tuple[dict[str, float], dict[str, float], dict[str, np.ndarray]]:
    """(radius, weight, coefficients) per element from a `.snapcoeff` file."""
    path = Path(path)
    lines = _content_lines(path)
    try:
        n_elements, n_coeff = (int(v) for v in lines[0][1])
    except (IndexError, ValueError) as error:
        raise ConfigError(f"{path}: line 1 must hold 'n_elements n_coefficients'") from error
    radius, weight, coefficients = {}, {}, {}
    cursor = 1
    for _ in range(n_elements):
        number, fields = lines[cursor]
        if len(fields) != 3:
            raise ConfigError(f"{path}:{number}: expected 'element radius weight'")
        element = fields[0]
        radius[element], weight[element] = float(fields[1]), float(fields[2])
        block = lines[cursor + 1 : cursor + 1 + n_coeff]
        if len(block) != n_coeff:
            raise ConfigError(f"{path}: element {element} has fewer than {n_coeff} coefficients")
        try:
            coefficients[element] = np.array([float(f[0]) for _, f in block])
        except ValueError as error:
            raise ConfigError(f"{path}:{block[0][0]}: not a number ({error})") from error
        cursor += 1 + n_coeff
    return radius, weight, coefficients


def read_snapparam(
    path: str | Path, radius: dict[str, float], weight: dict[str, float]
) -> SnapParameters:
    """Bispectrum settings from a `.snapparam` file (radius and weight from .snapcoeff)."""
    path = Path(path)
    values: dict[str, str] = {}
    for number, fields in _content_lines(path):
        if len(fields) != 2:
            raise ConfigError(f"{path}:{number}: expected 'keyword value'")
        values[fields[0]] = fields[1]
    for required in ("twojmax", "rcutfac"):
        if required not in values:
            raise ConfigError(f"{path}: missing required keyword {required!r}")
    return SnapParameters(
        twojmax=int(values["twojmax"]),
        rcutfac=float(values["rcutfac"]),
        radius=radius,
        weight=weight,
        rfac0=float(values.get("rfac0", 0.99363)),
        rmin0=float(values.get("rmin0", 0.0)),
        switchflag=bool(int(values.get("switchflag", 1))),
        bzeroflag=bool(int(values.get("bzeroflag", 1))),
        quadraticflag=bool(int(values.get("quadraticflag", 0))),
        unsupported={k: int(values[k]) for k in _UNSUPPORTED if k in values},
    )


def write_snap_files(
    stem: str | Path, parameters: SnapParameters, coefficients: dict[str, np.ndarray]
) -> tuple[Path, Path]:
    """Write STEM.snapcoeff and STEM.snapparam (refusing to overwrite)."""
    stem = Path(stem)
    n_coeff = len(next(iter(coefficients.values())))
    lines = ["# matforge SNAP coefficients", "", f"{len(coefficients)} {n_coeff}"]
    for element, values in coefficients.items():
        lines.append(f"{element} {parameters.radius[element]!r} {parameters.weight[element]!r}")
        lines.extend(f" {float(v)!r}" for v in values)
    coeff = atomic_write_text(stem.with_suffix(".snapcoeff"), "\n".join(lines) + "\n")
    param_lines = [
        "# matforge SNAP parameters",
        f"rcutfac {parameters.rcutfac!r}",
        f"twojmax {parameters.twojmax}",
        f"rfac0 {parameters.rfac0!r}",
        f"rmin0 {parameters.rmin0!r}",
        *(f"{flag} {int(getattr(parameters, flag))}" for flag in _PARAM_FLAGS),
    ]
    param = atomic_write_text(stem.with_suffix(".snapparam"), "\n".join(param_lines) + "\n")
    return coeff, param

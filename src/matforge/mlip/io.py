"""Save and load a `Potential` as one versioned file.

The file is a `torch.save` archive of plain data only (tensors, numbers, strings, lists,
dicts), loaded with `weights_only=True`, so opening a model file never runs code. It holds
the format name and version, the matforge version that wrote it, the species, the units,
and each part of the potential (descriptor, atomic model, reference) as a kind plus its
settings and tensors. A file written by a newer format version is refused with a message
that says so.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import torch

from matforge import __version__
from matforge.core.errors import ConfigError
from matforge.core.rundir import atomic_write_bytes
from matforge.mlip.potential import LinearModel, Potential
from matforge.mlip.snap import Bispectrum, SnapParameters
from matforge.mlip.zbl import ZBL

FORMAT = "matforge-potential"
FORMAT_VERSION = 1
UNITS = {"energy": "eV", "length": "Angstrom", "stress": "eV/Angstrom^3"}


def _descriptor_spec(descriptor: torch.nn.Module) -> dict[str, Any]:
    if isinstance(descriptor, Bispectrum):
        settings = dataclasses.asdict(descriptor.parameters)
        settings["radius"] = dict(settings["radius"])
        settings["weight"] = dict(settings["weight"])
        settings["unsupported"] = {}
        return {"kind": "snap", "settings": settings}
    raise ConfigError(f"cannot save a descriptor of type {type(descriptor).__name__}")


def _model_spec(model: torch.nn.Module) -> dict[str, Any]:
    if isinstance(model, LinearModel):
        return {"kind": "linear", "coefficients": model.coefficients.detach().clone()}
    raise ConfigError(f"cannot save an atomic model of type {type(model).__name__}")


def _reference_spec(reference: torch.nn.Module | None) -> dict[str, Any] | None:
    if reference is None:
        return None
    if isinstance(reference, ZBL):
        charges = dict(zip(reference.elements, reference.charge.tolist(), strict=True))
        return {
            "kind": "zbl",
            "charges": charges,
            "inner": reference.inner,
            "outer": reference.outer,
        }
    raise ConfigError(f"cannot save a reference potential of type {type(reference).__name__}")


def save_potential(potential: Potential, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write `potential` to `path` atomically (refusing to overwrite unless asked)."""
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "matforge_version": __version__,
        "elements": list(potential.elements),
        "units": UNITS,
        "descriptor": _descriptor_spec(potential.descriptor),
        "model": _model_spec(potential.model),
        "reference": _reference_spec(potential.reference),
    }
    buffer = io.BytesIO()
    torch.save(record, buffer)
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)


def load_potential(path: str | Path) -> Potential:
    """Read a potential written by `save_potential`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such model file")
    try:
        record = torch.load(path, weights_only=True)
    except Exception as error:  # torch raises many kinds for a bad file
        raise ConfigError(f"{path}: not a matforge potential file ({error})") from error
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a matforge potential file (no '{FORMAT}' header)")
    version = int(record.get("format_version", -1))
    if version > FORMAT_VERSION:
        raise ConfigError(
            f"{path}: written by matforge {record.get('matforge_version', '?')} in model format "
            f"version {version}; this matforge ({__version__}) reads up to version "
            f"{FORMAT_VERSION}. Upgrade matforge to load it."
        )
    descriptor_spec, model_spec = record["descriptor"], record["model"]
    if descriptor_spec["kind"] != "snap" or model_spec["kind"] != "linear":
        raise ConfigError(
            f"{path}: unknown parts {descriptor_spec['kind']!r}/{model_spec['kind']!r}"
        )
    descriptor = Bispectrum(SnapParameters(**descriptor_spec["settings"]))
    coefficients = model_spec["coefficients"]
    model = LinearModel(coefficients.shape[0], coefficients.shape[1] - 1)
    with torch.no_grad():
        model.coefficients.copy_(coefficients)
    reference = None
    if record.get("reference") is not None:
        spec = record["reference"]
        reference = ZBL(spec["charges"], spec["inner"], spec["outer"])
    return Potential(descriptor, model, reference)

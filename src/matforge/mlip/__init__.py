"""Machine-learned interatomic potentials (`matforge mlip`).

The pieces, as in ASE's Calculator protocol: a descriptor (`Bispectrum`: SNAP, equal to
LAMMPS's) turns neighbour pair vectors into per-atom features; an atomic model
(`LinearModel`) turns features into atomic energies; an optional reference pair potential
(`ZBL`) is added; `Potential` gives energy, forces and stress from one autograd path and
`MatforgeCalculator` plugs it into ASE. `linear` fits linear models on energies, forces
and stresses as FitSNAP does; `md` runs molecular dynamics; `io` saves and loads models.
"""

from matforge.mlip.batch import AtomsBatch
from matforge.mlip.calculator import MatforgeCalculator
from matforge.mlip.data import read_fitsnap_groups, read_fitsnap_json, read_structures
from matforge.mlip.io import load_potential, save_potential
from matforge.mlip.linear import GroupWeights, assemble, error_table, solve
from matforge.mlip.md import run_md
from matforge.mlip.potential import LinearModel, Potential
from matforge.mlip.snap import Bispectrum, SnapParameters
from matforge.mlip.zbl import ZBL

__all__ = [
    "ZBL",
    "AtomsBatch",
    "Bispectrum",
    "GroupWeights",
    "LinearModel",
    "MatforgeCalculator",
    "Potential",
    "SnapParameters",
    "assemble",
    "error_table",
    "load_potential",
    "read_fitsnap_groups",
    "read_fitsnap_json",
    "read_structures",
    "run_md",
    "save_potential",
    "solve",
]

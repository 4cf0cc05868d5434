"""Differentiable CALPHAD (in progress).

Available: TDB databases read with pycalphad; each phase's Gibbs energy compiled from
pycalphad's `Model` into a batched float64 torch function with autograd
(`build_phase_models`); database subsets (`subset_database`); and a first batched
equilibrium solver (`equilibrium`: lower convex hull of sampled points, then Newton on the
KKT conditions with phase addition/removal and miscibility gaps), verified against
pycalphad on Al-Zn and Cu-Mg. Not yet: robust convergence for ordered phases (B2/L12),
speed, implicit-function-theorem gradients, inverse design and the remaining CLI commands.
"""

from matforge.calphad.database import load_database
from matforge.calphad.gradients import (
    EquilibriumSensitivities,
    differentiable_equilibrium,
    sensitivities,
)
from matforge.calphad.model import STANDARD_PRESSURE, PhaseModel, build_phase_models
from matforge.calphad.solver import EquilibriumResult, equilibrium
from matforge.calphad.subset import subset_database

__all__ = [
    "STANDARD_PRESSURE",
    "EquilibriumResult",
    "EquilibriumSensitivities",
    "PhaseModel",
    "build_phase_models",
    "differentiable_equilibrium",
    "equilibrium",
    "load_database",
    "sensitivities",
    "subset_database",
]

"""Differentiable CALPHAD: TDB Gibbs energies in torch, batched equilibrium, IFT gradients.

Steps a user can see, as in pycalphad: `load_database` (pycalphad's TDB reader),
`build_phase_models` (each phase's Gibbs energy compiled to torch), `equilibrium` (N
conditions at once), `sensitivities` / `differentiable_equilibrium` (implicit-function
derivatives with respect to bulk composition and temperature), `calphad.design` (composition
design through the solver), `calphad.diagram` (binary phase diagrams) and
`calphad.reference` (side-by-side comparison with pycalphad).
"""

from matforge.calphad.database import load_database
from matforge.calphad.gradients import (
    EquilibriumSensitivities,
    differentiable_equilibrium,
    sensitivities,
)
from matforge.calphad.model import STANDARD_PRESSURE, PhaseModel, build_phase_models
from matforge.calphad.ranges import TemperatureRangeWarning
from matforge.calphad.solver import EquilibriumResult, equilibrium
from matforge.calphad.subset import subset_database

__all__ = [
    "STANDARD_PRESSURE",
    "EquilibriumResult",
    "EquilibriumSensitivities",
    "PhaseModel",
    "TemperatureRangeWarning",
    "build_phase_models",
    "differentiable_equilibrium",
    "equilibrium",
    "load_database",
    "sensitivities",
    "subset_database",
]

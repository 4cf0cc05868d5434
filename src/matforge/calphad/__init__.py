"""Differentiable CALPHAD (in progress).

Available now: TDB databases read with pycalphad, and each phase's Gibbs energy compiled
from pycalphad's `Model` into a batched float64 torch function with autograd
(`build_phase_models`). Planned: batched equilibrium, implicit-function-theorem gradients,
inverse design and the `matforge calphad` commands.
"""

from matforge.calphad.database import load_database
from matforge.calphad.model import STANDARD_PRESSURE, PhaseModel, build_phase_models

__all__ = ["STANDARD_PRESSURE", "PhaseModel", "build_phase_models", "load_database"]

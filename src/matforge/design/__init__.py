"""Constrained Bayesian optimization of alloy compositions (`matforge design`).

Pieces a user can see and swap, as in BoTorch: `DesignSpace` (compositions on the bounded
simplex), oracles (`SyntheticHEAOracle`, `CallableOracle`, `TableOracle`), surrogates
(`GPSurrogate`, `DeepEnsembleSurrogate`, `cross_validate`), feasibility from CALPHAD
(`CalphadFeasibility`), acquisition functions (`design.acquisition`) and the loop
(`run_loop`); `design.job` assembles them from a YAML config.
"""

from matforge.design.feasibility import CalphadFeasibility, FeasibilityModel
from matforge.design.loop import DesignHistory, LoopSettings, run_loop
from matforge.design.oracles import CallableOracle, Observation, SyntheticHEAOracle, TableOracle
from matforge.design.space import DesignSpace
from matforge.design.strength import VarvenneCurtin
from matforge.design.surrogates import (
    DeepEnsembleSurrogate,
    GPSurrogate,
    cross_validate,
    make_surrogate,
)

__all__ = [
    "CallableOracle",
    "CalphadFeasibility",
    "DeepEnsembleSurrogate",
    "DesignHistory",
    "DesignSpace",
    "FeasibilityModel",
    "GPSurrogate",
    "LoopSettings",
    "Observation",
    "SyntheticHEAOracle",
    "TableOracle",
    "VarvenneCurtin",
    "cross_validate",
    "make_surrogate",
    "run_loop",
]

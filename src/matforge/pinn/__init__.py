"""Physics-informed neural networks for inverse problems in layered elastic composites.

The toolkit: geometry and collocation sampling with residual-based adaptive resampling
(`sampling`), loss terms as composable pieces with fixed or gradient-norm weights
(`losses`), the Adam-then-L-BFGS loop (`training`), bounded and ordered physical unknowns
(`parameters`). The problems: exact layered-bar solutions and the sigmoid-smoothed layered
modulus with its two blending rules (`layered`); the 1D inverse problem (`bar`: a
cusp-capturing PINN in mixed form, with the closed-form nonlinear least-squares fit and its
Laplace spread as the reference); the 2D plane-strain plate (`plate`) with its finite-element
ground truth (`fem`, scikit-fem); ensembles on bootstrap resamples for the uncertainty
(`uncertainty`); the `matforge pinn identify` job (`job`, `report`).
"""

from matforge.pinn.bar import (
    BarIdentification,
    BarSettings,
    ClosedFormFit,
    fit_closed_form,
    identify_bar,
)
from matforge.pinn.layered import LayeredBar, smoothed_modulus
from matforge.pinn.losses import CompositeLoss, FixedWeights, GradientNormWeights, LossTerm
from matforge.pinn.parameters import LogBoxParameter, OrderedInterfaces
from matforge.pinn.plate import (
    PlateIdentification,
    PlateLoading,
    PlateSettings,
    identify_plate,
    solve_plate_pinn,
)
from matforge.pinn.sampling import Box, resample_by_residual
from matforge.pinn.training import TrainingHistory, train
from matforge.pinn.uncertainty import EnsembleEstimate, ensemble_identify

__all__ = [
    "BarIdentification",
    "BarSettings",
    "Box",
    "ClosedFormFit",
    "CompositeLoss",
    "EnsembleEstimate",
    "FixedWeights",
    "GradientNormWeights",
    "LayeredBar",
    "LogBoxParameter",
    "LossTerm",
    "OrderedInterfaces",
    "PlateIdentification",
    "PlateLoading",
    "PlateSettings",
    "TrainingHistory",
    "ensemble_identify",
    "fit_closed_form",
    "identify_bar",
    "identify_plate",
    "resample_by_residual",
    "smoothed_modulus",
    "solve_plate_pinn",
    "train",
]

"""Physics-informed neural networks for inverse problems in layered elastic composites.

Built: exact layered-bar solutions and the smoothed layered modulus (`layered`), bounded
and ordered physical unknowns (`parameters`), and the 1D inverse problem (`bar`): a
cusp-capturing PINN in mixed form that identifies layer moduli and interfaces from
displacements, with the closed-form nonlinear least-squares fit as the reference; the 2D
ground truth (`fem`: plane-strain P2 finite elements of a layered plate, scikit-fem). Not
yet built: the 2D PINN, adaptive collocation and loss weights, and `matforge pinn identify`.
"""

from matforge.pinn.bar import BarIdentification, BarSettings, fit_closed_form, identify_bar
from matforge.pinn.layered import LayeredBar, smoothed_modulus
from matforge.pinn.parameters import LogBoxParameter, OrderedInterfaces

__all__ = [
    "BarIdentification",
    "BarSettings",
    "LayeredBar",
    "LogBoxParameter",
    "OrderedInterfaces",
    "fit_closed_form",
    "identify_bar",
    "smoothed_modulus",
]

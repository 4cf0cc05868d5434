"""Physics-informed neural networks for inverse problems in layered elastic composites.

In progress: exact layered solutions and the smoothed layered modulus (`layered`) exist;
the PINN toolkit, the 2D plane-strain case and `matforge pinn identify` are being built.
"""

from matforge.pinn.layered import LayeredBar, smoothed_modulus

__all__ = ["LayeredBar", "smoothed_modulus"]

"""Exchange-correlation functionals in torch, run self-consistently in PySCF.

- `functionals`: the `XCFunctional` seam and the reference LDA, PBE and SCAN (equal to
  libxc); `get_functional(name)`.
- `pyscf_bridge`: `attach(mf, functional)` puts a torch functional into a PySCF RKS/UKS
  object; potentials by autograd.
- `density`: `SpinDensity`, the variables a functional sees.
"""

from matforge.xc.density import SpinDensity
from matforge.xc.functionals import FUNCTIONALS, XCFunctional, get_functional
from matforge.xc.pyscf_bridge import attach, evaluate

__all__ = ["FUNCTIONALS", "SpinDensity", "XCFunctional", "attach", "evaluate", "get_functional"]

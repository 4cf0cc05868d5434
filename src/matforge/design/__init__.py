"""Constrained Bayesian optimization of alloy compositions (`matforge design`).

`DesignSpace` (compositions on the bounded simplex) is the first piece; surrogates,
feasibility from CALPHAD, acquisitions and the loop build on it.
"""

from matforge.design.space import DesignSpace

__all__ = ["DesignSpace"]

"""Ground truth for the 2D problem: plane-strain finite elements (scikit-fem, extra `pinn`).

A plate [0, W] x [0, H] of n layers through its thickness (interfaces at heights y_k,
moduli E_k, one Poisson ratio) rests on a roller at y = 0 (u_y = 0), is held by a roller
at x = 0 (u_x = 0), is free at x = W (or on a roller there too) and carries a normal
traction t_y(x) = t (1 + a cos(pi x / W)) on y = H (uniform for a = 0). With rollers on
both sides the plate is one cell of a laminate under a periodic load: the field is smooth
inside each layer, without the stress singularity of a free edge at the interfaces.
Quadratic triangles (P2) on a structured mesh whose rows include the interfaces, so no
element straddles one; the Lamé coefficients are evaluated at quadrature points. For one
layer the solution is the uniform field u_x = nu (1 + nu) p x / E, u_y = -(1 - nu^2) p y / E
(p = -t_y), which P2 reproduces to rounding (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from matforge.pinn.layered import check_layers


@dataclass(frozen=True)
class LayeredPlate:
    moduli: Sequence[float]
    interfaces: Sequence[float]
    width: float = 2.0
    height: float = 1.0
    poisson: float = 0.3
    traction: float = -1.0  # mean t_y on the top face (negative: compression)
    load_variation: float = 0.0  # t_y(x) = traction (1 + load_variation cos(pi x / W))
    right_edge: Literal["free", "roller"] = "free"

    def __post_init__(self) -> None:
        check_layers(self.moduli, self.interfaces, self.height)
        if not 0 <= self.poisson < 0.5:
            raise ValueError(f"poisson must lie in [0, 0.5), got {self.poisson}")
        if self.right_edge not in ("free", "roller"):
            raise ValueError(f"right_edge must be 'free' or 'roller', got {self.right_edge!r}")

    def top_traction(self, x: np.ndarray) -> np.ndarray:
        return self.traction * (1 + self.load_variation * np.cos(np.pi * x / self.width))

    def modulus(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(self.moduli, dtype=float)[
            np.searchsorted(np.asarray(self.interfaces, dtype=float), y, side="right")
        ]


@dataclass
class PlateSolution:
    plate: LayeredPlate
    basis: object
    displacement: np.ndarray  # all degrees of freedom
    stiffness: object  # the assembled matrix
    load: np.ndarray
    bottom: np.ndarray  # u_y degrees of freedom on y = 0

    def bottom_reaction(self) -> float:
        """Sum of the vertical support forces on y = 0 (equals -traction x width)."""
        residual = self.stiffness @ self.displacement - self.load
        return float(residual[self.bottom].sum())

    def at(self, points: np.ndarray) -> np.ndarray:
        """Displacements (N, 2) at points (N, 2) inside the plate."""
        probe = self.basis.probes(np.asarray(points, dtype=float).T)
        return (probe @ self.displacement).reshape(2, -1).T  # probes are component-major


def _axis(low: float, high: float, cells: int, breaks: Sequence[float]) -> np.ndarray:
    """Equally spaced nodes plus the break points, near-duplicates merged (a sliver row of
    elements of height 1e-17 would wreck the solve)."""
    nodes = np.sort(np.concatenate([np.linspace(low, high, cells + 1), np.asarray(breaks)]))
    keep = np.concatenate([[True], np.diff(nodes) > 1e-9 * (high - low)])
    nodes = nodes[keep]
    for b in breaks:  # snap the kept neighbour onto the break exactly
        nodes[np.argmin(np.abs(nodes - b))] = b
    return nodes


def solve_plate(plate: LayeredPlate, *, cells_x: int = 40, cells_y: int = 40) -> PlateSolution:
    try:
        from skfem import (
            Basis,
            BilinearForm,
            ElementTriP2,
            ElementVector,
            FacetBasis,
            LinearForm,
            MeshTri,
            asm,
            condense,
            solve,
        )
        from skfem.helpers import ddot, eye, sym_grad, trace
    except ImportError as error:
        raise ImportError(
            "the 2D ground truth needs scikit-fem: pip install 'matforge[pinn]'"
        ) from error
    nu = plate.poisson
    mesh = MeshTri.init_tensor(
        _axis(0.0, plate.width, cells_x, []), _axis(0.0, plate.height, cells_y, plate.interfaces)
    )
    element = ElementVector(ElementTriP2())
    basis = Basis(mesh, element)

    @BilinearForm
    def stiffness(u, v, w):
        e = plate.modulus(w.x[1])
        lam = e * nu / ((1 + nu) * (1 - 2 * nu))
        mu = e / (2 * (1 + nu))
        strain = sym_grad(u)
        return ddot(2 * mu * strain + lam * eye(trace(strain), 2), sym_grad(v))

    top = FacetBasis(
        mesh, element, facets=mesh.facets_satisfying(lambda x: np.isclose(x[1], plate.height))
    )

    @LinearForm
    def load(v, w):
        return plate.top_traction(w.x[0]) * v[1]

    k = asm(stiffness, basis)
    f = asm(load, top)
    bottom = basis.get_dofs(lambda x: np.isclose(x[1], 0.0)).all("u^2")

    def vertical_rollers(x: np.ndarray) -> np.ndarray:
        on_left = np.isclose(x[0], 0.0)
        return on_left | np.isclose(x[0], plate.width) if plate.right_edge == "roller" else on_left

    fixed = np.concatenate([basis.get_dofs(vertical_rollers).all("u^1"), bottom])
    return PlateSolution(plate, basis, solve(*condense(k, f, D=fixed)), k, f, bottom)

"""Solid-solution strength of FCC high-entropy alloys: the Varvenne-Curtin model.

C. Varvenne, A. Luque, W. A. Curtin, "Theory of strengthening in fcc high entropy alloys",
Acta Mater. 118 (2016) 164-176 (eqs. for tau_y0, dE_b and the low-temperature/high-stress
form of tau_y(T, rate)); C. Varvenne, W. A. Curtin, Scripta Mater. 142 (2018) 92-95.
Each element is a solute in the effective average alloy; strength comes from the misfit
volumes dV_n = V_n - V_alloy:

    tau_y0 = 0.01785 a^(-1/3) mu ((1+nu)/(1-nu))^(4/3) (sum_n c_n dV_n^2 / b^6)^(2/3)
    dE_b   = 1.5618  a^(1/3)  mu b^3 ((1+nu)/(1-nu))^(2/3) (sum_n c_n dV_n^2 / b^6)^(1/3)
    tau_y  = tau_y0 (1 - (k T / dE_b ln(rate0 / rate))^(2/3)),   sigma_y = M tau_y

with V_alloy = sum c_n V_n (Vegard), b = (4 V_alloy)^(1/3) / sqrt(2) (FCC). The alloy's
isotropic shear modulus and Poisson ratio are rules of mixtures of elemental values (the
papers use measured alloy moduli instead; for a synthetic benchmark oracle the rule of
mixtures keeps the model defined everywhere on the simplex). The tau_y(T) form above is
the paper's low-temperature branch, valid while tau_y / tau_y0 >= 0.5; `yield_strength`
reports the ratio so a caller can see when a condition leaves it.

Everything is torch, so the strength is differentiable with respect to composition.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from matforge.core.errors import ConfigError

if TYPE_CHECKING:
    from matforge.design.atomistic import AlloyProperties

BOLTZMANN = 1.380649e-23  # J/K
ANGSTROM3 = 1e-30  # m^3

#: Apparent atomic volumes (A^3) of the elements in FCC Ni-Co-Cr-Fe-Mn alloys, fitted by
#: Varvenne, Luque, Curtin, Acta Mater. 118 (2016) 164, Table 1, to measured alloy lattice
#: constants (Vegard's law over the family). Co, Fe, Mn and Ni agree with the values that
#: SSPredict (D. Wen, github.com/DS-Wen/SSPredict) lists for the same model.
APPARENT_VOLUME_A3: dict[str, float] = {
    "Co": 11.12,
    "Cr": 12.27,
    "Fe": 12.09,
    "Mn": 12.60,
    "Ni": 10.94,
}

#: Elemental isotropic moduli (polycrystal, room temperature) as pymatgen's periodic table
#: lists them (data from WebElements, www.webelements.com): shear ("rigidity") modulus in
#: GPa and Poisson ratio. Mn has no tabulated shear modulus or Poisson ratio; its values are
#: derived from the listed Young's (198 GPa) and bulk (120 GPa) moduli by isotropic
#: elasticity: nu = (3K - E) / 6K, G = 3KE / (9K - E).
_MN_E, _MN_K = 198.0, 120.0
SHEAR_MODULUS_GPA: dict[str, float] = {
    "Co": 75.0,
    "Cr": 115.0,
    "Fe": 82.0,
    "Mn": 3 * _MN_K * _MN_E / (9 * _MN_K - _MN_E),
    "Ni": 76.0,
}
POISSON_RATIO: dict[str, float] = {
    "Co": 0.31,
    "Cr": 0.21,
    "Fe": 0.29,
    "Mn": (3 * _MN_K - _MN_E) / (6 * _MN_K),
    "Ni": 0.31,
}


@dataclass(frozen=True)
class VarvenneCurtin:
    """Varvenne-Curtin yield strength of an FCC solid solution (see module docstring).

    `temperature` in K, `strain_rate` in 1/s. Constants as in the paper: alpha = 0.123
    (dislocation line tension coefficient), reference rate 1e4 /s, Taylor factor 3.06.
    """

    elements: tuple[str, ...]
    temperature: float = 300.0
    strain_rate: float = 1e-3
    alpha: float = 0.123
    reference_rate: float = 1e4
    taylor_factor: float = 3.06

    def __post_init__(self) -> None:
        missing = [e for e in self.elements if e not in APPARENT_VOLUME_A3]
        if missing:
            raise ConfigError(
                f"the Varvenne-Curtin oracle has element parameters for "
                f"{sorted(APPARENT_VOLUME_A3)} only, not {missing}"
            )
        if self.temperature <= 0 or self.strain_rate <= 0:
            raise ConfigError("temperature and strain_rate must be positive")

    @classmethod
    def for_elements(cls, elements: Sequence[str], **options: float) -> VarvenneCurtin:
        return cls(tuple(elements), **options)

    def _vector(self, table: dict[str, float], like: torch.Tensor) -> torch.Tensor:
        return torch.tensor([table[e] for e in self.elements], dtype=like.dtype)

    def components(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """tau_y0 (Pa), dE_b (J), the thermal ratio tau_y / tau_y0 and sigma_y (MPa)."""
        x = torch.as_tensor(x, dtype=torch.float64)
        x = x / x.sum(dim=-1, keepdim=True)
        volumes = self._vector(APPARENT_VOLUME_A3, x)
        v_alloy = (x * volumes).sum(dim=-1)
        misfit2 = (x * (volumes - v_alloy[..., None]) ** 2).sum(dim=-1)
        mu = (x * self._vector(SHEAR_MODULUS_GPA, x)).sum(dim=-1) * 1e9
        nu = (x * self._vector(POISSON_RATIO, x)).sum(dim=-1)
        return self.from_alloy(v_alloy, misfit2, mu, nu)

    def from_alloy(
        self,
        volume: torch.Tensor,
        misfit2: torch.Tensor,
        shear_modulus: torch.Tensor,
        poisson_ratio: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """The model's formulas from alloy quantities: volume per atom (A^3), sum_n c_n
        dV_n^2 (A^6), shear modulus (Pa), Poisson ratio; `components` feeds them from the
        element tables, `strength_from_properties` from atomistic calculations."""
        v_alloy = torch.as_tensor(volume, dtype=torch.float64)
        mu = torch.as_tensor(shear_modulus, dtype=torch.float64)
        nu = torch.as_tensor(poisson_ratio, dtype=torch.float64)
        b = (4 * v_alloy) ** (1 / 3) / math.sqrt(2)  # A
        ratio = (1 + nu) / (1 - nu)
        # Clamped so that the pure element (zero misfit) gets zero strength with a finite
        # derivative instead of 0 ** (1/3) blowing up.
        misfit = (torch.as_tensor(misfit2, dtype=torch.float64) / b**6).clamp(min=1e-30)
        tau0 = 0.01785 * self.alpha ** (-1 / 3) * mu * ratio ** (4 / 3) * misfit ** (2 / 3)
        energy = (
            1.5618 * self.alpha ** (1 / 3) * mu * (b**3 * ANGSTROM3) * ratio ** (2 / 3)
        ) * misfit ** (1 / 3)
        thermal = (
            BOLTZMANN * self.temperature / energy * math.log(self.reference_rate / self.strain_rate)
        )
        factor = (1 - thermal.clamp(max=1.0) ** (2 / 3)).clamp(min=0.0)
        sigma = self.taylor_factor * tau0 * factor / 1e6
        return {
            "tau_y0": tau0,
            "energy_barrier": energy,
            "thermal_factor": factor,
            "sigma_y": sigma,
        }

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Yield strength (MPa) of compositions x (..., len(elements))."""
        return self.components(x)["sigma_y"]


def strength_from_properties(
    properties: AlloyProperties, model: VarvenneCurtin | None = None
) -> dict[str, float]:
    """Varvenne-Curtin strength from atomistically computed alloy properties
    (`matforge.design.atomistic`): the alloy's own volume, misfit volumes, and isotropic
    moduli from its C11, C12, C44, instead of element tables and rules of mixtures."""
    model = model or VarvenneCurtin(elements=())  # its element tables are not used here
    elements = tuple(properties.composition)
    c = properties.composition
    misfit2 = sum(c[e] * properties.misfit_volumes[e] ** 2 for e in elements)
    values = (
        properties.volume_per_atom,
        misfit2,
        properties.shear_modulus * 1e9,
        properties.poisson_ratio,
    )
    out = model.from_alloy(*(torch.tensor(v, dtype=torch.float64) for v in values))
    return {k: float(v) for k, v in out.items()}

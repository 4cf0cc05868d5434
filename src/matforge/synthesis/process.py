"""The processing model: an age-hardenable Al-Cu alloy through heat treatments and rolling.

State of the material (per row of an (n, 4) tensor, `STATE`): mean grain size d (m),
dislocation density rho (m^-2), volume fraction f of theta precipitates and their mean
radius r (m). The solute left in solution follows from f (mass balance). Operations:

- heat treatment at T for t (any temperature: solution treatment, recovery anneal or
  ageing), then a water quench that keeps the state: static recovery (second order),
  static recrystallization (JMAK with a rate proportional to the stored dislocation
  density, new grains of a size set by that density), grain growth (parabolic),
  precipitation toward the equilibrium fraction at T (JMAK) or dissolution above the
  solvus (first order), and LSW coarsening of the radius;
- cold rolling to a true strain (Kocks-Mecking storage of dislocations; grain size kept,
  texture-free);
- stop.

Constants (`AlloyConstants`), their sources, and which are chosen:
- Al: G = 26 GPa, b = 0.286 nm, Taylor factor M = 3.06, alpha = 0.3 (Hull and Bacon,
  Introduction to Dislocations, 5th ed. 2011; Kocks and Mecking 2003); friction stress
  10 MPa and Hall-Petch k = 0.04 MPa m^1/2 (Hansen, Scr. Mater. 51 (2004) 801).
- Al-Cu solvus c_eq = A exp(-H/RT) through 2.48 at.% at 821 K and 0.07 at.% at 473 K
  (Murray, Int. Met. Rev. 30 (1985) 211): A = 1.95, H = 29.8 kJ/mol; alloy Al-1.7 at.% Cu
  (Al-4 wt.% Cu, solvus 756 K); precipitates theta (Al2Cu, 33 at.% Cu).
- Solid solution k = 900 MPa in sigma = k c^(2/3) (chosen: 40 MPa at 1.7 at.%, the
  magnitude of Al-Cu data).
- Kinetic prefactors and activation energies: grain growth Q = 140 kJ/mol, precipitation
  and coarsening Q = 130 kJ/mol (Cu diffusion in Al, 136 kJ/mol: Mehrer, Diffusion in
  Solids, 2007), recovery and recrystallization Q = 150 / 180 kJ/mol; prefactors chosen
  for realistic times (peak age at 443 K after ~10 h, recrystallization at 623 K within
  minutes after 50% reduction, growth of 50 um grains by ~20% in 1 h at 793 K). The
  Kocks-Mecking constants k1 = 1.5e8 m^-1, k2 = 8 (chosen: rho from 1e12 to ~1e14 m^-2 at
  a true strain of 0.7). Shearing constant k_s = 0.01 (chosen: a peak of ~250 MPa).
- Ductility proxy: 0.30 exp(-(forest + precipitation stress) / 350 MPa): falls as the
  hardening contributions rise (chosen; a proxy, not a fracture model).

Everything is batched over rows so one call steps many episodes (the agents' training),
and a Gymnasium environment (env.py) steps one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

import matforge.synthesis.kinetics as law

STATE = ("grain_m", "dislocations_m2", "precipitate_fraction", "precipitate_radius_m")
THETA_CU = 0.333  # at. fraction of Cu in Al2Cu


@dataclass(frozen=True)
class AlloyConstants:
    copper: float = 0.017  # at. fraction in the alloy
    solvus_a: float = 1.95
    solvus_h: float = 29.8e3  # J/mol
    shear_modulus: float = 26e9
    burgers: float = 0.286e-9
    taylor: float = 3.06
    alpha: float = 0.3
    friction: float = 10e6
    hall_petch_k: float = 0.04e6  # Pa m^1/2
    solid_solution_k: float = 900e6
    shearing_k: float = 0.01
    growth_n: float = 2.0
    growth_k0: float = 1.1e-3  # m^2/s
    growth_q: float = 140e3
    recovery_k0: float = 3.0e-6  # m^2/s
    recovery_q: float = 150e3
    rex_k0: float = 1.2e13  # 1/s at rho = rho_ref
    rex_q: float = 180e3
    rex_exponent: float = 2.0
    rex_rho_ref: float = 1e14
    rex_rho_threshold: float = 5e12  # below this nothing recrystallizes
    rex_grain_ref: float = 20e-6  # new grain size at rho_ref; scales as (rho_ref / rho)^(1/3)
    annealed_rho: float = 1e12
    km_k1: float = 1.5e8
    km_k2: float = 8.0
    precipitation_k0: float = 8.0e10  # 1/s
    precipitation_q: float = 130e3
    precipitation_exponent: float = 1.5
    dissolution_k0: float = 3.0e10
    coarsening_k0: float = 4.5e-12  # m^3 K/s
    coarsening_q: float = 130e3
    nucleus_radius: float = 1.0e-9
    ductility_scale: float = 350e6


class ProcessModel:
    """Operations on batches of states; all inputs are tensors of shape (n,)."""

    def __init__(self, constants: AlloyConstants | None = None) -> None:
        self.c = constants or AlloyConstants()

    def equilibrium_solute(self, kelvin: torch.Tensor) -> torch.Tensor:
        return self.c.solvus_a * torch.exp(-self.c.solvus_h / (law.R * kelvin))

    def equilibrium_fraction(self, kelvin: torch.Tensor) -> torch.Tensor:
        """Lever rule between the alpha matrix at the solvus and theta."""
        solute = self.equilibrium_solute(kelvin).clamp(max=self.c.copper)
        return (self.c.copper - solute) / (THETA_CU - solute)

    def solute(self, fraction: torch.Tensor) -> torch.Tensor:
        """Cu left in solution (at. fraction) by mass balance."""
        return ((self.c.copper - fraction * THETA_CU) / (1 - fraction)).clamp(min=0.0)

    def heat_treat(
        self, state: torch.Tensor, kelvin: torch.Tensor, seconds: torch.Tensor
    ) -> torch.Tensor:
        c = self.c
        grain, rho, fraction, radius = state.unbind(-1)
        recovered = law.recovery(rho, kelvin, seconds, k0=c.recovery_k0, q=c.recovery_q)
        driving = ((rho - c.rex_rho_threshold) / c.rex_rho_ref).clamp(min=0.0)
        rate = law.arrhenius(c.rex_k0, c.rex_q, kelvin) * driving
        recrystallized = law.jmak_fraction(rate, seconds, c.rex_exponent)
        new_grain = c.rex_grain_ref * (c.rex_rho_ref / rho.clamp(min=c.rex_rho_threshold)) ** (
            1 / 3
        )
        grain = recrystallized * torch.minimum(new_grain, grain) + (1 - recrystallized) * grain
        rho = recrystallized * c.annealed_rho + (1 - recrystallized) * recovered
        rho = rho.clamp(min=c.annealed_rho)
        grain = law.grain_growth(grain, kelvin, seconds, n=c.growth_n, k0=c.growth_k0, q=c.growth_q)
        target = self.equilibrium_fraction(kelvin)
        forming = law.jmak_fraction(
            law.arrhenius(c.precipitation_k0, c.precipitation_q, kelvin),
            seconds,
            c.precipitation_exponent,
        )
        dissolving = 1 - torch.exp(
            -law.arrhenius(c.dissolution_k0, c.precipitation_q, kelvin) * seconds
        )
        new_fraction = torch.where(
            target > fraction,
            fraction + (target - fraction) * forming,
            fraction - (fraction - target) * dissolving,
        )
        seeded = torch.where(fraction > 1e-6, radius, torch.full_like(radius, c.nucleus_radius))
        radius = law.lsw_coarsening(seeded, kelvin, seconds, k0=c.coarsening_k0, q=c.coarsening_q)
        radius = torch.where(new_fraction > 1e-6, radius, torch.full_like(radius, c.nucleus_radius))
        return torch.stack([grain, rho, new_fraction.clamp(min=0.0), radius], dim=-1)

    def cold_roll(self, state: torch.Tensor, strain: torch.Tensor) -> torch.Tensor:
        grain, rho, fraction, radius = state.unbind(-1)
        rho = law.kocks_mecking(rho, strain, k1=self.c.km_k1, k2=self.c.km_k2, taylor=self.c.taylor)
        return torch.stack([grain, rho, fraction, radius], dim=-1)

    def strength_contributions(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.c
        grain, rho, fraction, radius = state.unbind(-1)
        return {
            "friction": torch.full_like(grain, c.friction),
            "grain_boundaries": law.hall_petch(grain, c.hall_petch_k),
            "dislocations": law.taylor_stress(
                rho,
                alpha=c.alpha,
                shear_modulus=c.shear_modulus,
                burgers=c.burgers,
                taylor=c.taylor,
            ),
            "solid_solution": law.solid_solution_stress(self.solute(fraction), c.solid_solution_k),
            "precipitates": law.orowan_shearing_stress(
                fraction,
                radius,
                shear_modulus=c.shear_modulus,
                burgers=c.burgers,
                taylor=c.taylor,
                shearing_k=c.shearing_k,
            ),
        }

    def properties(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        """Yield strength (MPa, sum of the contributions) and the ductility proxy."""
        parts = self.strength_contributions(state)
        strength = sum(parts.values())
        hardening = parts["dislocations"] + parts["precipitates"]
        ductility = 0.30 * torch.exp(-hardening / self.c.ductility_scale)
        return {"yield_strength_MPa": strength / 1e6, "ductility": ductility}

    def peak_radius(self) -> float:
        """The radius (m) where shearing and Orowan stresses cross; beyond it the alloy is
        over-aged. Both scale as sqrt(f), so the crossing does not depend on the fraction:
        solved once by bisection on log r (shearing rises with r, Orowan falls)."""
        if not hasattr(self, "_peak_radius"):
            c = self.c
            f = torch.tensor([0.01], dtype=torch.float64)
            low, high = math.log(2e-10), math.log(1e-6)
            for _ in range(80):
                middle = 0.5 * (low + high)
                r = torch.tensor([math.exp(middle)], dtype=torch.float64)
                shearing = c.taylor * c.shearing_k * c.shear_modulus * torch.sqrt(f * r / c.burgers)
                total = law.orowan_shearing_stress(
                    f,
                    r,
                    shear_modulus=c.shear_modulus,
                    burgers=c.burgers,
                    taylor=c.taylor,
                    shearing_k=c.shearing_k,
                )
                if float(total[0]) >= float(shearing[0]) * (1 - 1e-12):
                    low = middle
                else:
                    high = middle
            self._peak_radius = math.exp(0.5 * (low + high))
        return self._peak_radius

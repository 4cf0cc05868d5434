"""A stand-in for experiments: intercritical annealing of a cold-rolled dual-phase steel.

Process: cold-rolling reduction (cold work), then isothermal annealing at temperature T for
time t, then a quench. Structure: the mean grain size d and the phase fractions of ferrite
and of martensite (the austenite formed during annealing, quenched). Property: the yield
strength. The physics, and where each number comes from:

- Recrystallized grain size after cold work eps: d_rex = d_ref (eps / 0.5)^-0.5 with
  d_ref = 6 um (the inverse power of strain is the usual static-recrystallization form,
  e.g. Sellars, in Hot Deformation and Processing of Aluminium Alloys, 1990; exponent and
  prefactor chosen here).
- Isothermal grain growth d^n - d_rex^n = k0 t exp(-Q/RT), n = 2 (parabolic growth,
  Burke & Turnbull, Prog. Met. Phys. 3 (1952) 220); Q = 200 kJ/mol and k0 chosen so that
  d grows from ~6 to ~10 um in 1 h at 800 C (chosen, of the order of grain-boundary
  diffusion in iron).
- Austenite formation: JMAK (Johnson-Mehl-Avrami-Kolmogorov) f = f_eq(T)(1 - exp(-(k t)^m)),
  k = k_j exp(-Q_j/RT), m = 1 (chosen, site-saturated growth), Q_j = 150 kJ/mol, k_j with
  a half time of ~0.5 h at 780 C (chosen). f_eq rises linearly from Ac1 to Ac3 (lever-rule
  approximation) with Andrews' empirical formulas (K.W. Andrews, JISI 203 (1965) 721):
  Ac1 = 723 - 10.7 Mn - 16.9 Ni + 29.1 Si + 16.9 Cr (C), Ac3 = 910 - 203 sqrt(C) - 15.2 Ni
  + 44.7 Si + 104 V + 31.5 Mo (C), for a 0.10 C - 1.5 Mn - 0.2 Si (wt%) steel:
  Ac1 = 713 C, Ac3 = 855 C. Carbon and manganese may vary as design variables
  (`carbon_wt`, `manganese_wt`): they move Ac1 and Ac3 only (the carbon dependence of
  the martensite's strength is not modelled).
- Yield strength: Hall-Petch per phase, sigma_i = sigma0_i + k_i d^-1/2, combined by the
  rule of mixtures. Ferrite: sigma0 = 70.6 MPa, k = 0.74 MPa m^1/2 (low-carbon steel; G.E.
  Dieter, Mechanical Metallurgy, SI ed., McGraw-Hill 1988, ch. 6). Martensite: sigma0 =
  900 MPa, k = 0.40 MPa m^1/2 (chosen to give a fully martensitic strength of ~1,000 MPa,
  typical of 0.1 C martensite).
- Optional, off by default (`martensite_carbon_exponent` > 0): an effect the chain's
  Hall-Petch property link does not contain, so that a design can be scored against a
  truth that is not the fitted model's own form. Carbon partitions into the austenite
  during intercritical annealing (lever rule, ferrite holding 0.02 wt%), so the
  martensite's carbon is C_M = (C - 0.02 (1 - f_M)) / f_M (clipped to 0.02-1.2 wt%), and
  its strength scales as sigma0_M (C_M / 0.3)^n, n = 0.5: the square-root dependence of
  martensite strength on its carbon content (G.R. Speich and H. Warlimont, JISI 206
  (1968) 385); 0.3 wt% (about C_M at f_M = 0.3 for the 0.10 C steel) keeps sigma0_M there.
- Measurement noise: grain size multiplicative 5% (log-normal); phase fractions by manual
  point counting with 500 points (ASTM E562), i.e. binomial: standard deviation
  sqrt(f (1 - f) / 500), 0.022 at f = 0.5 and zero for a single-phase structure; strength
  10 MPa (Gaussian).

Constants marked "chosen" are not fits to a specific data set: they give realistic
magnitudes and trends. Everything is vectorized and written in torch (float64), so the
noise-free truth can be differentiated and searched densely.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

R = 8.314462618  # J/(mol K)

PROCESS = ("temperature_C", "time_h", "cold_work", "carbon_wt", "manganese_wt")
STRUCTURE = ("grain_size_um", "fraction_ferrite", "fraction_martensite")
PROPERTY = "yield_strength_MPa"
PHASES = ("ferrite", "martensite")


def andrews_ac1(mn, si, ni=0.0, cr=0.0):  # wt%, floats or tensors -> C
    return 723.0 - 10.7 * mn - 16.9 * ni + 29.1 * si + 16.9 * cr


def andrews_ac3(c, si, ni=0.0, v=0.0, mo=0.0):  # wt%, floats or tensors -> C
    return 910.0 - 203.0 * c**0.5 - 15.2 * ni + 44.7 * si + 104.0 * v + 31.5 * mo


@dataclass(frozen=True)
class DualPhaseSteel:
    carbon: float = 0.10
    manganese: float = 1.5
    silicon: float = 0.2
    d_ref_um: float = 6.0
    rex_exponent: float = 0.5
    growth_exponent: float = 2.0
    growth_q: float = 200e3  # J/mol
    growth_k0: float = 1.1e8  # um^n / s
    jmak_m: float = 1.0
    jmak_q: float = 150e3
    jmak_k0: float = 1.07e4  # 1/s
    sigma0: tuple[float, float] = (70.6, 900.0)  # MPa, ferrite and martensite
    hall_petch_k: tuple[float, float] = (0.74, 0.40)  # MPa m^1/2
    noise_grain: float = 0.05
    point_count: int = 500  # ASTM E562 grid points per fraction measurement
    noise_strength: float = 10.0
    martensite_carbon_exponent: float = 0.0  # > 0: see the module docstring

    @property
    def ac1(self) -> float:
        return andrews_ac1(self.manganese, self.silicon)

    @property
    def ac3(self) -> float:
        return andrews_ac3(self.carbon, self.silicon)

    def structure(
        self,
        temperature_c: torch.Tensor,
        time_h: torch.Tensor,
        cold_work: torch.Tensor,
        carbon_wt: torch.Tensor | None = None,
        manganese_wt: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Noise-free grain size (um) and phase fractions; carbon and manganese (wt%, default
        the steel's) move Ac1 and Ac3 by Andrews' formulas."""
        kelvin = temperature_c + 273.15
        carbon = carbon_wt if carbon_wt is not None else torch.full_like(kelvin, self.carbon)
        manganese = (
            manganese_wt if manganese_wt is not None else torch.full_like(kelvin, self.manganese)
        )
        ac1 = andrews_ac1(manganese, self.silicon)
        ac3 = andrews_ac3(carbon, self.silicon)
        seconds = time_h * 3600.0
        d_rex = self.d_ref_um * (cold_work / 0.5) ** (-self.rex_exponent)
        n = self.growth_exponent
        grown = d_rex**n + self.growth_k0 * seconds * torch.exp(-self.growth_q / (R * kelvin))
        grain = grown ** (1.0 / n)
        f_eq = ((temperature_c - ac1) / (ac3 - ac1)).clamp(0.0, 1.0)
        rate = self.jmak_k0 * torch.exp(-self.jmak_q / (R * kelvin))
        martensite = f_eq * (1.0 - torch.exp(-((rate * seconds) ** self.jmak_m)))
        return {
            "grain_size_um": grain,
            "fraction_ferrite": 1.0 - martensite,
            "fraction_martensite": martensite,
        }

    def strength(
        self, structure: dict[str, torch.Tensor], carbon_wt: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Rule of mixtures of per-phase Hall-Petch strengths, MPa (with the optional
        carbon dependence of the martensite, module docstring)."""
        inverse_root = (structure["grain_size_um"] * 1e-6) ** -0.5  # m^-1/2
        total = 0.0
        for phase, s0, k in zip(PHASES, self.sigma0, self.hall_petch_k, strict=True):
            if phase == "martensite" and self.martensite_carbon_exponent > 0:
                s0 = s0 * self._martensite_carbon_factor(structure, carbon_wt)
            total = total + structure[f"fraction_{phase}"] * (s0 + k * inverse_root)
        return total

    def _martensite_carbon_factor(
        self, structure: dict[str, torch.Tensor], carbon_wt: torch.Tensor | None
    ) -> torch.Tensor:
        martensite = structure["fraction_martensite"]
        carbon = carbon_wt if carbon_wt is not None else torch.full_like(martensite, self.carbon)
        partitioned = (carbon - 0.02 * (1 - martensite)) / martensite.clamp(min=1e-3)
        return (partitioned.clamp(0.02, 1.2) / 0.3) ** self.martensite_carbon_exponent

    def truth(
        self,
        temperature_c: torch.Tensor,
        time_h: torch.Tensor,
        cold_work: torch.Tensor,
        carbon_wt: torch.Tensor | None = None,
        manganese_wt: torch.Tensor | None = None,
    ) -> torch.Tensor:
        structure = self.structure(temperature_c, time_h, cold_work, carbon_wt, manganese_wt)
        return self.strength(structure, carbon_wt)

    def truth_of(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        """Noise-free strength of named process values (missing ones at their defaults)."""
        n = len(values["temperature_C"])
        cold = values.get("cold_work", torch.full((n,), 0.5, dtype=torch.float64))
        return self.truth(
            values["temperature_C"],
            values["time_h"],
            cold,
            values.get("carbon_wt"),
            values.get("manganese_wt"),
        )

    def sample(
        self,
        n: int,
        rng: np.random.Generator,
        bounds: dict[str, tuple[float, float]],
        *,
        noise: bool = True,
    ) -> pd.DataFrame:
        """n random experiments: T uniform, t log-uniform, cold work uniform in `bounds`."""
        t_low, t_high = bounds["temperature_C"]
        h_low, h_high = bounds["time_h"]
        c_low, c_high = bounds.get("cold_work", (0.5, 0.5))
        temperature = rng.uniform(t_low, t_high, n)
        time = 10 ** rng.uniform(math.log10(h_low), math.log10(h_high), n)
        cold = rng.uniform(c_low, c_high, n)
        process = {"temperature_C": temperature, "time_h": time, "cold_work": cold}
        for name in ("carbon_wt", "manganese_wt"):
            if name in bounds:
                process[name] = rng.uniform(*bounds[name], n)
        tensors = {k: torch.tensor(v, dtype=torch.float64) for k, v in process.items()}
        structure = {
            k: v.numpy()
            for k, v in self.structure(
                tensors["temperature_C"],
                tensors["time_h"],
                tensors["cold_work"],
                tensors.get("carbon_wt"),
                tensors.get("manganese_wt"),
            ).items()
        }
        if noise:
            structure["grain_size_um"] = structure["grain_size_um"] * np.exp(
                rng.normal(0.0, self.noise_grain, n)
            )
            counted = rng.binomial(self.point_count, structure["fraction_martensite"].clip(0, 1))
            martensite = counted / self.point_count
            structure["fraction_martensite"] = martensite
            structure["fraction_ferrite"] = 1.0 - martensite
        measured = {k: torch.tensor(v) for k, v in structure.items()}
        strength = self.strength(measured, tensors.get("carbon_wt")).numpy()
        if noise:
            strength = strength + rng.normal(0.0, self.noise_strength, n)
        return pd.DataFrame(
            {
                **process,
                **structure,
                PROPERTY: strength,
            }
        )

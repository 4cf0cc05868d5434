"""Feasibility of a composition from CALPHAD: is the target phase the only one present?

`CalphadFeasibility` solves the equilibrium (matforge's batched solver, `calphad`) at a
design temperature and reports the target phase's fraction. A thermodynamic database is a
model with errors of its own, so the probability of feasibility (PoF) is an expectation over
a perturbed temperature, T' ~ N(T, sigma_T^2): a shift of the temperature is the simplest
stand-in for an error in the relative Gibbs energies of the competing phases (an error dG
in a phase's energy moves its boundary like a temperature shift of dG / dS). The expectation
uses Gauss-Hermite nodes, so PoF is deterministic and the same composition always gets the
same value:

    PoF(x) = sum_k w_k 1[f_target(x, T + sigma_T z_k) >= threshold]

`soft_probability` is the smooth stand-in that gradient-based acquisition optimizers need:
the indicator becomes exp(-max(0, threshold - f) / softness), which is 1 wherever the hard
indicator is 1 and decays with the amount of second phase (softness 0.01: 1% of a second
phase beyond the threshold costs a factor e). It carries autograd through the solver's
implicit-function-theorem derivatives (`calphad.gradients`): d PoF / d x is non-zero only
where some node sees a two-phase state; inside a single-phase region the phase fraction is
exactly 1 and its derivative 0 (documented behaviour of the IFT gradient at phase
boundaries, see `calphad.gradients`). `soft_second_phase_fraction` is the differentiable
E_T[1 - f_target] for the penalized objective.

Results are cached per composition (rounded to 1e-9), because a design loop asks for the
same candidates many times.

A condition that does not converge within its batch is solved again, with the other
failures and then alone (the solver's result for a condition must not depend on the
compositions asked with it). Unconverged equilibria are never silent: such a (composition,
temperature) that still fails counts as
infeasible (fraction NaN in `phase_fractions`, indicator 0 in PoF, second-phase fraction 1,
soft fraction 0), each call that meets one warns with the count
(`UnconvergedEquilibriumWarning`), and `unconverged` / `evaluated` keep the running tally
that the design run reports.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from matforge.core.errors import ConfigError

#: A target-phase fraction at or above this counts as single phase (the solver reports
#: fractions like 0.9999999999 for a single-phase state).
SINGLE_PHASE_THRESHOLD = 0.999


class UnconvergedEquilibriumWarning(UserWarning):
    """Some equilibria behind a feasibility value did not converge (counted infeasible)."""


@runtime_checkable
class FeasibilityModel(Protocol):
    """Anything that gives a probability of feasibility for compositions (n, d)."""

    def probability(self, x: torch.Tensor) -> torch.Tensor: ...

    def is_feasible(self, x: torch.Tensor) -> torch.Tensor: ...


def gauss_hermite_normal(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z_k and weights w_k with sum w_k g(z_k) ~ E[g(Z)], Z ~ N(0, 1)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    return nodes, weights / weights.sum()


@dataclass
class CalphadFeasibility:
    """Target-phase feasibility from equilibrium calculations (see module docstring).

    `elements` are the design's element symbols in design order ("Co", "Cr", ...); the
    CALPHAD components are their upper-case names, in the models' (alphabetical) order.
    """

    models: Mapping[str, object]
    elements: tuple[str, ...]
    phase: str
    temperature: float
    temperature_sigma: float = 0.0
    nodes: int = 3
    threshold: float = SINGLE_PHASE_THRESHOLD
    softness: float = 0.01
    _cache: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict, repr=False)
    #: Equilibria solved so far, and how many of them did not converge.
    evaluated: int = field(default=0, init=False)
    unconverged: int = field(default=0, init=False)
    #: Wall time spent solving them (s).
    seconds: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if self.phase not in self.models:
            raise ConfigError(
                f"feasibility phase {self.phase!r} is not among the CALPHAD phases "
                f"{sorted(self.models)}"
            )
        calphad_elements = list(next(iter(self.models.values())).elements)  # type: ignore[attr-defined]
        wanted = [e.upper() for e in self.elements]
        if sorted(wanted) != calphad_elements:
            raise ConfigError(
                f"design elements {list(self.elements)} do not match the CALPHAD "
                f"components {calphad_elements}"
            )
        self._order = [wanted.index(c) for c in calphad_elements]
        if self.temperature_sigma > 0:
            z, w = gauss_hermite_normal(self.nodes)
        else:
            z, w = np.zeros(1), np.ones(1)
        self.temperatures = self.temperature + self.temperature_sigma * z
        self.weights = w
        self._column = sorted(self.models).index(self.phase)

    @classmethod
    def from_database(
        cls,
        database: str,
        elements: Sequence[str],
        phase: str,
        temperature: float,
        *,
        phases: Sequence[str] | None = None,
        **options: float,
    ) -> CalphadFeasibility:
        from matforge.calphad import build_phase_models

        models = build_phase_models(database, [e.upper() for e in elements], phases)
        return cls(models, tuple(elements), phase.upper(), temperature, **options)

    def _calphad_bulk(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self._order].to(torch.float64)

    def _tally(self, failed: torch.Tensor, what: str) -> None:
        """Count the solved conditions and the unconverged ones; warn when there are any."""
        failures, total = int(failed.sum()), failed.numel()
        self.evaluated += total
        self.unconverged += failures
        if failures:
            warnings.warn(
                f"{failures} of {total} CALPHAD equilibria ({what}) did not converge; "
                "those compositions count as infeasible there",
                UnconvergedEquilibriumWarning,
                stacklevel=3,
            )

    def _solve(self, x: torch.Tensor, temperatures: np.ndarray) -> torch.Tensor:
        """Target-phase fraction (n, len(temperatures)); unconverged conditions give NaN."""
        from matforge.calphad import equilibrium, sensitivities

        n, k = len(x), len(temperatures)
        bulk = self._calphad_bulk(x).repeat(k, 1)
        temps = torch.tensor(np.repeat(temperatures, n), dtype=torch.float64)
        start = time.perf_counter()
        result = equilibrium(self.models, temps, bulk)
        amounts = sensitivities(self.models, result).amounts[:, self._column].clone()
        failed = ~result.converged.clone()
        if len(failed) > 1:
            # A condition that fails in a batch can converge alone (measured on the Al-Cu-Ni
            # slice of MF Steel: 27 of 234 failed in one batch, those tried alone converged),
            # and an answer must not depend on which other compositions were asked with it.
            # Retried together first (cheap), then one by one.
            indices = torch.nonzero(failed).flatten()
            for batch in [indices, *indices[:, None]]:
                batch = batch[failed[batch]]  # only those still failing
                if len(batch) == 0:
                    continue
                retry = equilibrium(self.models, temps[batch], bulk[batch])
                solved = sensitivities(self.models, retry).amounts[:, self._column]
                ok = retry.converged
                amounts[batch[ok]] = solved[ok]
                failed[batch[ok]] = False
        self.seconds += time.perf_counter() - start
        self._tally(failed, "feasibility")
        amounts[failed] = float("nan")
        return amounts.reshape(k, n).T

    def phase_fractions(self, x: torch.Tensor) -> torch.Tensor:
        """Target-phase fraction at each quadrature temperature, (n, nodes); cached."""
        x = torch.as_tensor(x, dtype=torch.float64).detach().reshape(-1, len(self.elements))
        keys = [tuple(np.round(row * 1e9).astype(np.int64).tolist()) for row in x.numpy()]
        missing = [i for i, key in enumerate(keys) if key not in self._cache]
        if missing:
            fractions = self._solve(x[missing], self.temperatures).numpy()
            for i, row in zip(missing, fractions, strict=True):
                self._cache[keys[i]] = row
        return torch.tensor(np.stack([self._cache[key] for key in keys]), dtype=torch.float64)

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        """PoF for compositions (..., d), quadrature over the temperature; no gradient."""
        shape = x.shape[:-1]
        fractions = self.phase_fractions(x)
        single = (fractions >= self.threshold).to(torch.float64)  # NaN compares False
        weights = torch.tensor(self.weights, dtype=torch.float64)
        return (single @ weights).reshape(shape)

    def is_feasible(self, x: torch.Tensor) -> torch.Tensor:
        """Ground truth at the design temperature itself (no perturbation).

        With an odd number of quadrature nodes the middle node is the design temperature
        itself, so the cached PoF equilibria already hold the answer."""
        shape = x.shape[:-1]
        x = torch.as_tensor(x, dtype=torch.float64).reshape(-1, len(self.elements))
        middle = np.flatnonzero(self.temperatures == self.temperature)
        if len(middle):
            fraction = self.phase_fractions(x)[:, int(middle[0])]
        else:
            fraction = self._solve(x, np.array([self.temperature]))[:, 0]
        return (fraction >= self.threshold).reshape(shape)

    def second_phase_fraction(self, x: torch.Tensor) -> torch.Tensor:
        """Expected amount of phases other than the target, E_T[1 - f_target]; an
        unconverged condition counts as all second phase (tallied in `phase_fractions`)."""
        shape = x.shape[:-1]
        fractions = self.phase_fractions(x)
        fractions = torch.where(torch.isnan(fractions), torch.zeros_like(fractions), fractions)
        weights = torch.tensor(self.weights, dtype=torch.float64)
        return ((1 - fractions) @ weights).reshape(shape)

    def differentiable_fractions(self, x: torch.Tensor) -> torch.Tensor:
        """Target-phase fraction (n, nodes) with autograd through the equilibrium (IFT);
        not cached. An unconverged condition counts as fraction 0 (infeasible, with zero
        gradient), and is tallied and warned about."""
        from matforge.calphad import differentiable_equilibrium

        n, k = x.shape[0], len(self.temperatures)
        bulk = x[:, self._order].to(torch.float64).repeat(k, 1)
        temps = torch.tensor(np.repeat(self.temperatures, n), dtype=torch.float64)
        amounts, _, _ = differentiable_equilibrium(self.models, temps, bulk)
        fraction = amounts[:, self._column]
        failed = torch.isnan(fraction.detach())
        self._tally(failed, "smooth feasibility")
        fraction = torch.where(failed, torch.zeros_like(fraction), fraction)
        return fraction.reshape(k, n).T

    def soft_probability(self, x: torch.Tensor) -> torch.Tensor:
        """Smooth PoF for compositions (..., d), differentiable in x (module docstring)."""
        shape = x.shape[:-1]
        fraction = self.differentiable_fractions(x.reshape(-1, len(self.elements)))
        soft = torch.exp(-(self.threshold - fraction).clamp(min=0) / self.softness)
        return (soft @ torch.tensor(self.weights, dtype=torch.float64)).reshape(shape)

    def soft_second_phase_fraction(self, x: torch.Tensor) -> torch.Tensor:
        """E_T[1 - f_target] for compositions (..., d), differentiable in x."""
        shape = x.shape[:-1]
        fraction = self.differentiable_fractions(x.reshape(-1, len(self.elements)))
        weights = torch.tensor(self.weights, dtype=torch.float64)
        return ((1 - fraction) @ weights).reshape(shape)

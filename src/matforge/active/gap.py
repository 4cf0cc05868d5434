"""Active learning with GAP: refitting it, and its predictive variance as the uncertainty.

`GapTrainer.fit` refits a SOAP GAP on the labels gathered so far (gap_fit's solution, with
n_sparse capped at the environments there are, which early iterations have few of).
`GPVarianceUncertainty` is the GP's own predictive uncertainty: per atom the norm of the
predicted force standard deviations (eV/A, the committee measure's unit), per
configuration the largest over its atoms. Its `with_added` returns the variance after
hypothetically adding configurations as force and energy observations (a QR update of the
posterior factor; labels are not needed), so the greedy batch selection of the grades
works with it too. Features, Jacobians and prior variances of each configuration are
computed once and kept (they do not depend on the fit), so re-scoring a pool after a refit
costs one kernel-row product per configuration.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg
import torch
from ase import Atoms

from matforge.active.uncertainty import UncertaintyEstimate, _from_atoms
from matforge.core.errors import ConfigError
from matforge.mlip.gap import (
    Environments,
    GapModel,
    GapSettings,
    dtc_variance,
    fit_gap,
    kernel_rows,
)
from matforge.mlip.gap_variance import prior_energy_variance, prior_force_variance
from matforge.mlip.potential import Potential
from matforge.mlip.soap import SOAP


class GapTrainer:
    """Refits a SOAP GAP (a template potential) with fixed gap_fit settings."""

    def __init__(self, template: Potential, settings: GapSettings) -> None:
        if not isinstance(template.descriptor, SOAP):
            raise ConfigError("GapTrainer needs a potential with a SOAP descriptor")
        self.template = template
        self.settings = settings

    def fit(self, labelled: Sequence[Atoms]) -> Potential:
        if not labelled:
            raise ConfigError("cannot fit a potential on an empty training set")
        elements = self.template.elements
        counts = [sum(s == e for a in labelled for s in a.get_chemical_symbols()) for e in elements]
        n_sparse = min([self.settings.n_sparse, *[c for c in counts if c > 0]])
        settings = dataclasses.replace(self.settings, n_sparse=n_sparse)
        return fit_gap(copy.deepcopy(self.template), list(labelled), settings).potential


def _key(atoms: Atoms) -> Any:
    """The cache key: the store's uid (an object id could be reused after it is freed)."""
    return atoms.info.get("uid")


class GPVarianceUncertainty:
    """Predicted force standard deviation of a fitted GAP, per atom and per configuration."""

    name = "gp_variance"

    def __init__(
        self,
        potential: Potential,
        settings: GapSettings,
        *,
        cache: dict | None = None,
        r_factor: np.ndarray | None = None,
        training: Sequence[Atoms] | None = None,
    ) -> None:
        model = potential.model
        if not isinstance(model, GapModel) or not isinstance(potential.descriptor, SOAP):
            raise ConfigError("GPVarianceUncertainty needs a fitted SOAP GAP")
        if not model.has_variance:
            raise ConfigError("this GAP carries no posterior factors; refit it")
        self.potential = potential
        self.settings = settings
        self.cache = cache if cache is not None else {}
        self.cholesky = model.cholesky_mm.numpy()
        self.r_factor = r_factor if r_factor is not None else model.r_factor.numpy()
        self.training = list(training) if training is not None else None

    def _prepared(self, atoms: Atoms, model: GapModel | None = None) -> dict:
        """Environments and prior variances of one configuration (kept across fits), with
        its kernel rows against `model`'s sparse set (the fitted one by default)."""
        key = _key(atoms)
        entry = self.cache.get(key) if key is not None else None
        descriptor = self.potential.descriptor
        model = model if model is not None else self.potential.model
        if entry is None:
            batch = self.potential.batch([atoms])
            env = Environments.of(descriptor, batch)
            entry = {
                "batch": batch,
                "env": env,
                "prior_e": prior_energy_variance(model, env.features, batch).numpy(),
                "prior_f": prior_force_variance(descriptor, model, batch, environments=env)
                .numpy()
                .reshape(-1),
            }
            if key is not None:
                self.cache[key] = entry
        if entry.get("model") is not model:
            energy, force, _, _ = kernel_rows(
                descriptor, model, entry["batch"], virials=False, environments=entry["env"]
            )
            entry["rows_e"] = energy.numpy()
            entry["rows_f"] = force.reshape(-1, force.shape[-1]).numpy()
            entry["model"] = model
        return entry

    def estimate(self, structures: Sequence[Atoms]) -> UncertaintyEstimate:
        per_atom, energy_std = [], []
        for atoms in structures:
            entry = self._prepared(atoms)
            var_f = dtc_variance(self.cholesky, self.r_factor, entry["rows_f"], entry["prior_f"])
            var_e = dtc_variance(self.cholesky, self.r_factor, entry["rows_e"], entry["prior_e"])
            per_atom.append(np.sqrt(np.clip(var_f, 0.0, None).reshape(-1, 3).sum(axis=1)))
            energy_std.append(float(np.sqrt(max(var_e[0], 0.0))) / len(atoms))
        return _from_atoms(self.name, per_atom, energy_std_per_atom=np.array(energy_std))

    def with_added(self, structures: Sequence[Atoms]) -> GPVarianceUncertainty:
        """The uncertainty after observing the energies and forces of `structures`.

        With the training configurations known (`training`), the added configurations'
        atoms also join the sparse set, as a refit would let them; the DTC factors are
        rebuilt from the cached environments (no labels needed). Without them only the
        observations are added, which cannot lower the part of the variance that lies
        outside the sparse set's span.
        """
        if self.training is None:
            blocks = [self.r_factor]
            for atoms in structures:
                blocks += self._observation_rows(atoms, self.potential.model)
            r = scipy.linalg.qr(np.vstack(blocks), mode="r")[0][: len(self.r_factor)]
            return GPVarianceUncertainty(
                self.potential, self.settings, cache=self.cache, r_factor=r
            )
        model = self.potential.model
        added = [self._prepared(a) for a in structures]
        features = torch.cat([model.sparse_features, *[e["env"].features for e in added]])
        species = torch.cat([model.sparse_species, *[e["batch"].species for e in added]])
        extended = GapModel(
            features,
            species,
            torch.zeros(len(features)),
            model.e0,
            delta=model.delta,
            zeta=model.zeta,
        )
        k_mm = extended.kernel(features, species).numpy()
        chol = scipy.linalg.cholesky(
            k_mm + max(self.settings.sparse_jitter, 1e-8) * np.eye(len(k_mm)), lower=True
        )
        blocks = [chol.T]
        for atoms in [*self.training, *structures]:
            blocks += self._observation_rows(atoms, extended)
        r = scipy.linalg.qr(np.vstack(blocks), mode="r")[0][: len(k_mm)]
        extended.cholesky_mm, extended.r_factor = torch.from_numpy(chol), torch.from_numpy(r)
        # a new Potential: assigning to a shallow copy would change the fitted one's modules
        potential = Potential(self.potential.descriptor, extended, self.potential.reference)
        return GPVarianceUncertainty(
            potential, self.settings, cache=self.cache, training=[*self.training, *structures]
        )

    def _observation_rows(self, atoms: Atoms, model: GapModel) -> list[np.ndarray]:
        sigma_e, sigma_f, _ = self.settings.default_sigma
        entry = self._prepared(atoms, model)
        scale_e = sigma_e * np.sqrt(len(atoms)) if self.settings.sigma_per_atom else sigma_e
        return [entry["rows_e"] / scale_e, entry["rows_f"] / sigma_f]


def gap_force_errors(potential: Potential, structures: Sequence[Atoms]) -> np.ndarray:
    """Force-component errors (flattened) of a potential on labelled structures."""
    out = potential(potential.batch(list(structures)), stress=False)
    truth = np.concatenate([a.get_forces() for a in structures])
    return (out.forces.numpy() - truth).reshape(-1)

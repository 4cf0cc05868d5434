"""Active learning with GAP: refitting it, and its predictive variance as the uncertainty.

`GapTrainer.fit` refits a SOAP GAP on the labels gathered so far (gap_fit's solution, with
n_sparse capped at the environments there are, which early iterations have few of).
`GPVarianceUncertainty` is the GP's own predictive uncertainty: per atom the norm of the
predicted force standard deviations (eV/A, the committee measure's unit), per
configuration the largest over its atoms (`aggregate="max"`) or their root mean square
(`"rms"`: the predicted force RMSE of the configuration, which ranks configurations by
what they would add to an atom-averaged error rather than by their single most unusual
atom). Its `with_added` returns the variance after
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
from typing import Any, Literal

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
    two_body_term,
)
from matforge.mlip.gap_variance import prior_variances
from matforge.mlip.potential import Potential
from matforge.mlip.soap import SOAP
from matforge.mlip.two_body import sparse_covariance


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
    """Predicted force standard deviation of a fitted GAP, per atom and per configuration.

    The sparse set is the fitted model's plus, after `with_added`, blocks of hypothetical
    sparse points; kernel rows are cached per configuration and block, so adding a block
    costs only the new columns, and a pool is scored with one pair of triangular solves
    per chunk of configurations.
    """

    name = "gp_variance"

    def __init__(
        self,
        potential: Potential,
        settings: GapSettings,
        *,
        cache: dict | None = None,
        r_factor: np.ndarray | None = None,
        training: Sequence[Atoms] | None = None,
        blocks: Sequence[GapModel] | None = None,
        cholesky: np.ndarray | None = None,
        chunk: int = 64,
        aggregate: Literal["max", "rms"] = "max",
    ) -> None:
        model = potential.model
        if not isinstance(model, GapModel) or not isinstance(potential.descriptor, SOAP):
            raise ConfigError("GPVarianceUncertainty needs a fitted SOAP GAP")
        if not model.has_variance:
            raise ConfigError("this GAP carries no posterior factors; refit it")
        self.potential = potential
        self.settings = settings
        self.cache = cache if cache is not None else {}
        self.blocks = list(blocks) if blocks is not None else [model]
        self.cholesky = cholesky if cholesky is not None else model.cholesky_mm.numpy()
        self.r_factor = r_factor if r_factor is not None else model.r_factor.numpy()
        self.training = list(training) if training is not None else None
        self.chunk = chunk
        if aggregate not in ("max", "rms"):
            raise ConfigError(f"aggregate must be 'max' or 'rms', got {aggregate!r}")
        self.aggregate = aggregate

    def _copy(self, **changes: Any) -> GPVarianceUncertainty:
        fields = {
            "cache": self.cache,
            "r_factor": self.r_factor,
            "training": self.training,
            "blocks": self.blocks,
            "cholesky": self.cholesky,
            "chunk": self.chunk,
            "aggregate": self.aggregate,
        }
        return GPVarianceUncertainty(self.potential, self.settings, **(fields | changes))

    def _prepared(self, atoms: Atoms) -> dict:
        """Environments and prior variances of one configuration (kept across fits)."""
        key = _key(atoms)
        entry = self.cache.get(key) if key is not None else None
        if entry is None:
            batch = self.potential.batch([atoms])
            env = Environments.of(self.potential.descriptor, batch)
            prior_e, prior_f = prior_variances(self.potential, batch, env)
            entry = {
                "batch": batch,
                "env": env,
                "prior_e": prior_e,
                "prior_f": prior_f.reshape(-1),
                "rows": {},
            }
            if key is not None:
                self.cache[key] = entry
        return entry

    def _rows(self, atoms: Atoms) -> tuple[dict, np.ndarray, np.ndarray]:
        """The entry, and its energy (1, M) and force (3N, M) rows against every block."""
        entry = self._prepared(atoms)
        cached = entry["rows"]
        live = {id(b) for b in self.blocks} | {id(two_body_term(self.potential))}
        for stale in [k for k, (block, _, _) in cached.items() if k not in live]:
            if len(cached) > 2 * len(self.blocks):
                del cached[stale]
        for block in self.blocks:
            if id(block) not in cached:
                energy, force, _, _ = kernel_rows(
                    self.potential.descriptor,
                    block,
                    entry["batch"],
                    virials=False,
                    environments=entry["env"],
                )
                cached[id(block)] = (
                    block,
                    energy.numpy(),
                    force.reshape(-1, force.shape[-1]).numpy(),
                )
        parts = [cached[id(b)] for b in self.blocks]
        term = two_body_term(self.potential)
        if term is not None:
            if id(term) not in cached:
                energy, force, _ = term.rows(entry["batch"], entry["env"].vectors)
                cached[id(term)] = (term, energy.numpy(), force.reshape(-1, term.n_sparse).numpy())
            parts.append(cached[id(term)])
        rows_e = np.hstack([p[1] for p in parts])
        rows_f = np.hstack([p[2] for p in parts])
        return entry, rows_e, rows_f

    def estimate(self, structures: Sequence[Atoms]) -> UncertaintyEstimate:
        per_atom, energy_std = [], []
        for start in range(0, len(structures), self.chunk):
            part = structures[start : start + self.chunk]
            prepared = [self._rows(a) for a in part]
            rows_f = np.vstack([f for _, _, f in prepared])
            prior_f = np.concatenate([e["prior_f"] for e, _, _ in prepared])
            rows_e = np.vstack([r for _, r, _ in prepared])
            prior_e = np.concatenate([e["prior_e"] for e, _, _ in prepared])
            var_f = dtc_variance(self.cholesky, self.r_factor, rows_f, prior_f)
            var_e = dtc_variance(self.cholesky, self.r_factor, rows_e, prior_e)
            sizes = np.cumsum([len(f) for _, _, f in prepared])[:-1]
            for v in np.split(var_f, sizes):
                per_atom.append(np.sqrt(np.clip(v, 0.0, None).reshape(-1, 3).sum(axis=1)))
            energy_std.extend(np.sqrt(np.clip(var_e, 0.0, None)) / np.array([len(a) for a in part]))
        estimate = _from_atoms(self.name, per_atom, energy_std_per_atom=np.array(energy_std))
        if self.aggregate == "max":
            return estimate
        rms = np.array([float(np.sqrt(np.mean(v**2))) if len(v) else 0.0 for v in per_atom])
        return dataclasses.replace(estimate, per_structure=rms)

    def with_added(self, structures: Sequence[Atoms]) -> GPVarianceUncertainty:
        """The uncertainty after observing the energies and forces of `structures`.

        With the training configurations known (`training`), the added configurations'
        atoms also join the sparse set, as a refit would let them, and the DTC factors are
        rebuilt from the cached rows (no labels needed). Without them only the observations
        are added, which cannot lower the part of the variance that lies outside the
        sparse set's span.
        """
        if self.training is None:
            blocks = [self.r_factor]
            for atoms in structures:
                blocks += self._observation_rows(atoms)
            r = scipy.linalg.qr(np.vstack(blocks), mode="r")[0][: len(self.r_factor)]
            return self._copy(r_factor=r)
        model = self.blocks[0]
        added = [self._prepared(a) for a in structures]
        block = GapModel(
            torch.cat([e["env"].features for e in added]),
            torch.cat([e["batch"].species for e in added]),
            torch.zeros(sum(len(e["env"].features) for e in added), dtype=torch.float64),
            model.e0,
            delta=model.delta,
            zeta=model.zeta,
        )
        blocks = [*self.blocks, block]
        union = GapModel(
            torch.cat([b.sparse_features for b in blocks]),
            torch.cat([b.sparse_species for b in blocks]),
            torch.zeros(sum(b.n_sparse for b in blocks), dtype=torch.float64),
            model.e0,
            delta=model.delta,
            zeta=model.zeta,
        )
        k_mm = union.kernel(union.sparse_features, union.sparse_species).numpy()
        term = two_body_term(self.potential)
        if term is not None:  # the 2-body block stays last, as in the fit
            k_mm = scipy.linalg.block_diag(k_mm, sparse_covariance(term))
        chol = scipy.linalg.cholesky(
            k_mm + max(self.settings.sparse_jitter, 1e-8) * np.eye(len(k_mm)), lower=True
        )
        extended = self._copy(
            r_factor=np.zeros((0, 0)),
            training=[*self.training, *structures],
            blocks=blocks,
            cholesky=chol,
        )
        rows = [chol.T]
        for atoms in extended.training:
            rows += extended._observation_rows(atoms)
        extended.r_factor = scipy.linalg.qr(np.vstack(rows), mode="r")[0][: len(k_mm)]
        return extended

    def _observation_rows(self, atoms: Atoms) -> list[np.ndarray]:
        sigma_e, sigma_f, _ = self.settings.default_sigma
        _, rows_e, rows_f = self._rows(atoms)
        scale_e = sigma_e * np.sqrt(len(atoms)) if self.settings.sigma_per_atom else sigma_e
        return [rows_e / scale_e, rows_f / sigma_f]


def gap_force_errors(potential: Potential, structures: Sequence[Atoms]) -> np.ndarray:
    """Force-component errors (flattened) of a potential on labelled structures."""
    out = potential(potential.batch(list(structures)), stress=False)
    truth = np.concatenate([a.get_forces() for a in structures])
    return (out.forces.numpy() - truth).reshape(-1)

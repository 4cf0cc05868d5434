"""The active-learning database: every configuration, label and decision, as it happens.

An ASE database (SQLite file by default; a ``postgresql://`` URL works too, with psycopg2)
holds one row per configuration the loop chose to label, with key-value pairs

    role         "train" or "test"
    status       "pending" (selected, not yet labelled), "labelled" or "failed"
    iteration    0 for the initial set, then the active-learning iteration
    uid          a stable identifier ("c-<hex>") of the configuration
    reason       why it was selected, e.g. "maxvol 3.2 >= 2"
    measure, uncertainty   the uncertainty measure and its value when selected
    attempts, error, worker, oracle_started, oracle_seconds   the oracle call's history

Selected configurations are written as "pending" in one transaction before any oracle call;
each label then replaces its row in place (same id) in its own transaction. A run killed at
any moment therefore keeps every completed label, and a restart labels exactly the pending
rows again, so each configuration is labelled once. The loop's own records (the learning
curve, the settings' fingerprint) live in the database's metadata.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from matforge.active.oracle import Labels
from matforge.core.errors import ConfigError

ROLES = ("train", "test")


def new_uid() -> str:
    return f"c-{uuid.uuid4().hex[:16]}"


def _text(value: str, limit: int = 400) -> str:
    """ASE refuses strings that read as numbers or booleans; keep messages storable."""
    value = value[:limit]
    try:
        float(value)
    except ValueError:
        return value if value not in ("True", "False") else f"'{value}'"
    return f"'{value}'"


class ActiveStore:
    def __init__(self, url: str | Path) -> None:
        from ase.db import connect

        text = str(url)
        if "://" in text and not text.startswith(("postgresql://", "postgres://")):
            raise ConfigError(f"database {text!r}: expected a file path or a postgresql:// URL")
        if "://" not in text:
            Path(text).parent.mkdir(parents=True, exist_ok=True)
        self.url = text
        self.db = connect(text, type="postgresql" if "://" in text else "db")

    # -- writing ---------------------------------------------------------------------------
    def add_pending(
        self,
        structures: Sequence[Atoms],
        *,
        role: str,
        iteration: int,
        reasons: Sequence[str],
        measure: str = "",
        uncertainties: Sequence[float] | None = None,
        keys: Sequence[dict[str, Any]] | None = None,
    ) -> list[int]:
        """Store selected, unlabelled configurations in one transaction; returns row ids.
        `keys`: more key-value pairs per configuration (ASE's reserved names refused)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        values = (
            list(uncertainties) if uncertainties is not None else [float("nan")] * len(structures)
        )
        extra = list(keys) if keys is not None else [{}] * len(structures)
        ids = []
        with self.db:
            for atoms, reason, value, more in zip(structures, reasons, values, extra, strict=True):
                uid = atoms.info.get("uid") or new_uid()
                atoms.info["uid"] = uid
                clean = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
                pairs: dict[str, Any] = {
                    "role": role,
                    "status": "pending",
                    "iteration": int(iteration),
                    "uid": uid,
                    "reason": _text(reason),
                    "attempts": 0,
                }
                if measure:
                    pairs["measure"] = measure
                if np.isfinite(value):
                    pairs["uncertainty"] = float(value)
                pairs.update(more)
                ids.append(self.db.write(clean, **pairs))
        return ids

    def add_labelled(
        self, structures: Sequence[Atoms], *, role: str, iteration: int, reason: str
    ) -> list[int]:
        """Store configurations that come with their labels (e.g. a given test set)."""
        ids = []
        with self.db:
            for atoms in structures:
                uid = atoms.info.get("uid") or new_uid()
                ids.append(
                    self.db.write(
                        atoms,
                        role=role,
                        status="labelled",
                        iteration=int(iteration),
                        uid=uid,
                        reason=_text(reason),
                        attempts=0,
                    )
                )
        return ids

    def record_label(self, row_id: int, labels: Labels, attempts: int) -> None:
        row = self.db.get(id=row_id)
        atoms = row.toatoms()
        atoms.calc = SinglePointCalculator(
            atoms, energy=labels.energy, forces=labels.forces, stress=labels.stress
        )
        self.db.update(
            row_id,
            atoms=atoms,
            delete_keys=["error"],
            status="labelled",
            attempts=int(attempts),
            worker=_text(labels.worker or "unknown"),
            oracle_seconds=float(labels.seconds),
            oracle_started=float(labels.started),
        )

    def record_failure(self, row_id: int, message: str, attempts: int, final: bool) -> None:
        self.db.update(
            row_id,
            status="failed" if final else "pending",
            attempts=int(attempts),
            error=_text(message),
        )

    def label_pending(self, runner: Any, roles: Sequence[str] = ROLES) -> Any:
        """Label every pending configuration of `roles` with `runner` (an `OracleRunner`),
        each label or failure written as it arrives; returns the runner's report, or None
        when nothing was pending."""
        pending = [a for role in roles for a in self.structures(role=role, status="pending")]
        if not pending:
            return None
        return runner.run(
            [(a.info["row_id"], a) for a in pending],
            on_result=lambda key, labels, attempt: self.record_label(key, labels, attempt),
            on_failure=lambda key, message, attempt, final: self.record_failure(
                key, message, attempt, final
            ),
        )

    # -- reading ---------------------------------------------------------------------------
    def _atoms(self, row: Any) -> Atoms:
        atoms = row.toatoms()
        atoms.info.update(row.key_value_pairs)
        atoms.info["row_id"] = row.id
        return atoms

    def structures(self, *, role: str, status: str) -> list[Atoms]:
        return [self._atoms(r) for r in self.db.select(role=role, status=status, sort="id")]

    def count(self, **selection: Any) -> int:
        return self.db.count(**selection)

    def last_iteration(self) -> int:
        iterations = [
            r.iteration for r in self.db.select(role="train", columns=["key_value_pairs"])
        ]
        return max(iterations) if iterations else -1

    def uids(self) -> list[str]:
        return [r.uid for r in self.db.select(columns=["key_value_pairs"])]

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.db.metadata)

    def update_metadata(self, **values: Any) -> None:
        data = dict(self.db.metadata)
        data.update(values)
        self.db.metadata = data

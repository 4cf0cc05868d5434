"""Reference energies for training: coupled cluster (CCSD(T) by default) computed on Dask
through `matforge.active`'s oracle machinery, kept in a database as results arrive.

`reference_energies` labels systems (molecules, atoms, ions) with a `PyscfOracle`
through an `OracleRunner` (a local Dask cluster, or a scheduler `address` such as a
dask-jobqueue cluster's), and stores each total energy in an `ActiveStore` (SQLite or
PostgreSQL) the moment it arrives: one row per system, keyed by the system's name. The
database belongs to one oracle (method and basis, written in its metadata); a second
oracle on it is refused rather than mixing levels of theory. A killed run loses nothing:
labelled systems are never recomputed, pending ones are computed on the next call.

`reference_atomization` turns the stored total energies into atomization energies
(kcal/mol), the targets `matforge.xc.training.fit` takes in place of experiment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ase import Atoms, units

from matforge.active.oracle import Oracle, PyscfOracle
from matforge.active.parallel import OracleRunner
from matforge.active.store import ActiveStore
from matforge.core.errors import ConfigError
from matforge.xc.data import System, atom_counts

__all__ = [
    "ReferenceEnergies",
    "coupled_cluster_oracle",
    "reference_atomization",
    "reference_energies",
]

HARTREE_KCAL = 627.5094740631


@dataclass
class ReferenceEnergies:
    energies: dict[str, float]  # Hartree, every labelled system in the database
    failed: dict[str, str] = field(default_factory=dict)  # name -> last error
    computed: list[str] = field(default_factory=list)  # labelled by this call
    oracle: str = ""


def coupled_cluster_oracle(
    method: str = "ccsd(t)", basis: str = "cc-pvtz", *, frozen_core: bool = True
) -> PyscfOracle:
    return PyscfOracle(method=method, basis=basis, frozen_core=frozen_core, conv_tol=1e-10)


def _atoms(system: System) -> Atoms:
    return Atoms(system.symbols, positions=system.positions, info={"uid": system.name})


def _open(database: str | Path, oracle: Oracle) -> ActiveStore:
    store = ActiveStore(database)
    owner = store.metadata.get("reference_oracle")
    if owner is None:
        store.update_metadata(reference_oracle=oracle.name)
    elif owner != oracle.name:
        raise ConfigError(
            f"{database}: holds {owner} energies; refusing to add {oracle.name} energies "
            "(use another database file)"
        )
    return store


def reference_energies(
    systems: Sequence[System],
    database: str | Path,
    *,
    oracle: Oracle | None = None,
    runner: OracleRunner | None = None,
) -> ReferenceEnergies:
    """Total energies (Hartree) of `systems`, computed where the database lacks them.

    `runner` defaults to a local Dask cluster of two single-thread workers; pass
    ``OracleRunner(oracle, address="tcp://...")`` for a cluster, or
    ``executor="serial"`` to run here. Systems whose calls fail (after the runner's
    retries) are listed in `failed`, never given an energy."""
    oracle = oracle or coupled_cluster_oracle()
    names = [s.name for s in systems]
    if len(set(names)) != len(names):
        raise ConfigError("reference_energies: system names must be unique")
    store = _open(database, oracle)
    known = set(store.uids())
    new = [s for s in systems if s.name not in known]
    if new:
        store.add_pending(
            [_atoms(s) for s in new],
            role="train",
            iteration=0,
            reasons=[f"reference {oracle.name}"] * len(new),
            keys=[{"net_charge": s.charge, "spin": s.spin} for s in new],
        )
    wanted = set(names)
    pending = [
        a for a in store.structures(role="train", status="pending") if a.info["uid"] in wanted
    ]
    computed: list[str] = []
    failed: dict[str, str] = {}
    if pending:
        jobs = []
        for atoms in pending:
            atoms.info["charge"] = int(atoms.info.get("net_charge", 0))
            jobs.append((atoms.info["row_id"], atoms))
        uid_of = {a.info["row_id"]: a.info["uid"] for a in pending}

        def stored(row_id: object, labels: object, attempts: int) -> None:
            store.record_label(row_id, labels, attempts)  # type: ignore[arg-type]
            computed.append(uid_of[row_id])  # type: ignore[index]

        def failure(row_id: object, message: str, attempts: int, final: bool) -> None:
            store.record_failure(row_id, message, attempts, final)  # type: ignore[arg-type]
            if final:
                failed[uid_of[row_id]] = message  # type: ignore[index]

        own = runner is None
        runner = runner or OracleRunner(oracle, n_workers=2, threads_per_worker=1)
        try:
            runner.run(jobs, stored, failure)
        finally:
            if own:
                runner.close()
    for atoms in store.structures(role="train", status="failed"):
        if atoms.info["uid"] in wanted:
            failed.setdefault(atoms.info["uid"], str(atoms.info.get("error", "failed")))
    energies = {
        atoms.info["uid"]: float(atoms.get_potential_energy()) / units.Hartree
        for atoms in store.structures(role="train", status="labelled")
    }
    return ReferenceEnergies(energies, failed, computed, oracle.name)


def reference_atomization(energies: dict[str, float], molecules: Sequence[str]) -> dict[str, float]:
    """Atomization energies (kcal/mol) of the `molecules` whose own energy and every
    atom's energy are in `energies` (Hartree)."""
    from matforge.xc.training import predicted_atomization

    usable = [
        name
        for name in molecules
        if name in energies and all(symbol in energies for symbol in atom_counts(name))
    ]
    return {k: float(v) for k, v in predicted_atomization(energies, usable).items()}

"""Reference data: the coupled-cluster oracle equals PySCF's CCSD(T) run directly, labels
are stored as they arrive, a killed run resumes without recomputing, and one database
never mixes levels of theory."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units

pytest.importorskip("pyscf")

from matforge.active.oracle import PyscfOracle
from matforge.active.parallel import OracleRunner
from matforge.core.errors import ConfigError
from matforge.xc.data import System, g2_1_atoms, g2_1_molecules
from matforge.xc.reference import (
    coupled_cluster_oracle,
    reference_atomization,
    reference_energies,
)

SYSTEMS = {s.name: s for s in [*g2_1_molecules(), *g2_1_atoms()]}
HE_ION = System("He+", ("He",), ((0.0, 0.0, 0.0),), spin=1, charge=1)


def _direct_ccsd_t(system: System, basis: str, *, triples: bool = True) -> float:
    from pyscf import cc, gto, scf

    mol = gto.M(
        atom=system.atoms_string(),
        basis=basis,
        spin=system.spin,
        charge=system.charge,
        verbose=0,
    )
    mf = (scf.RHF if system.spin == 0 else scf.UHF)(mol)
    mf.conv_tol = 1e-11
    mf.kernel()
    if mol.nelectron < 2:
        return float(mf.e_tot)
    solver = cc.CCSD(mf)
    solver.conv_tol = 1e-9
    solver.kernel()
    return float(solver.e_tot + (solver.ccsd_t() if triples else 0.0))


def test_coupled_cluster_oracle_equals_pyscf_ccsd_t_closed_and_open_shell(tmp_path) -> None:
    oracle = coupled_cluster_oracle("ccsd(t)", "6-31g", frozen_core=False)
    systems = [SYSTEMS["H2O"], SYSTEMS["OH"], SYSTEMS["H"], SYSTEMS["O"], HE_ION]
    result = reference_energies(
        systems, tmp_path / "cc.db", oracle=oracle, runner=OracleRunner(oracle, executor="serial")
    )
    assert result.failed == {}
    assert sorted(result.computed) == sorted(s.name for s in systems)
    for system in systems:
        assert result.energies[system.name] == pytest.approx(
            _direct_ccsd_t(system, "6-31g"), abs=1e-7
        ), system.name
    # He+ is hydrogen-like (exact -2 Ha; 6-31G lies a few mHa above)
    assert -2.0 < result.energies["He+"] < -1.99
    atomization = reference_atomization(result.energies, ["OH", "H2O", "HF"])
    assert list(atomization) == ["OH", "H2O"]  # HF needs the F atom, not computed
    expected = (
        result.energies["H"] + result.energies["O"] - result.energies["OH"]
    ) * 627.5094740631
    assert atomization["OH"] == pytest.approx(expected, rel=1e-12)
    # a small basis underbinds: below experiment (106.4, 232.2 kcal/mol), not far below
    assert 60 < atomization["OH"] < 106
    assert 150 < atomization["H2O"] < 232


def test_frozen_core_and_triples_are_recorded() -> None:
    from ase import Atoms

    water = SYSTEMS["H2O"]
    atoms = Atoms(water.symbols, positions=water.positions)
    full = PyscfOracle(method="ccsd(t)", basis="6-31g")(atoms)
    frozen = PyscfOracle(method="ccsd(t)", basis="6-31g", frozen_core=True)(atoms)
    ccsd = PyscfOracle(method="ccsd", basis="6-31g")(atoms)
    assert full.forces is None
    assert "triples_hartree" in full.info
    assert full.info["triples_hartree"] < 0
    # the frozen O 1s removes core correlation (~ -1 mHa here): a higher energy
    assert 0 < (frozen.energy - full.energy) / units.Hartree < 5e-3
    assert full.energy - ccsd.energy == pytest.approx(
        full.info["triples_hartree"] * units.Hartree, abs=1e-6
    )
    with pytest.raises(ValueError, match="method"):
        PyscfOracle(method="mp2")
    with pytest.raises(ValueError, match="Hartree-Fock"):
        PyscfOracle(method="ccsd", xc="pbe")


def test_open_shell_atoms_without_virtuals_of_one_spin_under_a_small_memory_budget() -> None:
    """STO-3G O and F have no alpha virtual orbital; PySCF's out-of-core UCCSD fails on
    them, and PySCF takes that path whenever the whole process (torch, a test worker) holds
    more than its limit. The oracle's budget is on top of what the process holds, and such
    systems stay in memory: the energy equals the direct in-memory CCSD however tight the
    budget, and (T) is exactly 0 (no triple excitation exists; PySCF's own (T) divides by
    the empty channel's size)."""
    from ase import Atoms

    for name in ("O", "F"):
        system = SYSTEMS[name]
        atoms = Atoms(system.symbols, positions=system.positions, info={"spin": system.spin})
        labels = PyscfOracle(method="ccsd(t)", basis="sto-3g", max_memory_mb=1)(atoms)
        assert labels.energy / units.Hartree == pytest.approx(
            _direct_ccsd_t(system, "sto-3g", triples=False), abs=1e-7
        ), name
        assert labels.info["triples_hartree"] == 0.0


class _KilledAfterFirst:
    """A runner that labels one system and dies, as a killed process would."""

    def __init__(self, oracle) -> None:
        self.inner = OracleRunner(oracle, executor="serial")

    def run(self, jobs, on_result, on_failure):
        self.inner.run(jobs[:1], on_result, on_failure)
        raise KeyboardInterrupt


def test_killed_run_resumes_without_recomputing(tmp_path) -> None:
    oracle = PyscfOracle(method="ccsd", basis="sto-3g")
    systems = [SYSTEMS["LiH"], SYSTEMS["H"], SYSTEMS["Li"]]
    database = tmp_path / "ref.db"
    with pytest.raises(KeyboardInterrupt):
        reference_energies(systems, database, oracle=oracle, runner=_KilledAfterFirst(oracle))
    resumed = reference_energies(
        systems, database, oracle=oracle, runner=OracleRunner(oracle, executor="serial")
    )
    assert sorted(resumed.computed) == sorted(s.name for s in systems[1:])
    assert set(resumed.energies) == {s.name for s in systems}
    again = reference_energies(
        systems, database, oracle=oracle, runner=OracleRunner(oracle, executor="serial")
    )
    assert again.computed == []
    assert again.energies == resumed.energies
    other = PyscfOracle(method="ccsd(t)", basis="sto-3g")
    with pytest.raises(ConfigError, match=r"ref\.db: holds pyscf:ccsd/sto-3g"):
        reference_energies(systems, database, oracle=other)


def test_failed_calls_are_listed_not_given_energies(tmp_path) -> None:
    oracle = PyscfOracle(method="ccsd", basis="sto-3g")
    bad = System("bad", ("H", "H"), ((0.0, 0.0, 0.0), (0.0, 0.0, 0.7)), spin=1)  # parity
    result = reference_energies(
        [bad, SYSTEMS["H"]],
        tmp_path / "ref.db",
        oracle=oracle,
        runner=OracleRunner(oracle, executor="serial"),
    )
    assert "bad" in result.failed
    assert "bad" not in result.energies
    assert "spin" in result.failed["bad"].lower() or "electron" in result.failed["bad"].lower()
    assert np.isfinite(result.energies["H"])


@pytest.mark.slow
def test_reference_energies_on_a_local_dask_cluster(tmp_path) -> None:
    pytest.importorskip("distributed")
    oracle = PyscfOracle(method="ccsd(t)", basis="sto-3g")
    systems = [SYSTEMS["LiH"], SYSTEMS["H"]]
    runner = OracleRunner(oracle, executor="dask", n_workers=1, threads_per_worker=1)
    with runner:
        result = reference_energies(systems, tmp_path / "ref.db", oracle=oracle, runner=runner)
    assert result.failed == {}
    assert result.energies["LiH"] == pytest.approx(
        _direct_ccsd_t(SYSTEMS["LiH"], "sto-3g"), abs=1e-7
    )

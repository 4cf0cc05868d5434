"""NEP: GPUMD's models evaluated as calorine does, nep.txt round trips, exact derivatives, the
batched training path equal to autograd, training that learns, clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from matforge.core.errors import ConfigError
from matforge.mlip.nep import NepSettings, load_parameter_vector, nep_potential, parameter_vector
from matforge.mlip.nep_batch import build_tables, evaluate, split_vector
from matforge.mlip.nep_io import read_gpumd_xyz, read_nep_in, read_nep_txt, write_nep_txt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_gap import finite_difference_force_error, finite_difference_stress_error, labelled

NEP_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "mlip" / "nep"
needs_data = pytest.mark.skipif(
    not NEP_DATA.exists(), reason=f"GPUMD's NEP files are not at {NEP_DATA} (shared data)"
)
SMALL = NepSettings(
    ("Cu", "Ni"),
    cutoff_radial=4.5,
    cutoff_angular=3.5,
    n_max_radial=3,
    n_max_angular=3,
    basis_size_radial=4,
    basis_size_angular=4,
    l_max=4,
    l_max_4body=2,
    l_max_5body=1,
    neurons=6,
    zbl=(1.0, 2.0),
)


def random_nep(settings: NepSettings = SMALL, seed: int = 0):
    potential = nep_potential(settings)
    g = torch.Generator().manual_seed(seed)
    theta = torch.rand(settings.n_parameters, generator=g, dtype=torch.float64) - 0.5
    load_parameter_vector(potential, theta)
    potential.descriptor.q_scaler.copy_(0.5 + torch.rand(settings.dim, generator=g).double())
    return potential


def structures_for(name: str) -> list[Atoms]:
    rng = np.random.default_rng(3)
    if name.startswith("PbTe"):
        return read_gpumd_xyz(NEP_DATA / "PbTe" / "train.xyz")[:2]
    symbol, a = ("Si", 5.43) if "Si" in name else ("C", 3.57)
    crystal = bulk(symbol, "diamond", a=a, cubic=True).repeat(2)
    crystal.positions += rng.normal(0, 0.1, crystal.positions.shape)
    squeezed = bulk(symbol, "diamond", a=0.93 * a, cubic=True).repeat((2, 1, 1))
    squeezed.positions += rng.normal(0, 0.2, squeezed.positions.shape)
    return [crystal, squeezed]


@needs_data
@pytest.mark.reference
@pytest.mark.parametrize(
    "name",
    [
        "PbTe/nep.txt",
        "models/C_2022_NEP4.txt",
        "models/Si_2022_NEP4_3body.txt",
        "models/Si_2022_NEP4_4body.txt",
    ],
)
def test_gpumd_models_equal_calorine(name):
    pytest.importorskip("calorine")
    from calorine.calculators import CPUNEP
    from calorine.nep import get_descriptors

    path = NEP_DATA / name
    potential = read_nep_txt(path)
    for atoms in structures_for(name):
        batch = potential.batch([atoms])
        vectors, _ = batch.strained(batch.positions, batch.zero_strain())
        pairs = batch.pairs
        q = potential.descriptor(
            vectors, pairs.center, batch.species[pairs.neighbor], batch.species
        )
        reference_q = get_descriptors(atoms, str(path))
        scale = np.abs(reference_q).max()
        assert np.abs(q.detach().numpy() - reference_q).max() < 1e-10 * scale
        out = potential(batch)
        other = atoms.copy()
        other.calc = CPUNEP(str(path))
        n = len(atoms)
        assert abs(float(out.energy[0]) - other.get_potential_energy()) / n < 1e-10
        assert np.abs(out.forces.numpy() - other.get_forces()).max() < 1e-10
        assert np.abs(out.stress[0].numpy() - other.get_stress(voigt=False)).max() < 1e-10


@pytest.mark.reference
def test_written_nep_txt_runs_identically_in_calorine_and_reads_back(tmp_path):
    """A matforge NEP (2 species, 4- and 5-body, GPUMD's ZBL) through nep.txt."""
    pytest.importorskip("calorine")
    from calorine.calculators import CPUNEP

    potential = random_nep()
    path = write_nep_txt(potential, tmp_path / "nep.txt")
    again = read_nep_txt(path)
    torch.testing.assert_close(parameter_vector(again), parameter_vector(potential))
    for r in (0.9, 1.6, 2.3):  # inside, across and beyond the ZBL switch
        dimer = Atoms("CuNi", positions=[[0, 0, 0], [r, 0.1, 0.2]], cell=[15] * 3, pbc=True)
        mine = potential(potential.batch([dimer]))
        dimer.calc = CPUNEP(str(path))
        assert abs(float(mine.energy[0]) - dimer.get_potential_energy()) < 1e-9
        assert np.abs(mine.forces.numpy() - dimer.get_forces()).max() < 1e-8
    alloy = labelled(4, ("Cu", "Ni"), (2, 1, 1))
    mine = potential(potential.batch([alloy]))
    alloy.calc = CPUNEP(str(path))
    assert abs(float(mine.energy[0]) - alloy.get_potential_energy()) / len(alloy) < 1e-10
    assert np.abs(mine.forces.numpy() - alloy.get_forces()).max() < 1e-9


def test_forces_and_virials_equal_finite_differences():
    potential = random_nep()
    atoms = labelled(8, ("Cu", "Ni"), (2, 1, 1), rattle=0.15)
    assert finite_difference_force_error(potential, atoms) < 1e-6

    out = potential(potential.batch([atoms]))
    # the closed-form path that predictions take equals autograd through the descriptor
    traced = potential._forward_autograd(
        potential.batch([atoms]), True, True, False, with_model=True
    )
    torch.testing.assert_close(out.forces, traced.forces, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.stress, traced.stress, rtol=0, atol=1e-12)
    assert finite_difference_stress_error(potential, atoms, ((0, 0), (1, 2))) < 1e-7


def test_batched_training_path_equals_autograd_for_several_parameter_sets():
    """The SNES / gradient evaluator (no autograd through the geometry) against Potential."""
    settings = NepSettings(**{**SMALL.__dict__, "zbl": None})
    structures = [labelled(s, ("Cu", "Ni"), (2, 1, 1), rattle=0.1) for s in (1, 2)]
    tables = build_tables(settings, structures)
    thetas, expected = [], []
    for seed in range(3):
        potential = random_nep(settings, seed)
        thetas.append(parameter_vector(potential).detach())
        expected.append(potential(potential.batch(structures)))
        potential.descriptor.q_scaler.fill_(0.7)
    q_scaler = torch.full((settings.dim,), 0.7, dtype=torch.float64)
    for seed in range(3):
        potential = random_nep(settings, seed)
        potential.descriptor.q_scaler.copy_(q_scaler)
        expected[seed] = potential(potential.batch(structures))
    out = evaluate(
        tables, split_vector(torch.stack(thetas), settings), settings, q_scaler, virials=True
    )
    for seed in range(3):
        reference = expected[seed]
        torch.testing.assert_close(out.energy[seed], reference.energy, rtol=0, atol=1e-10)
        torch.testing.assert_close(out.forces[seed], reference.forces, rtol=0, atol=1e-10)
        volumes = torch.tensor([a.get_volume() for a in structures], dtype=torch.float64)
        w = -reference.stress * volumes[:, None, None]
        voigt = torch.stack(
            [w[:, a, b] for a, b in ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))], -1
        )
        torch.testing.assert_close(out.virial[seed], voigt, rtol=0, atol=1e-9)


def emt_structures(count: int, seed: int) -> list[Atoms]:
    return [labelled(seed + s, ("Cu",), (2, 1, 1), rattle=0.1) for s in range(count)]


TRAIN_SMALL = NepSettings(
    ("Cu",),
    cutoff_radial=4.5,
    cutoff_angular=3.6,
    n_max_radial=3,
    n_max_angular=2,
    basis_size_radial=4,
    basis_size_angular=4,
    l_max=2,
    l_max_4body=0,
    neurons=8,
)


def test_gradient_training_learns_held_out_emt_forces():
    from matforge.mlip.nep_io import NepTrainingSettings
    from matforge.mlip.nep_train import NepDataset, train_gradient

    train = [NepDataset.from_structures(TRAIN_SMALL, emt_structures(10, 0))]
    held_out = NepDataset.from_structures(TRAIN_SMALL, emt_structures(5, 100))
    potential = nep_potential(TRAIN_SMALL)
    result = train_gradient(
        potential,
        train,
        NepTrainingSettings(),
        adam_steps=150,
        lbfgs_steps=60,
        validation=held_out,
        report_every=25,
    )
    first, last = result.curve.rows[0], result.curve.last()
    spread = float(held_out.forces.std())
    # zero forces would score the spread (0.84 eV/A); measured 0.11 after 210 steps
    assert last["test_rmse_force"] < 0.25 * spread
    assert last["test_rmse_force"] < 0.5 * first["test_rmse_force"]


def test_snes_lowers_the_loss():
    from matforge.mlip.nep_io import NepTrainingSettings
    from matforge.mlip.nep_train import NepDataset, train_snes

    data = [NepDataset.from_structures(TRAIN_SMALL, emt_structures(4, 0))]
    potential = nep_potential(TRAIN_SMALL)
    result = train_snes(
        potential, data, NepTrainingSettings(population=20), generations=40, report_every=39
    )
    first, last = result.curve.rows[0], result.curve.last()
    assert last["loss"] < 0.6 * first["loss"]


def test_bad_nep_files_are_clear_errors(tmp_path):
    potential = random_nep()
    good = write_nep_txt(potential, tmp_path / "good.txt")
    lines = good.read_text().splitlines()
    bad = tmp_path / "short.txt"
    bad.write_text("\n".join(lines[:-5]) + "\n")
    expected = SMALL.n_parameters + SMALL.dim
    with pytest.raises(
        ConfigError, match=f"expected {expected} parameter lines.*found {expected - 5}"
    ):
        read_nep_txt(bad)
    header = tmp_path / "header.txt"
    header.write_text("\n".join(["nep3 2 Cu Ni", *lines[1:]]) + "\n")
    with pytest.raises(ConfigError, match=r"header\.txt, line 1: .*NEP4"):
        read_nep_txt(header)
    word = tmp_path / "word.txt"
    word.write_text("\n".join([*lines[:20], "oops", *lines[21:]]) + "\n")
    with pytest.raises(ConfigError, match=r"word\.txt, line 21: expected one number"):
        read_nep_txt(word)
    with pytest.raises(ConfigError, match="Al"):
        potential.batch([bulk("Al", "fcc", a=4.05)])
    nep_in = tmp_path / "nep.in"
    nep_in.write_text("type 1 Cu\nprediction 1\n")
    with pytest.raises(ConfigError, match=r"nep\.in, line 2: keyword 'prediction'"):
        read_nep_in(nep_in)
    with pytest.raises(ConfigError, match="l_max_4body"):
        NepSettings(("Cu",), l_max=1, l_max_4body=2)


@needs_data
def test_nep_in_and_train_xyz_of_the_pbte_example():
    settings, training = read_nep_in(NEP_DATA / "PbTe" / "nep.in")
    assert settings.elements == ("Te", "Pb")
    assert training.generation == 20000
    from_file = read_nep_txt(NEP_DATA / "PbTe" / "nep.txt").descriptor.settings
    # GPUMD's defaults fill what nep.in leaves out: the same architecture as its nep.txt
    assert settings.dim == from_file.dim
    assert settings.n_parameters == from_file.n_parameters == 3033
    frames = read_gpumd_xyz(NEP_DATA / "PbTe" / "train.xyz")
    assert len(frames) == 25
    assert all(len(a) == 250 for a in frames)
    assert abs(frames[0].get_potential_energy() - (-937.191)) < 1e-9


def test_compiled_backend_equals_the_torch_path():
    pytest.importorskip("numba")
    potential = random_nep()
    structures = [labelled(s, ("Cu", "Ni"), (2, 1, 1), rattle=0.15) for s in (21, 22)]
    batch = potential.batch(structures)
    expected = potential(batch)
    potential.backend = "numba"
    out = potential(batch)
    torch.testing.assert_close(out.energy, expected.energy, rtol=0, atol=1e-10)
    torch.testing.assert_close(out.forces, expected.forces, rtol=0, atol=1e-10)
    torch.testing.assert_close(out.stress, expected.stress, rtol=0, atol=1e-12)

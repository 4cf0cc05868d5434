"""One code path for energy, forces and stress: checked by finite differences, and the
ASE calculator, file format and MD built on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from matforge.core.errors import ConfigError
from matforge.mlip.calculator import MatforgeCalculator
from matforge.mlip.io import FORMAT_VERSION, load_potential, save_potential
from matforge.mlip.potential import Potential
from matforge.mlip.zbl import ZBL


def rattled(symbols=None, seed=1) -> Atoms:
    atoms = bulk("Ta", "bcc", a=3.3, cubic=True).repeat((2, 2, 2))
    atoms.set_cell(
        atoms.cell.array @ np.array([[1.0, 0.02, 0], [0, 0.97, 0.03], [0.01, 0, 1.02]]),
        scale_atoms=True,
    )
    if symbols is not None:
        atoms.set_chemical_symbols(symbols)
    atoms.rattle(0.15, seed=seed)
    return atoms


def energy(potential: Potential, atoms: Atoms) -> float:
    return float(potential(potential.batch([atoms]), forces=False, stress=False).energy[0])


@pytest.mark.parametrize(
    ("elements", "quadratic"), [(("Ta",), False), (("Ta", "W"), False), (("Ta",), True)]
)
def test_forces_equal_finite_differences_of_the_energy(elements, quadratic, snap_factory):
    potential = snap_factory(elements, quadraticflag=quadratic)
    symbols = ["Ta", "W"] * 8 if len(elements) == 2 else None
    atoms = rattled(symbols)
    forces = potential(potential.batch([atoms]), stress=False).forces.numpy()
    h = 1e-5
    for atom, axis in [(0, 0), (3, 1), (7, 2), (12, 0), (15, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        numeric = -(energy(potential, plus) - energy(potential, minus)) / (2 * h)
        assert forces[atom, axis] == pytest.approx(numeric, abs=1e-6)


def test_stress_equals_finite_differences_with_respect_to_strain(snap_factory):
    potential = snap_factory(("Ta", "W"))
    atoms = rattled(["Ta", "W"] * 8)
    stress = potential(potential.batch([atoms])).stress[0].numpy()
    h = 1e-6
    volume = atoms.get_volume()
    for a, b in [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]:
        values = []
        for sign in (1, -1):
            strain = np.eye(3)
            strain[a, b] += sign * h / 2
            strain[b, a] += sign * h / 2
            deformed = atoms.copy()
            deformed.set_cell(atoms.cell.array @ strain, scale_atoms=True)
            values.append(energy(potential, deformed))
        numeric = (values[0] - values[1]) / (2 * h) / volume
        assert stress[a, b] == pytest.approx(numeric, abs=1e-8)


def test_translation_and_rotation_leave_the_energy_unchanged(snap_factory):
    potential = snap_factory(("Ta", "W"))
    atoms = rattled(["Ta", "W"] * 8)
    e0 = energy(potential, atoms)
    turned = atoms.copy()
    turned.rotate(37, (1, 2, 3), rotate_cell=True)
    turned.translate((0.3, -1.2, 2.0))
    assert energy(potential, turned) == pytest.approx(e0, abs=1e-9)
    shuffled = atoms[np.random.default_rng(0).permutation(len(atoms))]
    assert energy(potential, shuffled) == pytest.approx(e0, abs=1e-9)


def test_batch_of_structures_equals_one_by_one(snap_factory):
    potential = snap_factory(("Ta", "W"))
    structures = [rattled(["Ta", "W"] * 8, seed=s) for s in range(3)]
    structures.append(bulk("Ta", "bcc", a=3.3) * (3, 3, 3))  # a different size
    together = potential(potential.batch(structures))
    offset = 0
    for k, atoms in enumerate(structures):
        alone = potential(potential.batch([atoms]))
        assert together.energy[k] == pytest.approx(float(alone.energy[0]), abs=1e-10)
        n = len(atoms)
        assert torch.allclose(together.forces[offset : offset + n], alone.forces, atol=1e-10)
        assert torch.allclose(together.stress[k], alone.stress[0], atol=1e-12)
        offset += n


def test_calculator_matches_the_potential_and_ase_stress_convention(snap_factory):
    potential = snap_factory(("Ta",))
    atoms = rattled()
    atoms.calc = MatforgeCalculator(potential)
    direct = potential(potential.batch([atoms]))
    assert atoms.get_potential_energy() == pytest.approx(float(direct.energy[0]))
    assert atoms.get_potential_energies().sum() == pytest.approx(float(direct.energy[0]))
    np.testing.assert_allclose(atoms.get_forces(), direct.forces.numpy())
    full = atoms.get_stress(voigt=False)
    np.testing.assert_allclose(full, direct.stress[0].numpy(), atol=1e-14)


def test_saved_potential_loads_with_identical_predictions(tmp_path, snap_factory):
    potential = snap_factory(("Ta", "W"), quadraticflag=True)
    atoms = rattled(["Ta", "W"] * 8)
    path = save_potential(potential, tmp_path / "model.pt")
    loaded = load_potential(path)
    assert energy(loaded, atoms) == energy(potential, atoms)
    with pytest.raises(Exception, match="exists"):
        save_potential(potential, path)


def test_file_from_a_newer_format_is_refused_clearly(tmp_path, snap_factory):
    path = save_potential(snap_factory(), tmp_path / "model.pt")
    record = torch.load(path, weights_only=True)
    record["format_version"] = FORMAT_VERSION + 1
    torch.save(record, path)
    with pytest.raises(ConfigError, match="Upgrade matforge"):
        load_potential(path)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="not a matforge potential"):
        load_potential(tmp_path / "junk.pt")


def test_unknown_element_is_named(snap_factory):
    potential = snap_factory(("Ta",))
    atoms = rattled(["Ta"] * 15 + ["Nb"])
    with pytest.raises(ConfigError, match="Nb"):
        potential.batch([atoms])


def test_zbl_switches_off_smoothly_at_the_outer_cutoff():
    zbl = ZBL({"Ta": 73.0}, 4.0, 4.8)
    species = torch.zeros(1, dtype=torch.long)

    def derivatives(distance_inside: float) -> tuple[float, float, float]:
        r = torch.tensor([4.8 - distance_inside], dtype=torch.float64, requires_grad=True)
        e = zbl.pair_energy(r, species, species)
        (d1,) = torch.autograd.grad(e.sum(), r, create_graph=True)
        (d2,) = torch.autograd.grad(d1.sum(), r)
        return float(e.detach()), float(d1.detach()), float(d2)

    # E, E' and E'' vanish at the cutoff, as (r_c - r)^3, ^2 and ^1 (LAMMPS's switching):
    # 1e-4 inside it they are below 1e-12, 1e-8 and 1e-4, and halving the distance divides
    # them by 8, 4 and 2. A switch that only zeroed E and E' would fail the last ratio.
    near, far = derivatives(1e-4), derivatives(2e-4)
    assert abs(near[0]) < 1e-12
    assert abs(near[1]) < 1e-8
    assert abs(near[2]) < 1e-4
    for value_near, value_far, ratio in zip(near, far, (8.0, 4.0, 2.0), strict=True):
        assert value_far / value_near == pytest.approx(ratio, rel=0.01)
    inner = zbl.pair_energy(torch.tensor([1.0], dtype=torch.float64), species, species)
    assert float(inner) > 100  # strongly repulsive at 1 A (Z = 73)


def test_truncated_or_damaged_model_files_give_one_clear_error(tmp_path, snap_factory):
    path = save_potential(snap_factory(), tmp_path / "model.pt")
    data = path.read_bytes()
    (tmp_path / "half.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match=r"half\.pt: not a matforge potential file \(cannot"):
        load_potential(tmp_path / "half.pt")
    record = torch.load(path, weights_only=True)
    del record["model"]
    torch.save(record, tmp_path / "partless.pt")
    with pytest.raises(ConfigError, match=r"partless\.pt: damaged model file, no 'model"):
        load_potential(tmp_path / "partless.pt")
    record = torch.load(path, weights_only=True)
    record["descriptor"]["settings"]["twojmax"] = "six"
    torch.save(record, tmp_path / "wrong.pt")
    with pytest.raises(ConfigError, match=r"wrong\.pt: damaged matforge potential file"):
        load_potential(tmp_path / "wrong.pt")
    with pytest.raises(ConfigError, match="no such matforge potential file"):
        load_potential(tmp_path / "absent.pt")


def test_malformed_structure_files_name_the_file(tmp_path):
    from matforge.mlip.data import read_structures

    bad = tmp_path / "bad.xyz"
    bad.write_text("2\nProperties=species:S:1:pos:R:3 energy=1\nTa 0 0 0\nTa 1 x 2\n")
    with pytest.raises(ConfigError, match=r"bad\.xyz: cannot read structures"):
        read_structures(bad)
    fake_db = tmp_path / "fake.db"
    fake_db.write_text("not sqlite")
    with pytest.raises(ConfigError, match=r"fake\.db: not a readable ASE database"):
        read_structures(fake_db)


def _assert_same_rows(got, expected, names) -> None:  # type: ignore[no-untyped-def]
    """Two `DesignMatrix` agree on these rows to 1e-12 of the largest entry."""
    for name in names:
        a, b = getattr(got, name), getattr(expected, name)
        assert a.shape == b.shape, name
        assert (a - b).abs().max() <= 1e-12 * b.abs().max(), name


def test_quadratic_design_matrix_by_product_rule_equals_one_pass_per_column(snap_factory):
    """Quadratic SNAP rows come from the linear part's pair Jacobian and the product rule;
    they must equal the generic path (one backward pass per column)."""
    from matforge.mlip.descriptors import design_matrix

    potential = snap_factory(("Ta", "W"), quadraticflag=True, zbl=None)
    batch = potential.batch([rattled(["Ta", "W", "Ta", "W"] * 4, seed=3), rattled(seed=4)])
    fast = design_matrix(potential.descriptor, batch)
    generic = design_matrix(potential.descriptor, batch, method="columns")
    _assert_same_rows(fast, generic, ("energy", "forces", "stress", "atoms"))


def test_multi_element_design_matrix_by_pair_jacobian_equals_one_pass_per_column(snap_factory):
    """With several elements the rows come from one backward pass per feature through the
    pair Jacobian, scattered into the centre's element block; they must equal one backward
    pass per (element, feature) column, and reproduce the potential's own forces."""
    import torch

    from matforge.mlip.descriptors import design_matrix

    potential = snap_factory(("Ta", "W"), zbl=None)
    batch = potential.batch([rattled(["Ta", "W", "W", "Ta"] * 4, seed=5), rattled(seed=6)])
    pairs = design_matrix(potential.descriptor, batch)
    columns = design_matrix(potential.descriptor, batch, method="columns")
    _assert_same_rows(pairs, columns, ("energy", "forces", "stress", "atoms"))
    # stress without forces: forward-mode derivatives along the six strain directions
    strain = design_matrix(potential.descriptor, batch, forces=False, stress=True)
    _assert_same_rows(strain, columns, ("energy", "stress", "atoms"))
    assert strain.forces.shape == (0, columns.energy.shape[1])
    with pytest.raises(ValueError, match="force rows"):
        design_matrix(potential.descriptor, batch, method="strain")
    coefficients = torch.randn(
        columns.energy.shape[1], dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        potential.model.coefficients.copy_(coefficients.reshape(potential.model.coefficients.shape))
    out = potential(batch, forces=True, stress=False)
    assert torch.allclose(pairs.forces @ coefficients, out.forces.reshape(-1), atol=1e-10)

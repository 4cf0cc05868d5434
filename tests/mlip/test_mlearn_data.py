"""mlearn's JSON: units and shear order settled from the data's own Elastic group."""

from __future__ import annotations

import json

import numpy as np
import pytest

from matforge.core.errors import ConfigError
from matforge.mlip.data import read_mlearn_json


def _elastic(shared_data, element):
    path = shared_data / "mlip" / "mlearn" / element / "training.json"
    if not path.exists():
        pytest.skip(f"mlearn's {element} set is absent from {path.parent}")
    return [a for a in read_mlearn_json(path) if a.info["group"] == "Elastic"]


@pytest.mark.parametrize("element", ["Mo", "Si", "Ge", "Li"])
def test_simple_shears_carry_their_stress_in_the_sheared_component(shared_data, element):
    checked = 0
    for atoms in _elastic(shared_data, element):
        cell = atoms.cell.array
        off = [(i, j) for i in range(3) for j in range(3) if i != j and abs(cell[i, j]) > 1e-3]
        if len(off) != 1:
            continue
        row, column = off[0]  # cell vector `row` tilted along `column`: shear (row, column)
        stress = atoms.get_stress(voigt=False)
        shear = np.abs(stress - np.diag(np.diag(stress)))
        assert np.unravel_index(shear.argmax(), shear.shape) in ((row, column), (column, row))
        # ASE's sign: a positive tilt is a positive shear strain, met by a positive stress
        # (Li's shears, under 1 kBar, are within its residual stresses: no sign to read)
        if abs(stress[row, column]) > 5 * 0.000624:
            assert np.sign(stress[row, column]) == np.sign(cell[row, column])
        checked += 1
    assert checked >= 6


def test_si_uniaxial_slope_is_the_dft_c11_in_gpa(shared_data):
    """kBar read as kBar: the small-strain slope of the Si Elastic set is C11 ~ 150 GPa."""
    reference = 10.937544  # the unstrained edge of the Elastic group's cells
    slopes = []
    for atoms in _elastic(shared_data, "Si"):
        cell = atoms.cell.array
        if np.abs(cell - np.diag(np.diag(cell))).max() > 1e-6:
            continue
        strain = np.diag(cell) / reference - 1
        if np.count_nonzero(np.abs(strain) > 1e-4) != 1 or np.abs(strain).max() > 0.03:
            continue
        axis = int(np.argmax(np.abs(strain)))
        slopes.append(atoms.get_stress(voigt=False)[axis, axis] / strain[axis] / 0.006241509)
    assert slopes
    assert 120 < np.median(slopes) < 190, slopes


def test_malformed_mlearn_files_name_the_record(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"structure": {"lattice": {"matrix": np.eye(3).tolist()}}}]))
    with pytest.raises(ConfigError, match=r"bad\.json record 0: not an mlearn record"):
        read_mlearn_json(path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        read_mlearn_json(path)


def test_mlip_fit_reads_mlearn_json_with_a_group_filter(tmp_path):
    from matforge.mlip.job import DataConfig, load_training_data

    def record(group, energy):
        return {
            "structure": {
                "lattice": {"matrix": (3.2 * np.eye(3)).tolist()},
                "sites": [
                    {"species": [{"element": "Mo", "occu": 1}], "xyz": [0, 0, 0]},
                    {"species": [{"element": "Mo", "occu": 1}], "xyz": [1.6, 1.6, 1.6]},
                ],
            },
            "element": "Mo",
            "group": group,
            "outputs": {
                "energy": energy,
                "forces": [[0.1, 0, 0], [-0.1, 0, 0]],
                "virial_stress": [10.0, 10.0, 10.0, 1.0, 2.0, 3.0],
            },
        }

    path = tmp_path / "mo.json"
    path.write_text(json.dumps([record("Elastic", -21.0), record("Surface", -20.0)]))
    structures = load_training_data(DataConfig(format="mlearn-json", path=path, groups=["Surface"]))
    assert len(structures) == 1
    atoms = structures[0]
    assert atoms.get_potential_energy() == -20.0
    stress = atoms.get_stress(voigt=False) / 0.0006241509
    # 10 kBar compressive -> -10 kBar in ASE's sign; Mo's columns 4, 5 are xz, yz
    np.testing.assert_allclose(np.diag(stress), [-10, -10, -10], rtol=1e-6)
    np.testing.assert_allclose([stress[0, 1], stress[0, 2], stress[1, 2]], [-1, -2, -3], rtol=1e-6)

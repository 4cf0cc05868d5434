"""The atomistic property oracle with EMT: lattice constant and elastic constants equal
independent energy-based estimates, misfit volumes equal the composition derivative of
the relaxed volume."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT

from matforge.core.errors import ConfigError
from matforge.design.atomistic import SupercellSpec, alloy_properties, random_fcc_supercell

SMALL = SupercellSpec(size=2, structures=1, swaps=2, fmax=5e-4)


def _energy_curve(atoms_of, values) -> np.ndarray:
    energies = []
    for value in values:
        atoms = atoms_of(value)
        atoms.calc = EMT()
        energies.append(atoms.get_potential_energy())
    return np.polyfit(values, energies, 2)


def test_pure_copper_equals_energy_based_estimates() -> None:
    """Stress-based relaxation and C_ij against E(a) and E(shear) fits on the cubic cell."""
    properties = alloy_properties({"Cu": 1.0}, EMT, SMALL)
    lattice = np.linspace(3.55, 3.63, 9)
    a, b, _ = _energy_curve(lambda x: bulk("Cu", "fcc", a=x, cubic=True), lattice)
    assert properties.lattice_constant == pytest.approx(-b / (2 * a), abs=2e-3)
    a0 = properties.lattice_constant
    volume = a0**3  # the 4-atom cubic cell

    def sheared(gamma: float):
        atoms = bulk("Cu", "fcc", a=a0, cubic=True)
        strain = np.eye(3)
        strain[1, 2] = strain[2, 1] = gamma / 2
        atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
        return atoms

    curvature = _energy_curve(sheared, np.linspace(-0.01, 0.01, 9))[0]
    c44 = 2 * curvature / volume / units.GPa  # E = E0 + V C44 gamma^2 / 2
    assert properties.c44 == pytest.approx(c44, rel=0.02)

    def stretched(e: float):
        atoms = bulk("Cu", "fcc", a=a0, cubic=True)
        atoms.set_cell(atoms.cell.array * (1 + e), scale_atoms=True)
        return atoms

    curvature = _energy_curve(stretched, np.linspace(-0.005, 0.005, 9))[0]
    bulk_modulus = 2 * curvature / (9 * volume) / units.GPa  # E = E0 + 9 V B e^2 / 2
    assert (properties.c11 + 2 * properties.c12) / 3 == pytest.approx(bulk_modulus, rel=0.02)
    assert properties.misfit_volumes == {"Cu": 0.0}
    assert properties.calls > 0


def test_misfit_volumes_are_the_composition_derivative_of_the_volume() -> None:
    """Swaps on one relaxed CuNi cell against the slope of the relaxed volume per atom over
    separate random cells at c_Cu = 0.375 and 0.625."""
    properties = alloy_properties({"Cu": 0.5, "Ni": 0.5}, EMT, SMALL, elastic=False)
    misfit = properties.misfit_volumes
    assert misfit["Cu"] > 0 > misfit["Ni"]
    assert 0.5 * misfit["Cu"] + 0.5 * misfit["Ni"] == pytest.approx(0.0, abs=1e-12)
    volumes = {}
    for copper in (0.375, 0.625):
        values = [
            alloy_properties(
                {"Cu": copper, "Ni": 1 - copper},
                EMT,
                SupercellSpec(size=2, structures=1, seed=seed, fmax=5e-4),
                elastic=False,
                misfit=False,
            ).volume_per_atom
            for seed in (0, 1)
        ]
        volumes[copper] = np.mean(values)
    slope = (volumes[0.625] - volumes[0.375]) / 0.25  # = V_Cu - V_Ni
    assert misfit["Cu"] - misfit["Ni"] == pytest.approx(slope, rel=0.15)
    assert np.isnan(properties.c11)  # skipped, and said so


def test_random_supercell_counts_and_bad_input() -> None:
    atoms = random_fcc_supercell({"Cu": 0.7, "Ni": 0.2, "Au": 0.1}, 3.6, 2, seed=3)
    symbols = atoms.get_chemical_symbols()
    assert len(symbols) == 32
    for element, fraction in (("Cu", 0.7), ("Ni", 0.2), ("Au", 0.1)):
        assert abs(symbols.count(element) - 32 * fraction) < 1
    assert (
        random_fcc_supercell({"Cu": 1, "Ni": 1e-6}, 3.6, 1, seed=0)
        .get_chemical_symbols()
        .count("Ni")
        == 1
    )
    with pytest.raises(ConfigError, match="non-negative"):
        alloy_properties({"Cu": -0.1, "Ni": 1.1}, EMT, SMALL)
    with pytest.raises(ConfigError, match="strain"):
        SupercellSpec(strain=0.2)


def test_strength_from_properties_uses_the_same_formulas() -> None:
    """Fed the tabulated model's own alloy quantities, the properties path gives the
    tabulated strength; a pure element has none."""
    import torch

    from matforge.design.atomistic import AlloyProperties
    from matforge.design.strength import (
        APPARENT_VOLUME_A3,
        POISSON_RATIO,
        SHEAR_MODULUS_GPA,
        VarvenneCurtin,
        strength_from_properties,
    )

    elements = ("Co", "Cr", "Fe", "Mn", "Ni")
    x = torch.full((5,), 0.2, dtype=torch.float64)
    model = VarvenneCurtin(elements)
    v = sum(0.2 * APPARENT_VOLUME_A3[e] for e in elements)
    mu = sum(0.2 * SHEAR_MODULUS_GPA[e] for e in elements)
    nu = sum(0.2 * POISSON_RATIO[e] for e in elements)
    # cubic constants whose isotropic (mu, nu) are the rule-of-mixtures values
    bulk_modulus = 2 * mu * (1 + nu) / (3 * (1 - 2 * nu))
    c44 = mu
    c11 = bulk_modulus + 4 * mu / 3
    c12 = bulk_modulus - 2 * mu / 3
    properties = AlloyProperties(
        composition=dict.fromkeys(elements, 0.2),
        lattice_constant=(4 * v) ** (1 / 3),
        volume_per_atom=v,
        c11=c11,
        c12=c12,
        c44=c44,
        misfit_volumes={e: APPARENT_VOLUME_A3[e] - v for e in elements},
    )
    assert properties.shear_modulus == pytest.approx(mu, rel=1e-12)
    assert properties.poisson_ratio == pytest.approx(nu, rel=1e-12)
    computed = strength_from_properties(properties)
    assert computed["sigma_y"] == pytest.approx(float(model(x)), rel=1e-10)
    pure = strength_from_properties(
        AlloyProperties({"Cu": 1.0}, 3.59, 11.57, 172.6, 115.5, 89.9, {"Cu": 0.0})
    )
    assert pure["sigma_y"] == pytest.approx(0.0, abs=1e-6)

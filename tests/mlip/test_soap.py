"""SOAP: equal to featomic when configured alike; exact derivatives; invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from matforge.core.errors import ConfigError
from matforge.mlip.batch import AtomsBatch
from matforge.mlip.soap import SOAP, SoapParameters, real_spherical_harmonics


def alloy(seed: int = 0, repeat=(2, 1, 1)) -> Atoms:
    """A rattled, strained, periodic Cu-Ni cell (triclinic after the shear)."""
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(repeat)
    symbols = atoms.get_chemical_symbols()
    for i in rng.choice(len(atoms), len(atoms) // 3, replace=False):
        symbols[i] = "Ni"
    atoms.set_chemical_symbols(symbols)
    atoms.set_cell(
        atoms.cell.array @ (np.eye(3) + 0.03 * rng.normal(size=(3, 3))), scale_atoms=True
    )
    atoms.positions += rng.normal(0.0, 0.12, atoms.positions.shape)
    return atoms


def features(soap: SOAP, structures: list[Atoms], positions=None):
    batch = AtomsBatch.from_atoms(structures, soap.elements, soap.cutoff)
    pos = batch.positions if positions is None else positions
    vectors, _ = batch.strained(pos, torch.zeros(batch.n_structures, 3, 3, dtype=torch.float64))
    return soap(
        vectors, batch.pairs.center, batch.species[batch.pairs.neighbor], batch.species
    ), batch


def test_real_spherical_harmonics_are_orthonormal_on_the_sphere():
    l_max = 6
    nodes, weights = np.polynomial.legendre.leggauss(40)
    phi = np.linspace(0, 2 * np.pi, 80, endpoint=False)
    cos_t, ph = np.meshgrid(nodes, phi, indexing="ij")
    sin_t = np.sqrt(1 - cos_t**2)
    unit = np.stack([sin_t * np.cos(ph), sin_t * np.sin(ph), cos_t], axis=-1).reshape(-1, 3)
    w = (weights[:, None] * np.full(len(phi), 2 * np.pi / len(phi))[None, :]).reshape(-1)
    y = real_spherical_harmonics(torch.from_numpy(unit), l_max).numpy()
    gram = (y * w[:, None]).T @ y
    np.testing.assert_allclose(gram, np.eye((l_max + 1) ** 2), atol=1e-12)


@pytest.mark.parametrize("basis", ["gto", "polynomial"])
def test_features_are_invariant_to_rotation_translation_and_permutation(basis):
    soap = SOAP(SoapParameters(("Cu", "Ni"), 4.0, 4, 4, 0.5, radial_basis=basis))
    atoms = alloy(1)
    reference, _ = features(soap, [atoms])
    moved = atoms.copy()
    rotation = torch.linalg.qr(
        torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    )[0].numpy()
    moved.set_cell(moved.cell.array @ rotation.T, scale_atoms=True)
    moved.positions += np.array([0.3, -1.1, 2.0])
    order = np.random.default_rng(2).permutation(len(atoms))
    moved = moved[order]
    rotated, _ = features(soap, [moved])
    np.testing.assert_allclose(rotated.numpy(), reference.numpy()[order], atol=1e-12)
    assert torch.allclose(reference.norm(dim=1), torch.ones(len(atoms), dtype=torch.float64))
    # not invariant to what matters: swapping a Cu and a Ni changes the features
    swapped = atoms.copy()
    symbols = swapped.get_chemical_symbols()
    cu, ni = symbols.index("Cu"), symbols.index("Ni")
    symbols[cu], symbols[ni] = "Ni", "Cu"
    swapped.set_chemical_symbols(symbols)
    assert (features(soap, [swapped])[0] - reference).abs().max() > 1e-3


def test_closed_form_jacobian_equals_autograd():
    soap = SOAP(SoapParameters(("Cu", "Ni"), 4.0, 3, 3, 0.5))
    batch = AtomsBatch.from_atoms([alloy(0), alloy(4)], soap.elements, soap.cutoff)
    vectors, _ = batch.strained(batch.positions, torch.zeros(2, 3, 3, dtype=torch.float64))
    vectors = vectors.detach().requires_grad_(True)
    species = batch.species[batch.pairs.neighbor]
    q = soap(vectors, batch.pairs.center, species, batch.species)
    q_closed, dq, keep = soap.jacobian(vectors.detach(), batch.pairs.center, species, batch.species)
    assert torch.equal(q.detach(), q_closed)
    seed = torch.randn(q.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    (grad,) = torch.autograd.grad((q * seed).sum(), vectors)
    closed = torch.einsum("pxd,pd->px", dq, seed[batch.pairs.center[keep]])
    assert (grad[keep] - closed).abs().max() < 1e-12 * grad.abs().max() * 100
    assert not (~keep).any() or grad[~keep].abs().max() == 0


def test_invalid_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="cutoff_transition_width"):
        SoapParameters(("Cu",), 4.0, 4, 4, 0.5, cutoff_transition_width=5.0)
    with pytest.raises(ConfigError, match="radial_basis"):
        SoapParameters(("Cu",), 4.0, 4, 4, 0.5, radial_basis="bessel")
    with pytest.raises(ConfigError, match="distinct"):
        SoapParameters(("Cu", "Cu"), 4.0, 4, 4, 0.5)


def _featomic_in_matforge_layout(soap: SOAP, structures: list[Atoms]) -> np.ndarray:
    featomic = pytest.importorskip("featomic", reason="featomic (the SOAP reference) not installed")
    p = soap.parameters
    calculator = featomic.SoapPowerSpectrum(
        cutoff={
            "radius": p.cutoff,
            "smoothing": {"type": "ShiftedCosine", "width": p.cutoff_transition_width},
        },
        density={"type": "Gaussian", "width": p.atom_sigma},
        basis={
            "type": "TensorProduct",
            "max_angular": p.l_max,
            "radial": {"type": "Gto", "max_radial": p.n_max - 1},
        },
    )
    descriptor = calculator.compute(structures)
    descriptor = descriptor.keys_to_samples("center_type")
    block = descriptor.keys_to_properties(["neighbor_1_type", "neighbor_2_type"]).block()
    samples = block.samples
    order = np.lexsort((samples.column("atom"), samples.column("system")))
    values = block.values[order]
    column = {tuple(int(v) for v in row): k for k, row in enumerate(block.properties.values)}
    names = list(block.properties.names)
    numbers = {e: int(Atoms(e).numbers[0]) for e in soap.elements}
    out = np.empty((len(values), soap.n_features))
    for f, (a, b, n1, n2, ell) in enumerate(
        zip(
            soap.feature_a.tolist(),
            soap.feature_b.tolist(),
            soap.feature_n1.tolist(),
            soap.feature_n2.tolist(),
            soap.feature_l.tolist(),
            strict=True,
        )
    ):
        za, zb = numbers[soap.elements[a]], numbers[soap.elements[b]]
        key = {"neighbor_1_type": za, "neighbor_2_type": zb, "l": ell, "n_1": n1, "n_2": n2}
        if (za, zb) not in {(r[0], r[1]) for r in block.properties.values[:, :2].tolist()}:
            key = {"neighbor_1_type": zb, "neighbor_2_type": za, "l": ell, "n_1": n2, "n_2": n1}
        value = values[:, column[tuple(key[n] for n in names)]]
        if a == b and n1 != n2:
            value = value * math.sqrt(2)
        out[:, f] = (-1) ** ell * value
    return out


def test_soap_equals_featomic_on_periodic_multispecies_structures():
    soap = SOAP(SoapParameters(("Cu", "Ni"), 4.5, 5, 4, 0.45, normalize=False))
    structures = [alloy(0), alloy(7, repeat=(1, 2, 1))]
    reference = _featomic_in_matforge_layout(soap, structures)
    ours, _ = features(soap, structures)
    scale = np.abs(reference).max(axis=0)
    relative = np.abs(ours.numpy() - reference) / scale
    assert relative.max() < 1e-6, relative.max()
    # and the comparison can fail: another atom_sigma is far off
    other = SOAP(SoapParameters(("Cu", "Ni"), 4.5, 5, 4, 0.5, normalize=False))
    assert (np.abs(features(other, structures)[0].numpy() - reference) / scale).max() > 1e-2

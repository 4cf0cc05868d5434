"""Set encoders: permutation invariance, zero-fraction elements change nothing, a batch
gives what one-by-one evaluation gives (hypothesis), for both encoders and embeddings."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from matforge.core.composition import Composition
from matforge.transfer.featurize import CompositionBatch, batch_compositions
from matforge.transfer.model import ModelSpec, SetRegressor

ELEMENTS = ["Fe", "Ni", "Co", "Cr", "Mn", "Al", "Ti", "Cu", "Mo", "Nb", "V", "W", "C", "O"]

compositions = st.dictionaries(
    st.sampled_from(ELEMENTS), st.floats(0.01, 10.0), min_size=1, max_size=7
).map(Composition)

# Seeded so every worker builds the same networks; an untrained head is nearly flat (its
# output can move by 1e-6 relative between Fe-Ni and Fe-Co), so "changes" below means
# beyond float64 round-off, the same tolerance the invariance tests use for "equal".
torch.manual_seed(20261208)
MODELS = {
    (encoder, embedding): SetRegressor(ModelSpec(encoder=encoder, size=16, embedding=embedding))
    .double()
    .eval()
    for encoder in ("deepsets", "attention")
    for embedding in ("properties", "learned", "both")
}


def _batch(elements: list[int], fractions: list[float]) -> CompositionBatch:
    return CompositionBatch(
        torch.tensor([elements]), torch.tensor([fractions], dtype=torch.float64)
    )


@pytest.mark.parametrize("key", sorted(MODELS))
@settings(max_examples=25, deadline=None)
@given(composition=compositions, data=st.data())
def test_permutation_invariance(key, composition, data) -> None:
    model = MODELS[key]
    batch = batch_compositions([composition])
    order = data.draw(st.permutations(range(batch.elements.shape[1])))
    shuffled = CompositionBatch(batch.elements[:, order], batch.fractions[:, order])
    with torch.no_grad():
        assert torch.allclose(model(batch), model(shuffled), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("key", sorted(MODELS))
@settings(max_examples=25, deadline=None)
@given(composition=compositions, extra=st.sampled_from(["Zr", "Hf", "Ta", "Si"]))
def test_zero_fraction_element_changes_nothing(key, composition, extra) -> None:
    model = MODELS[key]
    batch = batch_compositions([composition])
    number = torch.tensor([[{"Zr": 40, "Hf": 72, "Ta": 73, "Si": 14}[extra]]])
    padded = CompositionBatch(
        torch.cat([batch.elements, number], 1),
        torch.cat([batch.fractions, torch.zeros(1, 1, dtype=torch.float64)], 1),
    )
    with torch.no_grad():
        assert torch.allclose(model(batch), model(padded), atol=1e-10, rtol=1e-10)
    # through the parser too: an element written with amount 0 is not in the set
    if extra not in composition.fractions:
        text = "".join(f"{e}{v!r}" for e, v in composition.fractions.items()) + f"{extra}0"
        parsed = batch_compositions([Composition(text)])
        assert sorted(parsed.elements[0].tolist()) == sorted(batch.elements[0].tolist())


@pytest.mark.parametrize("key", sorted(MODELS))
@settings(max_examples=15, deadline=None)
@given(many=st.lists(compositions, min_size=2, max_size=8))
def test_batch_equals_one_by_one(key, many) -> None:
    model = MODELS[key]
    with torch.no_grad():
        together = model(batch_compositions(many))
        alone = torch.cat([model(batch_compositions([c])) for c in many])
    assert torch.allclose(together, alone, atol=1e-10, rtol=1e-10)


def test_encoders_see_fractions_and_elements() -> None:
    """Not invariant to what matters: a different fraction or element changes the output."""
    for model in MODELS.values():
        with torch.no_grad():
            a = model(_batch([26, 28], [0.5, 0.5]))
            b = model(_batch([26, 28], [0.8, 0.2]))
            c = model(_batch([26, 27], [0.5, 0.5]))
        assert not torch.allclose(a, b, atol=1e-12, rtol=1e-10)
        assert not torch.allclose(a, c, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("resolution", [5000.0, 500.0])
def test_fractional_encoding_uses_its_resolution(resolution) -> None:
    """sin/cos of resolution * x * 50^(-2i/half) on x and on min(1, 0.0025 log2(f)^2)."""
    from matforge.transfer.encoders import FractionalEncoding

    encoding = FractionalEncoding(8, resolution).double()
    f = torch.tensor([0.3, 0.002], dtype=torch.float64)
    frequencies = 50.0 ** (-torch.arange(0, 4, 2, dtype=torch.float64) / 4)
    expected = []
    for x in (f, (0.0025 * torch.log2(f) ** 2).clamp(max=1.0)):
        angles = resolution * x.unsqueeze(-1) * frequencies
        expected += [torch.sin(angles), torch.cos(angles)]
    assert torch.allclose(encoding(f), torch.cat(expected, dim=-1), atol=1e-10)
    spec = ModelSpec(size=16, fraction_resolution=resolution)
    assert SetRegressor(spec).encoder.fractional.resolution == resolution

"""Training-data sources: Gaussian random fields, Cahn-Hilliard, image loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matforge.core.errors import DataError
from matforge.microstructure.job import correlation_length
from matforge.microstructure.sources import (
    cahn_hilliard,
    gaussian_random_field,
    load_images,
    threshold_fraction,
)


def test_gaussian_random_field_fraction_and_length_scale():
    generator = torch.Generator().manual_seed(0)
    fields = gaussian_random_field(8, (64, 64), 0.35, 3.0, generator=generator)
    assert set(fields.unique().tolist()) == {0.0, 1.0}
    assert torch.all(fields.flatten(1).sum(1) == round(0.35 * 64 * 64))
    raw = gaussian_random_field(16, (64, 64), 0.5, 3.0, generator=generator, binary=False)
    # the Gaussian covariance exp(-r^2 / 2 l^2): at lag l it is exp(-1/2) of the variance
    s2 = torch.fft.ifft2(torch.fft.fft2(raw).abs() ** 2).real.mean(0)
    assert float(s2[3, 0] / s2[0, 0]) == pytest.approx(np.exp(-0.5), abs=0.05)
    shorter = correlation_length(gaussian_random_field(8, (64, 64), 0.35, 2.0, generator=generator))
    longer = correlation_length(gaussian_random_field(8, (64, 64), 0.35, 4.0, generator=generator))
    assert float(longer.mean()) > 1.6 * float(shorter.mean())


def test_cahn_hilliard_separates_conserves_and_coarsens():
    generator = torch.Generator().manual_seed(1)
    early = cahn_hilliard(2, (48, 48), composition=-0.2, time=60, generator=generator)
    generator = torch.Generator().manual_seed(1)
    late = cahn_hilliard(2, (48, 48), composition=-0.2, time=400, generator=generator)
    assert torch.allclose(
        late.mean(dim=(1, 2)), torch.full((2,), -0.2, dtype=torch.float64), atol=1e-10
    )
    # two phases at the equilibrium compositions c = -1 and +1 (the early field is not yet)
    assert float(late.quantile(0.9)) > 0.95
    assert float(late.quantile(0.1)) < -0.95
    assert float(early.quantile(0.9)) < 0.9
    binary_early = threshold_fraction(early, 0.4)
    binary_late = threshold_fraction(late, 0.4)
    assert float(correlation_length(binary_late).mean()) > float(
        correlation_length(binary_early).mean()
    )


def test_load_images_png_tiff_numpy_and_errors(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    image = (rng.random((16, 16)) < 0.4).astype(np.uint8) * 255
    Image.fromarray(image).save(tmp_path / "a.png")
    frames = [Image.fromarray(image), Image.fromarray(255 - image)]
    frames[0].save(tmp_path / "stack.tif", save_all=True, append_images=frames[1:])
    np.save(tmp_path / "b.npy", image > 0)
    fields = load_images([tmp_path / "a.png", tmp_path / "stack.tif", tmp_path / "b.npy"])
    assert fields.shape == (4, 16, 16)
    assert torch.equal(fields[0], torch.tensor(image > 0, dtype=torch.float64))
    assert torch.equal(fields[2], 1 - fields[0])
    volume = load_images([tmp_path / "stack.tif"], spatial_dims=3)
    assert volume.shape == (1, 2, 16, 16)
    grey = (rng.random((16, 16)) * 255).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    with pytest.raises(DataError, match=r"grey\.png: not a binary image"):
        load_images([tmp_path / "grey.png"])
    assert load_images([tmp_path / "grey.png"], threshold=127).shape == (1, 16, 16)
    np.save(tmp_path / "small.npy", np.zeros((8, 8)))
    with pytest.raises(DataError, match=r"small\.npy: image shape \(8, 8\), expected \(16, 16\)"):
        load_images([tmp_path / "a.png", tmp_path / "small.npy"])
    with pytest.raises(DataError, match="unsupported image type"):
        load_images([tmp_path / "x.jpg"])

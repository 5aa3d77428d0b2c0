"""The one H&E stain jitter (pretext views and finetuning share it), checked against skimage's
``rgb2hed``: its units are skimage's, it scales and shifts haematoxylin and eosin per image, and it
leaves DAB alone."""

import numpy as np
import pytest
import torch
from skimage.color import rgb2hed

from sslbench.data.image import hed_jitter, random_stain_jitter
from sslbench.data.synthetic import Synthetic


@pytest.fixture(scope="module")
def rgb():
    image = Synthetic(num_images=1, size=64, seed=0).load()[0].image
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255


def stains(x: torch.Tensor) -> np.ndarray:
    return rgb2hed(x[0].permute(1, 2, 0).numpy())


def test_no_jitter_is_the_identity(rgb):
    torch.testing.assert_close(hed_jitter(rgb, torch.ones(1, 3), torch.zeros(1, 3)), rgb, atol=1e-5, rtol=0)
    unchanged = random_stain_jitter(rgb, 0.0, 0.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(unchanged, rgb, atol=1e-5, rtol=0)


def test_scale_and_shift_are_in_rgb2hed_units(rgb):
    out = hed_jitter(rgb, torch.tensor([[1.2, 1.0, 1.0]]), torch.tensor([[0.0, 0.01, 0.0]]))
    before, after = stains(rgb), stains(out)
    stained = (before[..., 0] > 0.02) & (before[..., 1] > 0.02)  # away from rgb2hed's clip at 0
    np.testing.assert_allclose(after[..., 0][stained], 1.2 * before[..., 0][stained], rtol=0.02)
    np.testing.assert_allclose(after[..., 1][stained], before[..., 1][stained] + 0.01, atol=2e-3)
    np.testing.assert_allclose(after[..., 2][stained], before[..., 2][stained], atol=2e-3)


def test_random_jitter_draws_per_image_factors_within_range_and_leaves_dab_alone(rgb):
    batch = rgb.repeat(8, 1, 1, 1)
    out = random_stain_jitter(batch, 0.1, 0.0, torch.Generator().manual_seed(0))
    before = stains(rgb)
    stained = before[..., 0] > 0.02
    ratios = []
    for image in out:
        after = stains(image[None])
        ratio = np.median(after[..., 0][stained] / before[..., 0][stained])
        ratios.append(ratio)
        np.testing.assert_allclose(after[..., 2][stained], before[..., 2][stained], atol=2e-3)
    assert all(0.9 - 1e-3 <= r <= 1.1 + 1e-3 for r in ratios)
    assert max(ratios) - min(ratios) > 0.05  # each image draws its own factor

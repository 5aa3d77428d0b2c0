"""MAE (He et al. 2022) on a tiny DeiT: the paper's patch order and normalised-pixel loss on hidden
patches only, an encoder that never sees a hidden patch, and one-line refusals of a CNN or a crop off
the patch grid."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from sslbench.cli import app
from sslbench.config import resolve_run_config
from sslbench.data.synthetic import Synthetic
from sslbench.data.base import image_tensor
from sslbench.errors import ConfigError
from sslbench.models import build_encoder
from sslbench.pretext.base import normalize
from sslbench.pretext.mae import MAE, mae_loss, patchify
from tiny import tiny_args

DEIT = dict(type="TimmViT", name="deit_tiny_patch16_224")


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def images():
    return [image_tensor(s.image) for s in Synthetic(num_images=2, size=96, seed=0).load()]


def small_mae(encoder, crop: int = 64) -> MAE:
    mae = MAE(encoder.out_channels, crop=crop, decoder_width=32, decoder_depth=1, decoder_heads=4)
    mae.init_encoder(encoder)
    return mae


def test_patchify_is_their_einsum_order():
    images = torch.randn(2, 3, 8, 12, generator=generator())
    expected = torch.einsum("nchpwq->nhwpqc", images.reshape(2, 3, 2, 4, 3, 4)).reshape(2, 6, 48)
    assert torch.equal(patchify(images, 4), expected)


def test_mae_loss_is_the_normalised_pixel_error_on_hidden_patches_only():
    prediction, target = torch.randn(2, 5, 12, generator=generator(1)), torch.randn(2, 5, 12, generator=generator(2))
    hidden = torch.tensor([[1, 0, 1, 1, 0], [0, 0, 1, 1, 1]], dtype=torch.float32)
    errors = []
    for b in range(2):
        for n in range(5):
            if hidden[b, n]:
                t = target[b, n]
                normalised = (t - t.mean()) / (t.var(unbiased=True) + 1e-6) ** 0.5
                errors.append(((prediction[b, n] - normalised) ** 2).mean())
    assert mae_loss(prediction, target, hidden).item() == pytest.approx(float(sum(errors) / len(errors)), rel=1e-6)
    moved = prediction.clone()
    moved[hidden == 0] += 5.0  # a visible patch's prediction does not count
    assert mae_loss(moved, target, hidden).item() == pytest.approx(mae_loss(prediction, target, hidden).item())


def test_sample_keeps_a_quarter_of_the_patches_each_its_own():
    mae = small_mae(build_encoder(DEIT))
    batch = mae.sample([torch.zeros(3, 96, 96, dtype=torch.uint8)] * 2, 6, generator())
    visible = batch["visible"]
    assert batch["image"].shape == (6, 3, 64, 64) and visible.shape == (6, 4)  # 16 patches, int(16 · 0.25)
    assert all(len(set(row.tolist())) == 4 and 0 <= min(row) and max(row) < 16 for row in visible)
    assert len({tuple(sorted(row.tolist())) for row in visible}) > 1


def with_new_pixels(images: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """(B, 3, 64, 64) images with random pixels in the 16² patches where ``where`` (B, 16) is True."""
    patches = patchify(images, 16).clone()
    patches[where] = torch.randn_like(patches[where])
    return patches.reshape(-1, 4, 4, 16, 16, 3).permute(0, 5, 1, 3, 2, 4).reshape(images.shape)


def test_the_encoder_never_sees_a_hidden_patch(images):
    torch.manual_seed(0)
    encoder = build_encoder(DEIT).eval()
    mae = small_mae(encoder).eval()
    batch = mae.sample(images, 2, generator())
    pixels = normalize(batch["image"])
    prediction, hidden = mae.reconstruct(encoder, pixels, batch["visible"])
    hidden = hidden.bool()
    assert hidden.sum(1).tolist() == [12, 12]
    changed = with_new_pixels(pixels, hidden)
    assert torch.equal(patchify(changed, 16)[~hidden], patchify(pixels, 16)[~hidden])
    torch.testing.assert_close(mae.reconstruct(encoder, changed, batch["visible"])[0], prediction)
    # the same change to the visible patches does reach the prediction
    assert not torch.allclose(mae.reconstruct(encoder, with_new_pixels(pixels, ~hidden), batch["visible"])[0],
                              prediction)


def test_one_step_lowers_the_loss_on_a_fixed_batch(images):
    torch.manual_seed(0)
    encoder = build_encoder(DEIT)
    mae = small_mae(encoder)
    batch = mae.sample(images, 4, generator())
    optimizer = torch.optim.SGD([*encoder.parameters(), *mae.parameters()], lr=1e-2)
    before = mae(encoder, batch)["loss"]
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = mae(encoder, batch)["loss"]
    assert after.item() < before.item()


def test_a_cnn_is_refused_in_one_line_before_any_work(tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--pretext", "mae", "--out", str(run), *tiny_args()])
    error = str(result.exception)
    assert isinstance(result.exception, ConfigError) and "\n" not in error
    assert error.startswith("pretext mae cannot pretrain backbone resnet18 (a CNN): it masks a ViT's patch tokens")
    assert "use a ViT backbone" in error and not run.exists()


def test_a_crop_off_the_patch_grid_names_the_key_and_a_fitting_value():
    with pytest.raises(ConfigError, match=r"set pretext\.crop to 64"):
        small_mae(build_encoder(DEIT), crop=70)


def test_the_cpu_preset_gives_mae_a_one_block_decoder_and_keeps_the_papers_elsewhere():
    for preset, depth in [("cpu", 1), ("paper", 8)]:
        cfg = resolve_run_config("mae", preset=preset, backbone="vit_small_patch16_224", allow_synthetic=True)
        assert cfg.pretext["decoder_depth"] == depth

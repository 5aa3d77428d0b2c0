import pytest
import torch
import torch.nn.functional as F

from sslbench.config import resolve_run_config
from sslbench.models import build_encoder
from sslbench.pretext.instance_aware import InstanceAware, ranking_loss, triplet_loss
from sslbench.registry import PRETEXTS, build

CHANNELS = (3, 64, 64, 128, 256, 512)


def _images(count=3, size=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, size, size + 17 * i), generator=g, dtype=torch.uint8) for i in range(count)]


def test_triplet_loss_matches_hand_computation():
    za = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    zp = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    zn = torch.tensor([[0.0, 2.0], [0.0, 1.0]])
    # d(a,p) = 1; d(a,n) = 4 and 1 -> max(0, 1-4+1) = 0 and max(0, 1-1+1) = 1; mean 0.5
    assert triplet_loss(za, zp, zn, margin=1.0).item() == pytest.approx(0.5)
    assert triplet_loss(za, zp, zn, margin=0.0).item() == pytest.approx(0.0)


def test_ranking_loss_matches_hand_computation():
    score_pos, score_neg = torch.tensor([2.0, 0.0]), torch.tensor([0.5, 0.5])
    # max(0, 0.5-2+1) = 0 and max(0, 0.5-0+1) = 1.5
    assert ranking_loss(score_pos, score_neg, margin=1.0).item() == pytest.approx(0.75)


def test_sampler_geometry_follows_the_paper():
    images = _images()
    crop, scales = 96, (64, 32, 16, 8)
    task = InstanceAware(CHANNELS, crop=crop, neg_scales=scales)
    index_gen = torch.Generator().manual_seed(7)
    image_index = torch.randint(0, len(images), (32,), generator=index_gen).tolist()
    batch = task.sample(images, 32, torch.Generator().manual_seed(7))
    assert batch["anchor"].shape == batch["positive"].shape == batch["negative"].shape == (32, 3, crop, crop)
    assert batch["anchor"].dtype == torch.uint8
    seen_scales = set()
    for i, ((ay, ax, a_size), (py, px, p_size), (ny, nx, n_size)) in enumerate(batch["boxes"].tolist()):
        image = images[image_index[i]]
        assert a_size == p_size == crop and n_size in scales
        seen_scales.add(n_size)
        # positive: adjacent (overlapping or touching) and not the anchor itself
        assert abs(py - ay) <= crop and abs(px - ax) <= crop and (py, px) != (ay, ax)
        # negative: a sub-crop of the positive, resized to the crop size
        assert py <= ny and ny + n_size <= py + crop and px <= nx and nx + n_size <= px + crop
        assert torch.equal(batch["anchor"][i], image[:, ay:ay + crop, ax:ax + crop])
        assert torch.equal(batch["positive"][i], image[:, py:py + crop, px:px + crop])
        expected = F.interpolate(image[None, :, ny:ny + n_size, nx:nx + n_size].float(), size=(crop, crop),
                                 mode="bilinear", align_corners=False).round().clamp(0, 255).to(torch.uint8)
        assert torch.equal(batch["negative"][i], expected[0])
    assert seen_scales == set(scales)


def test_sampler_is_deterministic_for_a_seed():
    task = InstanceAware(CHANNELS, crop=64, neg_scales=(32, 16))
    first = task.sample(_images(), 4, torch.Generator().manual_seed(3))
    second = task.sample(_images(), 4, torch.Generator().manual_seed(3))
    assert torch.equal(first["boxes"], second["boxes"]) and torch.equal(first["negative"], second["negative"])


@pytest.mark.parametrize(("use_st", "use_cr", "keys"), [(True, True, {"loss_st", "loss_cr"}),
                                                       (True, False, {"loss_st"}), (False, True, {"loss_cr"})])
def test_forward_switches_and_training_step_lowers_loss(use_st, use_cr, keys):
    torch.manual_seed(0)
    encoder = build_encoder(dict(type="SmpEncoder", name="resnet18"))
    task = InstanceAware(encoder.out_channels, crop=64, neg_scales=(32, 16), use_st=use_st, use_cr=use_cr)
    batch = task.sample(_images(), 4, torch.Generator().manual_seed(0))
    params = list(encoder.parameters()) + list(task.parameters())
    optimizer = torch.optim.SGD(params, lr=0.01)
    losses = task(encoder, batch)
    assert set(losses) == keys | {"loss"}
    assert losses["loss"].item() == pytest.approx(sum(losses[k].item() for k in keys), rel=1e-5)
    for _ in range(3):
        optimizer.zero_grad()
        task(encoder, batch)["loss"].backward()
        optimizer.step()
    encoder.eval()  # same BatchNorm statistics for the before/after comparison
    after = task(encoder, batch)["loss"].item()
    encoder.train()
    assert after < losses["loss"].item() or after == 0.0


@pytest.mark.parametrize("normalize", [True, False])
def test_embedding_normalisation_is_an_option_and_both_variants_train(normalize):
    torch.manual_seed(0)
    encoder = build_encoder(dict(type="SmpEncoder", name="resnet18"))
    cfg = resolve_run_config("instance_aware", overrides=[f"pretext.normalize_embedding={normalize}"])
    cfg.pretext.update(crop=64, neg_scales=(32, 16))
    task = build(PRETEXTS, cfg.pretext, encoder_channels=encoder.out_channels)
    batch = task.sample(_images(), 4, torch.Generator().manual_seed(0))
    norms = task.embed_features(encoder, batch["anchor"]).norm(dim=1)
    # normalised: on the unit sphere; the paper's unnormalised z: the linear layer's scale, not 1
    assert torch.allclose(norms, torch.ones(4), atol=1e-5) == normalize
    assert normalize or (norms - 1).abs().min() > 0.05
    optimizer = torch.optim.SGD(list(encoder.parameters()) + list(task.parameters()), lr=0.01)
    for _ in range(3):
        losses = task(encoder, batch)
        assert all(torch.isfinite(v) for v in losses.values()), losses
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()


@pytest.mark.parametrize("kwargs", [dict(use_st=False, use_cr=False), dict(crop=64, neg_scales=(128,)),
                                    dict(margin_st=-1.0), dict(crop=0)])
def test_invalid_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        InstanceAware(CHANNELS, **kwargs)


def test_match_blur_sends_anchor_and_positive_through_the_negatives_resampling():
    images = _images(count=2, size=160)
    task = InstanceAware(CHANNELS, crop=64, neg_scales=(32, 16), match_blur=True)
    plain = InstanceAware(CHANNELS, crop=64, neg_scales=(32, 16))
    batch, reference = task.sample(images, 6, torch.Generator().manual_seed(3)), plain.sample(
        images, 6, torch.Generator().manual_seed(3))
    assert torch.equal(batch["boxes"], reference["boxes"]) and torch.equal(batch["negative"], reference["negative"])
    for i, (_, _, (_, _, side)) in enumerate(batch["boxes"].tolist()):
        for view in ("anchor", "positive"):
            small = F.interpolate(reference[view][i:i + 1].float(), size=(side, side), mode="bilinear",
                                  antialias=True, align_corners=False).round().clamp(0, 255).to(torch.uint8)
            expected = F.interpolate(small.float(), size=(64, 64), mode="bilinear",
                                     align_corners=False).round().clamp(0, 255).to(torch.uint8)
            assert torch.equal(batch[view][i], expected[0])


def _high_frequency(views: torch.Tensor) -> float:
    return (views.float()[..., 1:, :] - views.float()[..., :-1, :]).abs().mean().item()


def test_match_blur_removes_the_sharpness_gap_between_the_views():
    from sslbench.data.base import image_tensor
    from sslbench.data.synthetic import Synthetic

    images = [image_tensor(s.image) for s in Synthetic(num_images=2, size=256, seed=0).load()]
    for scale in (96, 64):
        plain = InstanceAware(CHANNELS, crop=128, neg_scales=(scale,)).sample(images, 16, torch.Generator().manual_seed(0))
        matched = InstanceAware(CHANNELS, crop=128, neg_scales=(scale,), match_blur=True).sample(
            images, 16, torch.Generator().manual_seed(0))
        # H&E tiles: the upsampled negative is much smoother than a native crop; matched views are not
        assert _high_frequency(plain["anchor"]) > 1.5 * _high_frequency(plain["negative"])
        for view in ("anchor", "positive"):
            assert _high_frequency(matched[view]) < 1.4 * _high_frequency(matched["negative"])  # 2.7x unmatched


def test_shuffle_roles_swaps_positive_and_negative_in_a_random_half_of_the_triplets():
    torch.manual_seed(0)
    encoder = build_encoder(dict(type="SmpEncoder", name="resnet18"))
    task = InstanceAware(encoder.out_channels, crop=64, neg_scales=(32,), shuffle_roles=True)
    batch = task.sample(_images(count=2, size=128), 64, torch.Generator().manual_seed(1))
    assert 16 < int(batch["swap"].sum()) < 48
    encoder.eval()  # the same BatchNorm statistics for both forward passes below
    with torch.no_grad():
        z = task.embed_features(encoder, torch.cat([batch["anchor"], batch["positive"], batch["negative"]]))
        za, zp, zn = z.chunk(3)
        swap = batch["swap"][:, None]
        expected = task.losses(za, torch.where(swap, zn, zp), torch.where(swap, zp, zn))
        got = task(encoder, batch)
    for key in ("loss", "loss_st", "loss_cr"):
        assert got[key].item() == pytest.approx(expected[key].item(), rel=1e-5)
    assert "swap" not in InstanceAware(CHANNELS, crop=64, neg_scales=(32,)).sample(
        _images(count=1, size=128), 4, torch.Generator().manual_seed(1))

"""The pretext zoo: samplers' shapes and labels, one optimisation step, ImageNet init, configs, runs."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file
from typer.testing import CliRunner

from sslbench.cli import app
from sslbench.config import component_names, resolve_run_config
from sslbench.data.synthetic import Synthetic
from sslbench.engine.weights import load_encoder
from sslbench.errors import ConfigError, DataError
from sslbench.models import build_encoder
from sslbench.pretext.barlow_twins import BarlowTwins, barlow_twins_loss
from sslbench.pretext.byol import BYOL
from sslbench.pretext.colorme import ColorMe
from sslbench.pretext.imagenet import ImageNet
from sslbench.pretext.jigsaw import Jigsaw, permutation_set
from sslbench.pretext.rotnet import RotNet
from sslbench.pretext.simclr import SimCLR
from sslbench.registry import PRETEXTS, build
from tiny import VIT_ONLY_PRETEXTS, WEIGHT_FILE_STRATEGIES, assert_scored, still_initial, tiny_args

RESNET18 = dict(type="SmpEncoder", name="resnet18")
CHANNELS = (3, 64, 64, 128, 256, 512)


def encoder18():
    return build_encoder(RESNET18)


@pytest.fixture(scope="module")
def images():
    """Synthetic H&E tiles as the runner hands them over: (3, H, W) uint8."""
    return [torch.from_numpy(s.image).permute(2, 0, 1).contiguous()
            for s in Synthetic(num_images=2, size=128, seed=0).load()]


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def source_crop(images, box, size):
    index, top, left = box.tolist()
    return images[index][:, top:top + size, left:left + size]


def test_permutation_set_is_distinct_and_spread():
    permutation_set.cache_clear()
    perms = permutation_set(100)
    assert len(perms) == 100 and len(set(perms)) == 100
    assert all(sorted(p) == list(range(9)) for p in perms)
    distances = [sum(a != b for a, b in zip(p, q)) for p, q in itertools.combinations(perms, 2)]
    assert min(distances) >= 6
    assert permutation_set(100) is perms  # cached
    permutation_set.cache_clear()
    assert permutation_set(100) == perms  # deterministic: a fixed seed, not the global RNG
    assert permutation_set(10) == perms[:10]  # greedy: a smaller set is a prefix


def test_permutation_count_is_checked():
    with pytest.raises(ValueError, match="between 2 and"):
        permutation_set(1)


def test_jigsaw_labels_invert_the_shuffle(images):
    pretext = Jigsaw(CHANNELS, crop=96, num_permutations=24)
    batch = pretext.sample(images, 4, generator())
    cell, tile = 32, 32 - round(0.15 * 32)
    assert batch["tiles"].shape == (4, 9, 3, tile, tile) and batch["tiles"].dtype == torch.uint8
    assert batch["label"].shape == (4,) and 0 <= batch["label"].min() and batch["label"].max() < 24
    for tiles, label, box, offsets in zip(batch["tiles"], batch["label"], batch["boxes"], batch["offsets"]):
        perm = torch.tensor(pretext.permutations[label])
        restored = tiles[torch.argsort(perm)]  # puzzle position i holds cell perm[i]
        crop = source_crop(images, box, 96)
        for c in range(9):
            y, x = c // 3 * cell + offsets[c, 0], c % 3 * cell + offsets[c, 1]
            assert torch.equal(restored[c], crop[:, y:y + tile, x:x + tile])


def test_rotnet_labels_match_the_rotation(images):
    batch = RotNet(CHANNELS, crop=64).sample(images, 3, generator())
    assert batch["image"].shape == (12, 3, 64, 64) and batch["label"].tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    for i, (image, label) in enumerate(zip(batch["image"], batch["label"])):
        crop = source_crop(images, batch["boxes"][i % 3], 64)
        assert torch.equal(image.rot90(-int(label), dims=(1, 2)), crop)
        if label % 2:  # a quarter turn really moved pixels: the label is not trivially satisfiable
            assert not torch.equal(image, crop)


@pytest.mark.parametrize("channel", [0, 2])
def test_colorme_targets_are_the_held_out_channels(images, channel):
    batch = ColorMe(CHANNELS, crop=64, channel=channel).sample(images, 3, generator())
    assert batch["gray"].shape == (3, 3, 64, 64) and batch["target"].shape == (3, 2, 64, 64)
    held_out = [c for c in range(3) if c != channel]
    for gray, target, box in zip(batch["gray"], batch["target"], batch["boxes"]):
        crop = source_crop(images, box, 64)
        assert torch.equal(target, crop[held_out])
        assert all(torch.equal(gray[c], crop[channel]) for c in range(3))


# moco_v2 is not here: every forward queues its keys, so a second pass on the same batch is another loss.
# The joint-embedding losses over 8 views are steep (BatchNorm over a tiny batch): a smaller step.
@pytest.mark.parametrize(("make", "lr"), [
    (lambda: RotNet(CHANNELS, crop=64), 1e-2), (lambda: Jigsaw(CHANNELS, crop=96), 1e-2),
    (lambda: ColorMe(CHANNELS, crop=64), 1e-2), (lambda: SimCLR(CHANNELS, crop=64), 1e-5),
    (lambda: BYOL(CHANNELS, crop=64, hidden_dim=256, dim=64), 1e-5)],
    ids=["rotnet", "jigsaw", "colorme", "simclr", "byol"])
def test_one_step_lowers_the_loss_on_a_fixed_batch(images, make, lr):
    torch.manual_seed(0)
    encoder, pretext = encoder18(), make()
    pretext.init_encoder(encoder)
    batch = pretext.sample(images, 4, generator())
    optimizer = torch.optim.SGD([*encoder.parameters(), *pretext.parameters()], lr=lr)
    before = pretext(encoder, batch)["loss"]
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = pretext(encoder, batch)["loss"]
    assert math.isfinite(before.item()) and after.item() < before.item()


def test_barlow_twins_loss_is_the_papers_formula():
    z1, z2 = torch.randn(6, 3, generator=generator(1)), torch.randn(6, 3, generator=generator(2))

    def standardised(z):  # each dimension over the batch, biased variance, BatchNorm's eps
        return [[(z[n, i] - z[:, i].mean()) / math.sqrt(z[:, i].var(unbiased=False) + 1e-5) for i in range(3)]
                for n in range(6)]

    a, b = standardised(z1), standardised(z2)
    c = [[sum(a[n][i] * b[n][j] for n in range(6)) / 6 for j in range(3)] for i in range(3)]
    lambd = 0.5  # large enough that the off-diagonal term moves the loss well past the tolerance
    expected = sum((1 - c[i][i]) ** 2 for i in range(3)) + lambd * sum(
        c[i][j] ** 2 for i in range(3) for j in range(3) if i != j)
    assert barlow_twins_loss(z1, z2, lambd).item() == pytest.approx(float(expected), rel=1e-5)
    assert barlow_twins_loss(z1, z1, 0.0).item() == pytest.approx(0, abs=1e-4)  # same views: C's diagonal is 1


# a projector of the configured width (8192 for Barlow Twins: 138M weights) adds nothing here
SMALL_HEADS = {"barlow_twins": ["pretext.dim=256"], "byol": ["pretext.hidden_dim=256"],
               "dino": ["pretext.hidden_dim=256", "pretext.prototypes=256"],
               "mae": ["pretext.decoder_width=64", "pretext.decoder_heads=4"]}


@pytest.mark.parametrize("name", [n for n in component_names("pretext") if n not in ("scratch", *WEIGHT_FILE_STRATEGIES)])
def test_every_parameter_gets_a_gradient_so_ddp_needs_no_unused_parameter_search(images, name):
    backbone = "deit_tiny_patch16_224" if name in VIT_ONLY_PRETEXTS else "resnet18"
    cfg = resolve_run_config(name, preset="smoke", backbone=backbone, overrides=SMALL_HEADS.get(name))
    encoder = build_encoder(cfg.backbone)
    pretext = build(PRETEXTS, cfg.pretext, encoder_channels=encoder.out_channels)
    pretext.init_encoder(encoder)
    pretext(encoder, pretext.sample(images, 2, generator()))["loss"].backward()
    # DDP's rule: every trainable parameter; momentum copies are requires_grad=False (or buffers)
    missing = [n for n, p in [*encoder.named_parameters(), *pretext.named_parameters()]
               if p.requires_grad and p.grad is None]
    assert not missing, f"{name}: parameters outside the loss: {missing}"


# --- ImageNet init -----------------------------------------------------------------------------

def assert_same_weights(encoder, reference: dict):
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, reference[key]), key


def test_imagenet_loads_a_torchvision_pth_under_prefixes(tmp_path):
    reference = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "r18.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in reference.items()}}, path)
    encoder = encoder18()
    ImageNet(CHANNELS, weights=str(path)).init_encoder(encoder)
    assert_same_weights(encoder, reference)


def test_imagenet_loads_timm_safetensors_without_bn_counters(tmp_path):
    # timm exports (and torchvision's original ResNet files) carry no num_batches_tracked buffers
    reference = {k: v for k, v in timm.create_model("resnet18", pretrained=False).state_dict().items()
                 if not k.endswith("num_batches_tracked")}
    path = tmp_path / "r18.safetensors"
    save_file({k: v.contiguous() for k, v in reference.items()}, str(path))
    encoder = encoder18()
    ImageNet(CHANNELS, weights=str(path)).init_encoder(encoder)
    assert_same_weights(encoder, {**encoder.state_dict(), **reference})


def test_imagenet_without_weights_names_the_option():
    with pytest.raises(ConfigError, match=r"--set pretext\.weights=PATH"):
        ImageNet(CHANNELS).init_encoder(encoder18())


def test_imagenet_rejects_another_depth_naming_file_and_keys(tmp_path):
    path = tmp_path / "r34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(DataError, match=r"r34\.pth.*unexpected.*layer1\.2"):
        ImageNet(CHANNELS, weights=str(path)).init_encoder(encoder18())


class NotATensor:
    pass


def test_imagenet_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"payload": NotATensor()}, path)
    with pytest.raises(DataError, match="weights_only=True"):
        ImageNet(CHANNELS, weights=str(path)).init_encoder(encoder18())


# --- configs and runs --------------------------------------------------------------------------

def test_every_zoo_task_has_a_described_config():
    names = component_names("pretext")
    for name in ("jigsaw", "rotnet", "colorme", "imagenet", "instance_aware", "instance_aware_st",
                 "instance_aware_cr", "scratch", "simclr", "moco_v2", "byol", "barlow_twins", "dino"):
        assert names[name], name
    for name in ("jigsaw", "rotnet", "colorme", "simclr", "moco_v2", "byol", "barlow_twins", "dino"):
        assert resolve_run_config(name, preset="smoke").pretext["crop"] == 128  # the preset scales crop


TINY = ["--preset", "smoke", *tiny_args({"data.size": 128, "pretrain.batch_size": 2, "pretrain.log_every": 1,
                                         "finetune.crop": 64, "finetune.batch_size": 2, "evaluation.tile": 128,
                                         "evaluation.overlap": 0})]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rotnet", "jigsaw", "colorme", "imagenet", "simclr", "moco_v2", "byol",
                                  "barlow_twins", "dino"])
def test_sslbench_run_each_task(tmp_path, name):
    extra = ["--set", "pretext.crop=64", *(arg for setting in SMALL_HEADS.get(name, []) for arg in ("--set", setting))]
    if name == "imagenet":
        reference = torchvision.models.resnet18(weights=None).state_dict()
        torch.save(reference, tmp_path / "r18.pth")
        extra = ["--set", f"pretext.weights={tmp_path / 'r18.pth'}"]
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--pretext", name, *TINY, *extra, "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert_scored(metrics["test"], metrics["images"]["test"])
    sidecar = json.loads((out / "encoder.json").read_text())
    assert sidecar["pretext"] == name
    if name == "imagenet":  # the encoder is saved before finetuning: exactly the file's weights
        assert sidecar["steps"] == 0
        saved = load_encoder(out / "encoder.safetensors")
        assert all(torch.equal(saved[k], reference[k]) for k in saved)
    else:
        assert [h["step"] for h in metrics["history"]["pretrain"]] == [1, 2]
        assert not any(still_initial(out / "encoder.safetensors", RESNET18).values())
        # the exported encoder is the online one alone: smp's keys, no momentum copy or head
        assert load_encoder(out / "encoder.safetensors").keys() == encoder18().state_dict().keys()

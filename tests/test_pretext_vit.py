"""Every registered pretext on a ViT (a tiny DeiT, patch 16): it pretrains it — finite losses, every
encoder weight moved by the loss — or refuses the pair in one line before any work; jigsaw's tiles are
whole patches."""

from __future__ import annotations

import math

import pytest
import timm
import torch
from typer.testing import CliRunner

from sslbench.cli import app
from sslbench.config import component_names, resolve_run_config
from sslbench.data.synthetic import Synthetic
from sslbench.errors import ConfigError
from sslbench.models import build_encoder
from sslbench.pipeline.phases import pretrain
from sslbench.pretext.jigsaw import Jigsaw
from tiny import WEIGHT_FILE_STRATEGIES, tiny_args

DEIT = "deit_tiny_patch16_224"
#: pretexts that refuse a ViT, and the start of their one-line reason
REFUSED = {"colorme": "pretext colorme cannot pretrain backbone deit_tiny_patch16_224 (a ViT): its decoder"}
# two logged steps without weight decay, so a weight that moved was moved by the loss's gradient
STEPS = ["pretrain.steps=2", "pretrain.batch_size=2", "pretrain.log_every=1", "pretrain.weight_decay=0"]
#: 64² crops (4×4 patches) and small heads, each set where the pretext has the option
SIZES = {"crop": 64, "neg_scales": "(32, 16)", "dim": 64, "hidden_dim": 64, "prototypes": 64, "queue": 16,
         "num_permutations": 8, "decoder_width": 64, "decoder_heads": 4}


def vit_config(name: str, extra: tuple[str, ...] = ()):
    options = resolve_run_config(name, backbone=DEIT).pretext
    sizes = [f"pretext.{key}={value}" for key, value in SIZES.items() if key in options]
    return resolve_run_config(name, backbone=DEIT, device="cpu", overrides=[*STEPS, *sizes, *extra])


@pytest.fixture(scope="module")
def images():
    return Synthetic(num_images=2, size=96, seed=0).load()


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in component_names("pretext") if n not in REFUSED])
def test_every_pretext_pretrains_a_vit_or_initialises_it(tmp_path, images, name):
    weights = {}
    if name in WEIGHT_FILE_STRATEGIES:  # a timm DeiT file, as a hub snapshot holds it
        weights = timm.create_model(DEIT, pretrained=False).state_dict()
        torch.save(weights, tmp_path / "deit.pth")
    cfg = vit_config(name, (f"pretext.weights={tmp_path / 'deit.pth'}",) if weights else ())
    torch.manual_seed(0)
    encoder = build_encoder(cfg.backbone)
    start = {key: value.clone() for key, value in encoder.named_parameters()}
    pretext, history = pretrain(cfg, encoder, images, torch.device("cpu"), torch.Generator().manual_seed(0))
    now = dict(encoder.named_parameters())
    if not pretext.pretrains:
        assert history == []
        expected = {key: weights[key.removeprefix("model.")] for key in now} if weights else start
        assert all(torch.equal(now[key], expected[key]) for key in now)
        return
    assert [h["step"] for h in history] == [1, 2] and all(math.isfinite(h["loss"]) for h in history), history
    # the last block's fc2 bias shifts every crop's pooled features alike; a projector that batch-normalises
    # after its first linear layer removes that shift, so its gradient is zero up to rounding (0 under bf16)
    shift_only = ({f"model.blocks.{len(encoder.model.blocks) - 1}.mlp.fc2.bias"}
                  if batch_norm_after_first_linear(getattr(pretext, "projector", None)) else set())
    unmoved = [key for key in now if key not in shift_only and torch.equal(now[key], start[key])]
    assert not unmoved, f"{name}: encoder weights the loss did not move: {unmoved}"


def batch_norm_after_first_linear(projector) -> bool:
    return isinstance(projector, torch.nn.Sequential) and isinstance(projector[1], torch.nn.BatchNorm1d)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_pretext_that_cannot_train_a_vit_is_refused_in_one_line_before_any_work(tmp_path, name):
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--pretext", name, "--out", str(run), *tiny_args(backbone=DEIT)])
    error = result.exception
    assert isinstance(error, ConfigError) and str(error).startswith(REFUSED[name]) and "\n" not in str(error), error
    assert not run.exists()
    resolve_run_config(name, backbone="resnet18")  # a CNN is fine: no error


@pytest.mark.parametrize(("crop", "tile"), [(64, 16), (128, 32), (512, 144)])
def test_jigsaw_tiles_on_a_vit_are_whole_patches(crop, tile):
    encoder = build_encoder(dict(type="TimmViT", name=DEIT))
    jigsaw = Jigsaw(encoder.out_channels, crop=crop, num_permutations=4)
    jigsaw.init_encoder(encoder)
    source = [torch.zeros(3, crop, crop, dtype=torch.uint8)]
    assert jigsaw.sample(source, 1, torch.Generator().manual_seed(0))["tiles"].shape[-1] == tile


def test_jigsaw_cells_smaller_than_a_patch_are_refused():
    encoder = build_encoder(dict(type="TimmViT", name=DEIT))
    with pytest.raises(ConfigError, match=r"set pretext\.crop to at least 48"):
        Jigsaw(encoder.out_channels, crop=45).init_encoder(encoder)

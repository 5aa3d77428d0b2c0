"""ViT backbones with the UNETR head: any crop side, head choice and refusal, a tiny end-to-end run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from sslbench.cli import app
from sslbench.config import component_names, resolve_run_config
from sslbench.errors import ConfigError
from sslbench.models import build_segmenter
from tiny import assert_scored, still_initial, tiny_args

VIT_S = dict(type="TimmViT", name="vit_small_patch16_224")
SMALL_UNETR = dict(type="UNETR", classes=3, decoder_channels=(32, 32, 16, 16))


@pytest.fixture(scope="module")
def vit_s():
    torch.manual_seed(0)
    return build_segmenter(VIT_S, SMALL_UNETR).eval()


@pytest.mark.parametrize("side", [64, 96])
def test_vit_s16_segmenter_gives_full_resolution_3_class_logits(vit_s, side):
    with torch.no_grad():
        logits = vit_s(torch.randn(2, 3, side, side))
    assert logits.shape == (2, 3, side, side)
    assert torch.isfinite(logits).all()


def test_encoder_taps_four_blocks_depth_over_4_apart_at_the_patch_stride(vit_s):
    encoder = vit_s.encoder
    assert encoder.blocks == [2, 5, 8, 11]
    features = encoder(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape) for f in features] == [(1, 3, 64, 96), *[(1, 384, 4, 6)] * 4]


def test_register_token_vit_with_patch_14_decodes_any_stride_16_side():
    # DINOv2-style: 4 register tokens, patch 14, so 64 px is 4.6 patches (timm pads, the head resizes)
    model = build_segmenter(dict(type="TimmViT", name="vit_small_patch14_reg4_dinov2", img_size=56), SMALL_UNETR)
    assert model.encoder.model.num_prefix_tokens == 5
    logits = model(torch.randn(1, 3, 64, 64))
    logits.sum().backward()
    assert logits.shape == (1, 3, 64, 64)
    assert all(p.grad is not None for p in model.parameters()), "a parameter outside the graph breaks DDP"


@pytest.mark.parametrize("name", ["tu-vit_small_patch16_224", "vit_base_patch16_224", "deit_tiny_patch16_224",
                                  "vit_small_patch14_reg4_dinov2"])
def test_vit_names_get_the_timm_vit_backbone_and_unetr_by_default(name):
    cfg = resolve_run_config("scratch", backbone=name)
    assert cfg.backbone == {"type": "TimmViT", "name": name.removeprefix("tu-")}
    assert cfg.head["type"] == "UNETR"
    assert resolve_run_config("scratch", backbone="resnet18").head["type"] == "Unet"


def test_a_head_that_cannot_decode_the_backbone_is_a_one_line_error():
    with pytest.raises(ConfigError, match="head unet cannot decode backbone vit_small_patch16_224"):
        resolve_run_config("scratch", backbone="vit_small_patch16_224", head="unet")
    with pytest.raises(ConfigError, match="head unetr decodes a ViT's token maps, not backbone resnet18"):
        resolve_run_config("scratch", backbone="resnet18", head="unetr")



@pytest.mark.slow
def test_bench_takes_head_and_refuses_a_misfit_in_one_line_before_any_work(tmp_path):
    result = subprocess.run([sys.executable, "-c", "from sslbench.cli import main; main()", "bench", "--suite",
                             "table1", "--skip", "imagenet", "--out", str(tmp_path), "--head", "unet",
                             *tiny_args(backbone="vit_small_patch16_224")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: head unet cannot decode backbone vit_small_patch16_224 (a ViT: one stride, no feature pyramid); "
        "use --head unetr or leave --head out."]


def test_unetr_is_listed_among_heads():
    assert "unetr" in component_names("head")


@pytest.mark.slow
@pytest.mark.parametrize(("pretext", "frozen"), [("scratch", False), ("mae", False), ("mae", True)])
def test_sslbench_run_on_a_vit_s16_through_a_pretext_finetuned_and_frozen(tmp_path, pretext, frozen):
    out = tmp_path / "run"
    settings = {"data.size": 128, "finetune.crop": 64, "finetune.batch_size": 2, "evaluation.tile": 128,
                "evaluation.overlap": 0, "head.decoder_channels": (32, 32, 16, 16), "finetune.freeze_encoder": frozen}
    if pretext == "mae":
        settings.update({"pretext.crop": 64, "pretext.decoder_width": 64, "pretext.decoder_heads": 4})
    args = ["run", "--pretext", pretext, "--preset", "smoke", "--head", "unetr", "--out", str(out),
            *tiny_args(settings, backbone="tu-vit_small_patch16_224")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert_scored(metrics["test"], metrics["images"]["test"])
    assert json.loads((out / "config.json").read_text())["finetune"]["freeze_encoder"] is frozen
    moved = not any(still_initial(out / "encoder.safetensors", VIT_S).values())
    assert moved if pretext == "mae" else not moved  # pretraining moved every weight of the encoder, scratch none

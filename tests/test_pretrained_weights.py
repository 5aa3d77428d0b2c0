"""Pretrained weights from local files for any backbone (``--set pretext.weights=PATH``): timm and
Hugging Face files, torchvision .pth, a hub cache folder; a file lacking a needed tensor fails naming it."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file

from sslbench.errors import ConfigError
from sslbench.models import build_encoder
from sslbench.pretext.imagenet import ImageNet

RESNET18 = dict(type="SmpEncoder", name="resnet18")
VIT_S = dict(type="TimmViT", name="vit_small_patch16_224", img_size=32)


def timm_reference(backbone: dict) -> dict[str, torch.Tensor]:
    """A randomly initialised timm classifier's state dict: what a timm or hub weights file holds."""
    torch.manual_seed(1)
    size = {"img_size": backbone["img_size"]} if "img_size" in backbone else {}
    return timm.create_model(backbone["name"], pretrained=False, **size).state_dict()


def load_into_fresh(backbone: dict, path) -> torch.nn.Module:
    encoder = build_encoder(backbone)
    ImageNet(encoder.out_channels, weights=str(path)).init_encoder(encoder)
    return encoder


def assert_holds(encoder, reference: dict):
    """Every encoder tensor equals the file's under timm's key (smp's "model." prefix aside)."""
    for key, value in encoder.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(value, reference[key.removeprefix("model.")]), key


def save_safetensors(state: dict, path):
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def hub_cache(root, repo: str, state: dict, name: str = "model.safetensors"):
    """A Hugging Face hub cache as huggingface_hub lays it out: blobs, a snapshot linking them, refs/main."""
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "blobs").mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0123abcd")
    blob = save_safetensors(state, folder / "blobs" / "f00d")
    snapshot = folder / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / name).symlink_to(blob)
    return folder


@pytest.mark.parametrize("backbone", [RESNET18, VIT_S], ids=["resnet18", "vit_small"])
def test_timm_safetensors_and_bin_load_with_the_classifier_dropped(tmp_path, backbone):
    reference = timm_reference(backbone)
    assert_holds(load_into_fresh(backbone, save_safetensors(reference, tmp_path / "model.safetensors")), reference)
    torch.save(reference, tmp_path / "pytorch_model.bin")
    assert_holds(load_into_fresh(backbone, tmp_path / "pytorch_model.bin"), reference)


def test_torchvision_style_pth_checkpoint_under_a_prefix(tmp_path):
    reference = timm_reference(RESNET18)  # torchvision's ResNet keys are timm's
    torch.save({"epoch": 9, "state_dict": {f"module.{k}": v for k, v in reference.items()}}, tmp_path / "r18.pth")
    assert_holds(load_into_fresh(RESNET18, tmp_path / "r18.pth"), reference)


@pytest.mark.parametrize("backbone", [RESNET18, VIT_S], ids=["resnet18", "vit_small"])
def test_a_hub_cache_folder_and_its_snapshot_load_offline(tmp_path, backbone):
    reference = timm_reference(backbone)
    folder = hub_cache(tmp_path / "hub", f"timm/{backbone['name']}.test", reference)
    assert_holds(load_into_fresh(backbone, folder), reference)
    assert_holds(load_into_fresh(backbone, folder / "snapshots" / "0123abcd"), reference)


def test_vit_weights_of_another_image_size_are_resampled_as_timm_does(tmp_path):
    reference = timm_reference(dict(VIT_S, img_size=48))  # a 3x3 position grid; the encoder's is 2x2
    encoder = load_into_fresh(VIT_S, save_safetensors(reference, tmp_path / "model.safetensors"))
    assert encoder.model.pos_embed.shape == (1, 5, 384)
    assert torch.equal(encoder.model.blocks[0].attn.qkv.weight, reference["blocks.0.attn.qkv.weight"])


@pytest.mark.parametrize("backbone, needed", [(RESNET18, "layer4.1.bn2.weight"),
                                              (VIT_S, "model.blocks.11.mlp.fc2.bias")], ids=["resnet18", "vit_small"])
def test_a_file_lacking_a_needed_tensor_fails_naming_it(tmp_path, backbone, needed):
    reference = timm_reference(backbone)
    del reference[needed.removeprefix("model.")]
    path = save_safetensors(reference, tmp_path / "partial.safetensors")
    with pytest.raises(ConfigError, match=rf"partial\.safetensors lacks 1 of .*\({needed.replace('.', '[.]')}\)"):
        load_into_fresh(backbone, path)


def test_an_empty_folder_says_what_it_looks_for(tmp_path):
    with pytest.raises(ConfigError, match="without model.safetensors or pytorch_model.bin"):
        load_into_fresh(RESNET18, tmp_path)

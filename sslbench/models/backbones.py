"""Encoders. The module built here is the one pretrained AND the one inside the finetune model, so
weights move between them with identical keys (smp's ``ResNetEncoder`` is torchvision's ResNet).

An encoder is any ``nn.Module`` that follows smp's contract: ``forward(x)`` returns the list of
features [x, stride 2, stride 4, …, stride ``output_stride``], ``out_channels`` gives their channel
counts (0 for a stage the model does not have, as smp's ``tu-`` ConvNeXt at stride 2) and
``output_stride`` the last stride. Pretext heads read ``out_channels``; the segmentation head is built
around it. A plugin registers its own with ``@BACKBONES.register_module()``. A plain ViT
(``ViTEncoder``) has no pyramid: after x come four block outputs, all at the patch stride (the unetr head
decodes them; pretexts that pool the last feature map take them as they are).
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
import timm
from timm.models.vision_transformer import checkpoint_filter_fn
from torch import nn

from sslbench.errors import ConfigError
from sslbench.registry import BACKBONES


def is_smp_encoder(name: str) -> bool:
    """An encoder name smp builds: its own (``resnet34``, ``efficientnet-b0`` …) or timm's as ``tu-<model>``."""
    return name in smp.encoders.encoders or (name.startswith("tu-") and timm.is_model(name[3:]))


@BACKBONES.register_module(name="SmpEncoder")
def smp_encoder(name: str = "resnet101", depth: int = 5) -> nn.Module:
    """A segmentation-models-pytorch encoder, random init (weights are never downloaded)."""
    if not is_smp_encoder(name):
        raise ConfigError(f"backbone name '{name}' is not a segmentation-models-pytorch encoder; "
                          "see `sslbench list backbones`, or use tu-<timm model> for a timm one.")
    return smp.encoders.get_encoder(name, in_channels=3, depth=depth, weights=None)


#: timm's plain ViTs (ViT, DeiT, DINOv2 with register tokens …): one token grid through every block
_TIMM_VIT_MODULES = ("timm.models.vision_transformer", "timm.models.deit")


def is_timm_vit(name: str) -> bool:
    """A timm plain Vision Transformer, named as timm does or as ``tu-<model>``."""
    name = name.removeprefix("tu-")
    return timm.is_model(name) and timm.models.model_entrypoint(name).__module__ in _TIMM_VIT_MODULES


def named_backbone(name: str) -> dict | None:
    """The backbone config of a library model name (timm ViTs first: smp's ``tu-`` would take them too),
    None for a name no library builds."""
    if is_timm_vit(name):
        return {"type": "TimmViT", "name": name.removeprefix("tu-")}
    if is_smp_encoder(name):
        return {"type": "SmpEncoder", "name": name}
    return None


class ViTEncoder(nn.Module):
    """A timm ViT as an encoder: ``forward(x)`` returns [x, then the outputs of four blocks spaced
    depth/4 apart (the last one last), as maps at stride ``patch_size``], the taps taken with timm's
    ``forward_intermediates``. Any input side works (timm's ``dynamic_img_size``; a side that is not a
    multiple of the patch is padded by timm). The classifier and final norm are pruned, as timm's
    ``features_only`` does, so every parameter is trained. Keys are timm's under ``model.``."""

    def __init__(self, name: str, img_size: int | None = None):
        super().__init__()
        size = {} if img_size is None else {"img_size": img_size}
        self.model = timm.create_model(name, pretrained=False, num_classes=0, dynamic_img_size=True,
                                       dynamic_img_pad=True, **size)
        depth = len(self.model.blocks)
        self.blocks = self.model.prune_intermediate_layers([depth * k // 4 - 1 for k in range(1, 5)],
                                                           prune_norm=True)
        self.patch_size = self.model.patch_embed.patch_size[0]
        self.out_channels = (3, *[self.model.embed_dim] * len(self.blocks))
        self.output_stride = self.patch_size

    def forward(self, x):
        return [x, *self.model.forward_intermediates(x, indices=self.blocks, intermediates_only=True)]

    def adapt_state_dict(self, state: dict) -> dict:
        """A weights file's tensors in this model's layout, as timm loads its own pretrained files:
        position embeddings resampled to this grid, DINOv2/CLIP originals converted."""
        return checkpoint_filter_fn(state, self.model)


@BACKBONES.register_module(name="TimmViT")
def timm_vit(name: str = "vit_small_patch16_224", img_size: int | None = None) -> nn.Module:
    """A timm Vision Transformer (ViT, DeiT, DINOv2), random init (weights are never downloaded);
    ``img_size`` only sizes the stored position embedding (default: timm's)."""
    if not is_timm_vit(name):
        raise ConfigError(f"backbone name '{name}' is not a timm Vision Transformer (vit_*, deit_*); "
                          "see timm.list_models('vit_*').")
    return ViTEncoder(name, img_size)

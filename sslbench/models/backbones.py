"""Encoders. The module built here is the one pretrained AND the one inside the finetune model, so
weights move between them with identical keys (smp's ``ResNetEncoder`` is torchvision's ResNet).

An encoder is any ``nn.Module`` that follows smp's contract: ``forward(x)`` returns the list of
features [x, stride 2, stride 4, …, stride ``output_stride``], ``out_channels`` gives their channel
counts (0 for a stage the model does not have, as smp's ``tu-`` ConvNeXt at stride 2) and
``output_stride`` the last stride. Pretext heads read ``out_channels``; the segmentation head is built
around it. A plugin registers its own with ``@BACKBONES.register_module()``.
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
import timm
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

"""Encoders. The module built here is the one pretrained AND the one inside the finetune model, so
weights move between them with identical keys (smp's ``ResNetEncoder`` is torchvision's ResNet)."""

from __future__ import annotations

import segmentation_models_pytorch as smp
from torch import nn

from sslbench.registry import BACKBONES


@BACKBONES.register_module(name="SmpEncoder")
def smp_encoder(name: str = "resnet101", depth: int = 5) -> nn.Module:
    """A segmentation-models-pytorch encoder, random init (weights are never downloaded)."""
    return smp.encoders.get_encoder(name, in_channels=3, depth=depth, weights=None)

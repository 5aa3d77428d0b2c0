"""Segmentation heads: a fresh decoder around a (pretrained) encoder."""

from __future__ import annotations

from collections.abc import Sequence

import segmentation_models_pytorch as smp
from torch import nn

from sslbench.registry import HEADS


@HEADS.register_module(name="Unet")
def unet(encoder_name: str, classes: int = 3, decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
         depth: int = 5) -> nn.Module:
    """U-shaped one-stage network (Cui et al. 2019): ResUNet when the encoder is a ResNet."""
    return smp.Unet(encoder_name=encoder_name, encoder_weights=None, encoder_depth=depth,
                    decoder_channels=tuple(decoder_channels), classes=classes)

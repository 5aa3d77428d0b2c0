"""Segmentation heads: a fresh decoder built around the (pretrained) encoder it receives, as smp's
``Unet`` builds ``UnetDecoder(encoder_channels=encoder.out_channels)``, so any encoder that returns
multi-scale features (``out_channels``, ``output_stride``; see ``backbones.py``) can be decoded."""

from __future__ import annotations

from collections.abc import Sequence

from segmentation_models_pytorch.base import SegmentationHead, SegmentationModel
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
from torch import nn

from sslbench.registry import HEADS


class EncoderDecoder(SegmentationModel):
    """smp's encoder → decoder → head model around an encoder built elsewhere (the pretrained one).
    Same attribute names as ``smp.Unet``, so state dicts and saved models keep their keys."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, segmentation_head: nn.Module):
        super().__init__()
        self.encoder, self.decoder, self.segmentation_head = encoder, decoder, segmentation_head
        self.classification_head = None
        self.initialize()


@HEADS.register_module(name="Unet")
def unet(encoder: nn.Module, classes: int = 3, decoder_channels: Sequence[int] = (256, 128, 64, 32, 16)) -> nn.Module:
    """U-shaped one-stage network (Cui et al. 2019): ResUNet when the encoder is a ResNet. One decoder
    block per encoder stage (``decoder_channels`` is cut to the encoder's depth)."""
    depth = len(encoder.out_channels) - 1
    if len(decoder_channels) < depth:
        raise ValueError(f"decoder_channels has {len(decoder_channels)} entries but the encoder has {depth} stages")
    decoder_channels = tuple(decoder_channels)[:depth]
    decoder = UnetDecoder(encoder_channels=encoder.out_channels, decoder_channels=decoder_channels, n_blocks=depth,
                          use_norm="batchnorm", add_center_block=False, attention_type=None,
                          interpolation_mode="nearest")
    return EncoderDecoder(encoder, decoder, SegmentationHead(decoder_channels[-1], classes, kernel_size=3))

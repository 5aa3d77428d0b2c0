"""Segmentation heads: a fresh decoder built around the (pretrained) encoder it receives, as smp's
``Unet`` builds ``UnetDecoder(encoder_channels=encoder.out_channels)``, so any encoder that returns
multi-scale features (``out_channels``, ``output_stride``; see ``backbones.py``) can be decoded.

``unetr`` decodes a plain ViT (``backbones.ViTEncoder``: four block outputs, all at the patch stride).
As UNETR (Hatamizadeh et al. 2022) and CellViT (Hörst et al. 2024, TIO-IKIM/CellViT
``cell_segmentation/models/cellvit.py``): four blocks spaced depth/4 apart (3, 6, 9, 12 of a 12-block
ViT), reshaped to maps; the last is brought from stride 16 to 8 by a transposed convolution, the others
by 1, 2 and 3 deconvolution blocks (2x2 transposed conv, then 3x3 conv, BN, ReLU) to strides 8, 4 and
2 as skips; each decoder stage concatenates its skip, applies conv blocks and upsamples 2x; the image
itself, through a two-conv stem, is the full-resolution skip (CellViT's z0; UNETR's encoder1 is the
same on the volume). Widths default to CellViT's for ViT-S/B (312 at stride 8, then 256, 128, 64).
Where this differs: one 3-class branch (body/boundary/background, the Unet head's output, so the same
post-processing applies) where CellViT has three (nuclei, HoVer maps, types); two conv blocks per
stage (UNETR's residual block has two; CellViT uses three at strides 8 and 4); each skip branch keeps
one width (CellViT tapers its stride-2 branch 256 -> 128 -> 128); no dropout; the intermediates are
un-normalised block outputs as CellViT takes them. A ViT whose patch is not 16 (DINOv2's 14) has its
token maps resized bilinearly to the stride-16 grid first, so the decoder strides stay exact; UNETR and
CellViT assume patch 16.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
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


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """CellViT's Conv2DBlock without dropout: 3x3 conv, BN, ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def _deconv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """CellViT's Deconv2DBlock without dropout: 2x upsampling by a transposed conv, then a conv block."""
    return nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2),
                         *_conv_block(out_channels, out_channels))


#: the stride the decoder starts from: four 2x stages reach the image
_UNETR_STRIDE = 16


class UnetrDecoder(nn.Module):
    """[image, z3, z6, z9, z12] (token maps) -> full-resolution features with ``channels[-1]`` channels."""

    def __init__(self, embed_dim: int, channels: Sequence[int]):
        super().__init__()
        at8, at4, at2, at1 = channels
        self.stem = nn.Sequential(_conv_block(3, at1 // 2), _conv_block(at1 // 2, at1))
        # z9 -> stride 8, z6 -> 4, z3 -> 2: one more deconvolution block per halving
        self.skips = nn.ModuleList(
            nn.Sequential(_deconv_block(embed_dim, width), *[_deconv_block(width, width) for _ in range(ups - 1)])
            for width, ups in ((at8, 1), (at4, 2), (at2, 3)))
        self.bottleneck = nn.ConvTranspose2d(embed_dim, at8, 2, stride=2)
        self.stages = nn.ModuleList(
            nn.Sequential(_conv_block(2 * width, width), _conv_block(width, width),
                          nn.ConvTranspose2d(width, finer, 2, stride=2))
            for width, finer in ((at8, at4), (at4, at2), (at2, at1)))
        self.fuse = nn.Sequential(_conv_block(2 * at1, at1), _conv_block(at1, at1))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        image, *blocks = features
        height, width = image.shape[-2:]
        if height % _UNETR_STRIDE or width % _UNETR_STRIDE:
            raise ValueError(f"unetr needs image sides divisible by {_UNETR_STRIDE}, got {height}x{width}")
        grid = (height // _UNETR_STRIDE, width // _UNETR_STRIDE)
        z3, z6, z9, z12 = (F.interpolate(b, size=grid, mode="bilinear") if b.shape[-2:] != grid else b
                           for b in blocks)
        x = self.bottleneck(z12)
        for stage, skip, tokens in zip(self.stages, self.skips, (z9, z6, z3)):
            x = stage(torch.cat([skip(tokens), x], dim=1))
        return self.fuse(torch.cat([self.stem(image), x], dim=1))


@HEADS.register_module(name="UNETR")
def unetr(encoder: nn.Module, classes: int = 3, decoder_channels: Sequence[int] = (312, 256, 128, 64)) -> nn.Module:
    """UNETR/CellViT-style decoder for a plain ViT encoder (module docstring: what follows them and what
    differs). ``decoder_channels``: widths at strides 8, 4, 2 and 1."""
    if not hasattr(encoder, "patch_size") or len(encoder.out_channels) != 5:
        raise ValueError("unetr decodes a ViT's four block outputs; this encoder is not a ViT: use head unet")
    if len(decoder_channels) != 4:
        raise ValueError(f"decoder_channels needs 4 widths (strides 8, 4, 2, 1), got {len(decoder_channels)}")
    decoder = UnetrDecoder(encoder.out_channels[-1], decoder_channels)
    model = EncoderDecoder(encoder, decoder, SegmentationHead(decoder_channels[-1], classes, kernel_size=1))
    model.requires_divisible_input_shape = False  # the decoder checks sides itself: stride 16, not the patch's
    return model

"""ColorMe: Li, Chen, Zheng, ISBI 2020 — recover the colour channels a crop was stripped of.

The choice made here, following the cited paper's formulation (one RGB channel in, the other two
out) rather than a Lab colourisation: the encoder sees channel ``channel`` of a ``crop``² crop
(default 0, red) replicated to three channels, so it keeps its RGB stem and ImageNet normalisation; a
light decoder predicts the two held-out channels; loss = mean squared error on intensities in [0, 1].
Red is the default input because haematoxylin absorbs red light most, so nuclei stand out most in
that channel, and the network has to infer the staining (eosin vs haematoxylin colour) from the
structure. RGB also needs no colour-space conversion on the device.

Decoder (lighter than a U-Net, so the encoder does the work): the encoder's four deepest feature maps
(strides 4–32 on a ResNet) each go through a 1×1 conv to ``decoder_channels``, are upsampled to the
shallowest one's size and summed (an FPN-style merge, so every stage gets gradient); ReLU, 3×3 conv
to 2 channels, sigmoid, bilinear upsampling to the crop size.

Not on a ViT (a one-line error before any work): all its maps are at the patch stride, 16, so the colour
would be predicted on a 16-px grid: on 256² MoNuSeg crops, block means upsampled as the decoder does leave
45 % of the held-out channels' variance unexplained, against 8 % on a ResNet's stride-4 grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sslbench.pretext.base import Pretext, normalize, random_crops
from sslbench.registry import PRETEXTS

_DECODER_STAGES = 4


@PRETEXTS.register_module()
class ColorMe(Pretext):
    """Colourisation (one RGB channel in, the other two predicted): Li, Chen, Zheng 2020."""

    vit_refusal = ("its decoder predicts colour at the feature maps' stride, on a ViT the patch side of 14-16 px "
                   "(4 px on a ResNet), where about 45 % of the target's variance is out of reach")

    def __init__(self, encoder_channels: Sequence[int], crop: int = 768, channel: int = 0,
                 decoder_channels: int = 64):
        super().__init__(encoder_channels)
        if crop < 1 or channel not in (0, 1, 2):
            raise ValueError(f"colorme needs crop > 0 and channel in 0, 1, 2; got crop={crop}, channel={channel}.")
        self.crop = self.min_image_size = crop
        self.channel = channel
        self.held_out = [c for c in range(3) if c != channel]
        self.lateral = nn.ModuleList(nn.Conv2d(c, decoder_channels, 1)
                                     for c in self.encoder_channels[-_DECODER_STAGES:])
        self.predict = nn.Conv2d(decoder_channels, len(self.held_out), 3, padding=1)

    def sample(self, images, batch_size, generator):
        crops, boxes = random_crops(images, batch_size, self.crop, generator)
        return {"gray": crops[:, [self.channel]].expand(-1, 3, -1, -1).contiguous(),
                "target": crops[:, self.held_out].contiguous(), "boxes": boxes}

    def forward(self, encoder, batch):
        features = encoder(normalize(batch["gray"]))[-_DECODER_STAGES:]
        size = features[0].shape[-2:]
        merged = sum(F.interpolate(lateral(f), size=size, mode="bilinear", align_corners=False)
                     for lateral, f in zip(self.lateral, features))
        colour = torch.sigmoid(self.predict(F.relu(merged)))
        colour = F.interpolate(colour, size=batch["target"].shape[-2:], mode="bilinear", align_corners=False)
        return {"loss": F.mse_loss(colour.float(), batch["target"].float() / 255)}

"""RotNet: Gidaris, Singh, Komodakis, ICLR 2018 — predict which of 0/90/180/270° rotated a crop.

Every ``crop``² crop enters the batch in all four rotations at once, as Gidaris et al. train it
(they report it beats one random rotation per image), so one step sees 4 × batch_size images with
balanced labels. Encoder -> global average pool -> linear 4-way classifier,
cross-entropy. Label k means the crop was turned by ``torch.rot90(k)`` (k × 90° counter-clockwise).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sslbench.pretext.base import Pretext, global_pool, normalize, random_crops
from sslbench.registry import PRETEXTS

ROTATIONS = 4


@PRETEXTS.register_module()
class RotNet(Pretext):
    """Rotation prediction (0/90/180/270°): Gidaris et al. 2018."""

    def __init__(self, encoder_channels: Sequence[int], crop: int = 768):
        super().__init__(encoder_channels)
        if crop < 1:
            raise ValueError(f"rotnet needs crop > 0, got {crop}.")
        self.crop = self.min_image_size = crop
        self.classifier = nn.Linear(self.encoder_channels[-1], ROTATIONS)

    def sample(self, images, batch_size, generator):
        crops, boxes = random_crops(images, batch_size, self.crop, generator)
        rotated = torch.cat([crops.rot90(k, dims=(2, 3)) for k in range(ROTATIONS)])
        labels = torch.arange(ROTATIONS, device=crops.device).repeat_interleave(batch_size)
        # boxes[i % batch_size] is the source crop of rotated image i
        return {"image": rotated, "label": labels, "boxes": boxes}

    def forward(self, encoder, batch):
        logits = self.classifier(global_pool(encoder, normalize(batch["image"])))
        return {"loss": F.cross_entropy(logits, batch["label"])}

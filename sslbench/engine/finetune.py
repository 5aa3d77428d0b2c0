"""Finetuning batches: random crops of (image, 3-class target) with flips, 90° turns and mild colour
jitter, made wherever the source tensors live: on the training device (uploaded once) or in CPU
DataLoader workers (``engine.batches``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sslbench.data.base import Sample, image_tensor
from sslbench.data.targets import instance_to_classes
from sslbench.pretext.base import normalize, pick_images, random_crop_box


def finetune_sources(samples: Sequence[Sample], boundary_width: int) -> list[torch.Tensor]:
    """Each labelled image as one (4, H, W) uint8 CPU tensor: RGB plus the 3-class target, so one
    crop / flip / turn moves pixels and labels together."""
    return [torch.cat([image_tensor(s.image), torch.from_numpy(
        instance_to_classes(s.labels, boundary_width).astype(np.uint8))[None]]) for s in samples]


class FinetuneSampler:
    """``sampler(sources, batch_size, generator)`` -> (normalised images, class targets); runs on
    whatever device ``sources`` live on (see ``engine.batches``)."""

    def __init__(self, crop: int):
        self.crop = crop

    def __call__(self, sources: Sequence[torch.Tensor], batch_size: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        crops = []
        flips = torch.randint(0, 2, (batch_size, 2), generator=generator).tolist()
        turns = torch.randint(0, 4, (batch_size,), generator=generator).tolist()
        for i, index in enumerate(pick_images(sources, batch_size, generator)):
            top, left = random_crop_box(*sources[index].shape[-2:], self.crop, generator)
            crop = sources[index][:, top:top + self.crop, left:left + self.crop]
            flip_dims = [d for d, flip in zip((-1, -2), flips[i]) if flip]
            if flip_dims:
                crop = crop.flip(flip_dims)
            crops.append(crop.rot90(turns[i], (-2, -1)))
        batch = torch.stack(crops)
        return colour_jitter(normalize(batch[:, :3]), generator), batch[:, 3].long()


def colour_jitter(x: torch.Tensor, generator: torch.Generator, strength: float = 0.1) -> torch.Tensor:
    """Per-image brightness shift and contrast scale (mild: stain colour carries meaning in H&E)."""
    shape = (x.shape[0], 1, 1, 1)
    shift = (torch.rand(shape, generator=generator) * 2 - 1).to(x.device) * strength
    scale = 1 + (torch.rand(shape, generator=generator) * 2 - 1).to(x.device) * strength
    return x * scale + shift


def segmentation_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor) -> dict:
    logits = model(x)
    return {"loss": F.cross_entropy(logits.float(), y, weight=class_weights)}

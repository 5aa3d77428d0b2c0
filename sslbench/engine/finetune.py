"""Finetuning batches: random crops of (image, 3-class target) with flips, 90° turns and mild colour
jitter, made on the training device from tensors uploaded once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sslbench.data.base import Sample, image_tensor
from sslbench.data.targets import instance_to_classes
from sslbench.pretext.base import normalize, pick_images, random_crop_box


class FinetuneSampler:
    def __init__(self, samples: Sequence[Sample], crop: int, boundary_width: int, device: torch.device):
        self.crop = crop
        self.images = [image_tensor(s.image, device) for s in samples]
        self.targets = [torch.from_numpy(instance_to_classes(s.labels, boundary_width).astype(np.int64)).to(device)
                        for s in samples]

    def __call__(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        images, targets = [], []
        flips = torch.randint(0, 2, (batch_size, 2), generator=generator).tolist()
        turns = torch.randint(0, 4, (batch_size,), generator=generator).tolist()
        for i, index in enumerate(pick_images(self.images, batch_size, generator)):
            image, target = self.images[index], self.targets[index]
            top, left = random_crop_box(*target.shape, self.crop, generator)
            x = image[:, top:top + self.crop, left:left + self.crop]
            y = target[top:top + self.crop, left:left + self.crop]
            flip_dims = [d for d, flip in zip((-1, -2), flips[i]) if flip]
            if flip_dims:
                x, y = x.flip(flip_dims), y.flip([d + 1 for d in flip_dims])
            images.append(x.rot90(turns[i], (-2, -1)))
            targets.append(y.rot90(turns[i], (-2, -1)))
        return colour_jitter(normalize(torch.stack(images)), generator), torch.stack(targets)


def colour_jitter(x: torch.Tensor, generator: torch.Generator, strength: float = 0.1) -> torch.Tensor:
    """Per-image brightness shift and contrast scale (mild: stain colour carries meaning in H&E)."""
    shape = (x.shape[0], 1, 1, 1)
    shift = (torch.rand(shape, generator=generator) * 2 - 1).to(x.device) * strength
    scale = 1 + (torch.rand(shape, generator=generator) * 2 - 1).to(x.device) * strength
    return x * scale + shift


def segmentation_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor) -> dict:
    logits = model(x)
    return {"loss": F.cross_entropy(logits.float(), y, weight=class_weights)}

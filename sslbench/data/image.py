"""Image tensors as the encoders take them: ImageNet normalisation and seeded random crops, shared by
the pretext samplers, finetuning, inference and the probes."""

from __future__ import annotations

from collections.abc import Sequence

import torch

# ImageNet statistics: the encoders' stem expects them, for pretrained and scratch weights alike.
_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def normalize(images_uint8: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 (or float in [0, 255]) -> float, ImageNet-normalised, on the same device."""
    x = images_uint8.float().div_(255)
    return (x - _MEAN.to(x.device)) / _STD.to(x.device)


def randint(high: int, generator: torch.Generator, low: int = 0) -> int:
    """One integer in [low, high] inclusive, drawn from ``generator`` (CPU generator: no device sync)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def random_crop_box(height: int, width: int, size: int, generator: torch.Generator) -> tuple[int, int]:
    return randint(height - size, generator), randint(width - size, generator)


def pick_images(images: Sequence[torch.Tensor], count: int, generator: torch.Generator) -> list[int]:
    return torch.randint(0, len(images), (count,), generator=generator).tolist()


def random_crops(images: Sequence[torch.Tensor], count: int, size: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random size² crops of randomly picked images -> (crops (count, 3, size, size) uint8,
    boxes (count, 3) as [image index, top, left]) so tests can trace every crop to its source."""
    crops, boxes = [], []
    for index in pick_images(images, count, generator):
        top, left = random_crop_box(*images[index].shape[-2:], size, generator)
        crops.append(images[index][:, top:top + size, left:left + size])
        boxes.append([index, top, left])
    return torch.stack(crops), torch.tensor(boxes)

"""The contract every pretext task implements; the training loop knows nothing else.

A pretext task is an ``nn.Module`` holding its own heads. ``sample`` turns source images (uint8
tensors already on the training device) into one batch; ``forward`` runs the shared encoder on it
and returns a dict of losses whose ``"loss"`` entry is optimised; ``after_step`` runs once after every
optimizer step (momentum encoders follow the online one there). Strategies that do not train
(scratch, ImageNet init) set ``pretrains = False`` and may override ``init_encoder``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

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


def global_pool(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Normalised float images (B, 3, H, W) -> the encoder's deepest features, averaged: (B, C)."""
    return encoder(x)[-1].mean(dim=(2, 3))


class Pretext(nn.Module):
    """Base of every pretext task (and of the no-pretraining strategies)."""

    pretrains = True
    #: smallest source image side the sampler can work with (the runner checks it up front)
    min_image_size = 0

    def __init__(self, encoder_channels: Sequence[int]):
        super().__init__()
        self.encoder_channels = tuple(encoder_channels)

    def init_encoder(self, encoder: nn.Module) -> None:
        """Initialise the encoder before pretraining (default: keep its random init)."""

    def sample(self, images: Sequence[torch.Tensor], batch_size: int, generator: torch.Generator) -> dict:
        """Source images, each (3, H, W) uint8 on the device -> one batch for ``forward``."""
        raise NotImplementedError

    def forward(self, encoder: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def after_step(self, encoder: nn.Module, step: int, steps: int) -> None:
        """Runs after optimizer step ``step`` of ``steps`` (from 1; not after a skipped step)."""


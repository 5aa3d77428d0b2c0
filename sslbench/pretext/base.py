"""The contract every pretext task implements; the training loop knows nothing else.

A pretext task is an ``nn.Module`` holding its own heads. ``sample`` turns source images (uint8
tensors already on the training device) into one batch; ``forward`` runs the shared encoder on it
and returns a dict of losses whose ``"loss"`` entry is optimised; ``after_step`` runs once after every
optimizer step (momentum encoders follow the online one there). Strategies that do not train
(scratch, ImageNet init) set ``pretrains = False`` and may override ``init_encoder``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
from torch import nn

# the image helpers every pretext sampler draws on (plugins import them from here)
from sslbench.data.image import normalize, pick_images, randint, random_crop_box, random_crops  # noqa: F401


def full_precision(loss: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``loss`` on fp32 copies of its tensor arguments, outside autocast: under bf16 autocast its
    matmuls and differences (similarities, cross-correlations, hinge margins) would be bf16, 8 bits of
    mantissa, whatever its inputs' dtype."""
    @functools.wraps(loss)
    def fp32_loss(*args, **kwargs):
        device = next(a.device.type for a in args if torch.is_tensor(a))
        with torch.autocast(device, enabled=False):
            return loss(*(a.float() if torch.is_tensor(a) else a for a in args), **kwargs)
    return fp32_loss


def global_pool(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Normalised float images (B, 3, H, W) -> the encoder's deepest features, averaged: (B, C)."""
    return encoder(x)[-1].mean(dim=(2, 3))


class Pretext(nn.Module):
    """Base of every pretext task (and of the no-pretraining strategies)."""

    pretrains = True
    #: smallest source image side the sampler can work with (the runner checks it up front)
    min_image_size = 0
    #: why this task cannot pretrain a ViT (features: one token grid at the patch stride), or None;
    #: the config check refuses such a pair before any work
    vit_refusal: str | None = None
    #: why this task cannot pretrain a CNN (features: maps at strides 2…32), or None; checked alike
    cnn_refusal: str | None = None

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


"""What the joint-embedding pretexts share: two views per crop, MLP heads, momentum copies, and
gathering embeddings across processes.

Losses are our own, a few lines each beside their method and checked against the papers' formulas in
tests/test_siamese.py, rather than lightly's: lightly 1.6 installs hydra-core and pytorch-lightning
(with torchmetrics) for four short functions.

Under torchrun, a loss over the batch (NT-Xent's negatives, Barlow Twins' per-dimension statistics)
sees every process's embeddings through ``gather``, whose backward returns each process the gradient
of its own rows; DDP then averages, so a step equals one process's on the whole batch.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
from torch import nn

from sslbench.pretext.base import Pretext, global_pool, normalize, random_crops
from sslbench.pretext.views import ViewSettings, random_views


def multi_process() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if multi_process() else 0


def gather(x: torch.Tensor) -> torch.Tensor:
    """Every process's ``x`` concatenated in rank order; gradients flow back to each process's own rows."""
    return torch.cat(dist_nn.all_gather(x)) if multi_process() else x


def mlp(sizes: Sequence[int], batch_norm: bool = True, bias: bool = True,
        activation: Callable[[], nn.Module] = functools.partial(nn.ReLU, inplace=True)) -> nn.Sequential:
    """Linear layers through ``sizes``; each hidden one followed by BatchNorm (if asked) and ``activation``."""
    layers: list[nn.Module] = []
    for i, (width_in, width_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(width_in, width_out, bias=bias))
        if i < len(sizes) - 2:
            layers += [nn.BatchNorm1d(width_out)] if batch_norm else []
            layers.append(activation())
    return nn.Sequential(*layers)


def momentum_copy(module: nn.Module) -> nn.Module:
    """A copy that follows ``module`` by momentum only: requires_grad=False keeps it out of the
    optimizer and of DDP's gradient exchange (it is pretext state, never exported as the encoder)."""
    return copy.deepcopy(module).requires_grad_(False)


@torch.no_grad()
def momentum_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target ← momentum · target + (1 − momentum) · online, for every parameter."""
    torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), 1.0 - momentum)


class TwoViewPretext(Pretext):
    """Base of the joint-embedding pretexts: ``sample`` gives ``views`` (2B, 3, crop, crop) uint8, the
    first view of crop i at i and the second at B + i (``boxes`` traces crop i to its source)."""

    def __init__(self, encoder_channels: Sequence[int], crop: int, views: dict | None):
        super().__init__(encoder_channels)
        self.view_settings = ViewSettings(**(views or {}))
        if crop <= self.view_settings.blur_radius:
            raise ValueError(f"{type(self).__name__} needs crop > the blur radius "
                             f"{self.view_settings.blur_radius}, got crop={crop}.")
        self.crop = self.min_image_size = crop
        self.width = self.encoder_channels[-1]

    def sample(self, images, batch_size, generator):
        crops, boxes = random_crops(images, batch_size, self.crop, generator)
        views = [random_views(crops, self.view_settings, generator) for _ in range(2)]
        return {"views": torch.cat(views), "boxes": boxes}

    @staticmethod
    def features(encoder: nn.Module, views: torch.Tensor) -> torch.Tensor:
        return global_pool(encoder, normalize(views))


class MomentumPretext(TwoViewPretext):
    """A two-view pretext whose targets come from a momentum copy of the encoder and projector
    (MoCo's key encoder, BYOL's target network, DINO's teacher), made from the online encoder in
    ``init_encoder``. Subclasses set ``base_momentum``."""

    base_momentum: float

    def init_encoder(self, encoder):
        self.target_encoder = momentum_copy(encoder)

    def target_features(self, views: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "target_encoder"):
            raise RuntimeError(f"{type(self).__name__}: call init_encoder(encoder) before training; the "
                               "momentum encoder starts as a copy of it.")
        with torch.no_grad():
            return self.target_projector(self.features(self.target_encoder, views))

    def momentum(self, step: int, steps: int) -> float:
        """BYOL's schedule, which DINO uses too: τ = 1 − (1 − τ_base)(cos(πk/K) + 1)/2, from τ_base at
        step k = 0 to 1 at the last step K."""
        return 1 - (1 - self.base_momentum) * (math.cos(math.pi * step / steps) + 1) / 2

    def after_step(self, encoder, step, steps):
        momentum = self.momentum(step, steps)
        momentum_update(self.target_encoder, encoder, momentum)
        momentum_update(self.target_projector, self.projector, momentum)

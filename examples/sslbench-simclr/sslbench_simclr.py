"""A SimCLR-style contrastive pretext task (Chen et al., ICML 2020), shipped as an sslbench plugin.

Two random views of every crop (a random sub-crop resized back, a random quarter turn and flip, a
brightness/contrast jitter) must embed closer to each other than to any other view in the batch:
the NT-Xent loss. Installing this package makes ``sslbench run --pretext example_simclr`` work; sslbench
itself is not edited (its built-in ``simclr`` is the full method).

It also registers a backbone the same way, ``example_timm_features``: any timm model's
``features_only`` pyramid as an sslbench encoder (``sslbench run --backbone example_timm_features``).
"""

from __future__ import annotations

import timm
import torch
import torch.nn.functional as F
from torch import nn

from sslbench.pretext.base import Pretext, global_pool, normalize, randint, random_crops
from sslbench.registry import BACKBONES, PRETEXTS


@PRETEXTS.register_module(name="example_simclr")
class SimCLR(Pretext):
    """SimCLR-style contrastive learning: two augmented views per crop, NT-Xent loss (example plugin)."""

    def __init__(self, encoder_channels, crop: int = 768, proj_dim: int = 128, temperature: float = 0.2):
        super().__init__(encoder_channels)
        self.crop = self.min_image_size = crop  # `crop` is the key the presets scale
        self.temperature = temperature
        width = self.encoder_channels[-1]
        self.projector = nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, proj_dim))

    def sample(self, images, batch_size, generator):
        crops, _ = random_crops(images, batch_size, self.crop, generator)
        views = [self._view(crop, generator) for _ in range(2) for crop in crops]
        return {"views": torch.stack(views)}  # view i and view i + batch_size come from one crop

    def _view(self, crop: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        size = self.crop
        side = randint(size, generator, low=size // 2)
        top, left = randint(size - side, generator), randint(size - side, generator)
        view = F.interpolate(crop[None, :, top:top + side, left:left + side].float(), size=(size, size),
                             mode="bilinear", align_corners=False)[0]
        view = view.rot90(randint(3, generator), dims=(1, 2))
        if randint(1, generator):
            view = view.flip(2)
        # random numbers come from the CPU generator: no device sync
        contrast, brightness = torch.empty(2).uniform_(0.8, 1.2, generator=generator).tolist()
        mean = view.mean()
        return ((view - mean) * contrast + mean * brightness).clamp_(0, 255).round_().to(torch.uint8)

    def forward(self, encoder, batch):
        z = F.normalize(self.projector(global_pool(encoder, normalize(batch["views"]))), dim=1)
        logits = (z @ z.T / self.temperature).float()
        count = z.shape[0]
        logits = logits.masked_fill(torch.eye(count, dtype=torch.bool, device=z.device), float("-inf"))
        partner = torch.arange(count, device=z.device).roll(count // 2)  # the other view of each crop
        return {"loss": F.cross_entropy(logits, partner)}


@BACKBONES.register_module(name="example_timm_features")
class TimmFeatures(nn.Module):
    """A timm model's features_only pyramid as an encoder (example plugin; default timm resnet10t)."""

    def __init__(self, model: str = "resnet10t"):
        super().__init__()
        # the encoder contract (sslbench/models/backbones.py): features at strides 2 … 32, input first
        self.body = timm.create_model(model, features_only=True, pretrained=False, out_indices=(0, 1, 2, 3, 4))
        self.out_channels = (3, *self.body.feature_info.channels())
        self.output_stride = 32

    def forward(self, x):
        return [x, *self.body(x)]

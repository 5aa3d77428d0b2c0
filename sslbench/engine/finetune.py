"""Finetuning batches: random crops of (image, 3-class target) with flips, 90° turns, optional
rescaling and elastic deformation (torchvision v2), H&E stain jitter and mild brightness/contrast
jitter, made wherever the source tensors live: on the training device (uploaded once) or in CPU
DataLoader workers (``engine.batches``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2

from sslbench.data.base import Sample, image_tensor
from sslbench.data.image import normalize, pick_images, random_crop_box, random_stain_jitter
from sslbench.data.targets import instance_to_classes
from sslbench.errors import ConfigError

_DICE = smp.losses.DiceLoss("multiclass", from_logits=True)


def finetune_sources(samples: Sequence[Sample], boundary_width: int) -> list[torch.Tensor]:
    """Each labelled image as one (4, H, W) uint8 CPU tensor: RGB plus the 3-class target, so one
    crop / flip / turn moves pixels and labels together."""
    return [torch.cat([image_tensor(s.image), torch.from_numpy(
        instance_to_classes(s.labels, boundary_width).astype(np.uint8))[None]]) for s in samples]


class FinetuneSampler:
    """``sampler(sources, batch_size, generator)`` -> (normalised images, class targets); runs on
    whatever device ``sources`` live on (see ``engine.batches``).

    ``scale`` (low, high): each crop is cut at ``crop / s`` px, s uniform in the range, and resized to
    ``crop`` (nuclei appear up to that much larger or smaller). ``elastic`` (alpha, sigma): torchvision's
    elastic deformation, labels warped with nearest neighbours. ``stain_scale``, ``stain_shift``: the H&E
    stain jitter (``data.image.random_stain_jitter``; 0, 0: none)."""

    def __init__(self, crop: int, scale: Sequence[float] | None = None, elastic: Sequence[float] | None = None,
                 stain_scale: float = 0.0, stain_shift: float = 0.0):
        self.crop, self.scale, self.stain_scale, self.stain_shift = crop, scale, stain_scale, stain_shift
        self.elastic = v2.ElasticTransform(*elastic) if elastic else None

    def __call__(self, sources: Sequence[torch.Tensor], batch_size: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        crops = []
        flips = torch.randint(0, 2, (batch_size, 2), generator=generator).tolist()
        turns = torch.randint(0, 4, (batch_size,), generator=generator).tolist()
        scales = torch.empty(batch_size).uniform_(*(self.scale or (1, 1)), generator=generator).tolist()
        for i, index in enumerate(pick_images(sources, batch_size, generator)):
            height, width = sources[index].shape[-2:]
            side = min(round(self.crop / scales[i]), height, width)
            top, left = random_crop_box(height, width, side, generator)
            crop = sources[index][:, top:top + side, left:left + side]
            flip_dims = [d for d, flip in zip((-1, -2), flips[i]) if flip]
            if flip_dims:
                crop = crop.flip(flip_dims)
            crops.append(self.warp(crop.rot90(turns[i], (-2, -1)), generator))
        batch = torch.stack(crops)
        images = batch[:, :3]
        if self.stain_scale or self.stain_shift:
            images = random_stain_jitter(images.float().div(255), self.stain_scale, self.stain_shift, generator) * 255
        return colour_jitter(normalize(images), generator), batch[:, 3].long()

    def warp(self, crop: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Resize to ``crop``² and deform elastically; the image bilinearly, the target by nearest."""
        if crop.shape[-1] == self.crop and self.elastic is None:
            return crop
        image, target = tv_tensors.Image(crop[:3]), tv_tensors.Mask(crop[3:])
        image, target = v2.functional.resize(image, [self.crop] * 2), v2.functional.resize(target, [self.crop] * 2)
        if self.elastic is not None:
            # torchvision draws from the global stream: seed it from ours so crops stay reproducible
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
                image, target = self.elastic(image, target)
        return torch.cat([image.as_subclass(torch.Tensor), target.as_subclass(torch.Tensor)])


def colour_jitter(x: torch.Tensor, generator: torch.Generator, strength: float = 0.1) -> torch.Tensor:
    """Per-image brightness shift and contrast scale (mild: stain colour carries meaning in H&E)."""
    shape = (x.shape[0], 1, 1, 1)
    shift = (torch.rand(shape, generator=generator) * 2 - 1).to(x.device) * strength
    scale = 1 + (torch.rand(shape, generator=generator) * 2 - 1).to(x.device) * strength
    return x * scale + shift


def segmentation_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor,
                      dice_weight: float = 0.0) -> dict:
    """Class-weighted cross-entropy, plus ``dice_weight`` × soft Dice over the three classes (which
    counts the thin boundary class as much as the background, whatever its pixel share)."""
    logits = model(x).float()
    ce = F.cross_entropy(logits, y, weight=class_weights)
    if not dice_weight:
        return {"loss": ce}
    dice = _DICE(logits, y)
    return {"loss": ce + dice_weight * dice, "ce": ce, "dice": dice}


def freeze_encoder(model: nn.Module) -> None:
    """The frozen-encoder protocol: only the decoder and head train. The encoder takes no gradient (nothing
    backpropagates into it) and stays in eval mode, so its BatchNorm statistics do not move and dropout is
    off; smp's ``freeze_encoder`` makes the model's ``train()`` leave the encoder as it is."""
    if not isinstance(model, smp.base.SegmentationModel):
        raise ConfigError(f"finetune.freeze_encoder needs a segmentation-models-pytorch model, not "
                          f"{type(model).__name__}; use a built-in head or set finetune.freeze_encoder=False.")
    model.freeze_encoder()
    model.encoder.eval()

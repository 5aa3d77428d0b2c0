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
from skimage.color import hed_from_rgb, rgb_from_hed
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2

from sslbench.data.base import Sample, image_tensor
from sslbench.data.image import normalize, pick_images, random_crop_box
from sslbench.data.targets import instance_to_classes

_HED_FROM_RGB = torch.from_numpy(hed_from_rgb).float()
_RGB_FROM_HED = torch.from_numpy(rgb_from_hed).float()
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
    elastic deformation, labels warped with nearest neighbours. ``stain_jitter``: H&E stain jitter."""

    def __init__(self, crop: int, scale: Sequence[float] | None = None, elastic: Sequence[float] | None = None,
                 stain_jitter: float = 0.0):
        self.crop, self.scale, self.stain_jitter = crop, scale, stain_jitter
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
        images = stain_jitter(batch[:, :3], generator, self.stain_jitter) if self.stain_jitter else batch[:, :3]
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


def stain_jitter(images_uint8: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    """(B, 3, H, W) uint8 -> float in [0, 255] with each image's haematoxylin, eosin and DAB optical
    densities scaled by U(1 ± strength) and shifted by U(± strength) (Tellez et al. 2018). The stain
    separation is skimage's ``rgb2hed``/``hed2rgb`` matrices, computed in optical density."""
    shape = (images_uint8.shape[0], 1, 1, 3)
    scale = 1 + (torch.rand(shape, generator=generator) * 2 - 1).to(images_uint8.device) * strength
    shift = (torch.rand(shape, generator=generator) * 2 - 1).to(images_uint8.device) * strength
    rgb = images_uint8.permute(0, 2, 3, 1).float().div(255).clamp_min(1e-6)
    stains = ((-rgb.log()) @ _HED_FROM_RGB.to(rgb.device)).clamp_min(0)
    rgb = torch.exp(-(stains * scale + shift) @ _RGB_FROM_HED.to(rgb.device)).clamp(0, 1)
    return rgb.mul(255).permute(0, 3, 1, 2)


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

"""Image tensors as the encoders take them: ImageNet normalisation, seeded random crops and the H&E
stain jitter, shared by the pretext samplers, finetuning, inference and the probes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from skimage.color import hed_from_rgb, rgb_from_hed

# Stain densities in skimage's ``rgb2hed`` units (log of RGB, floored at 1e-6, over log(1e-6)), the one
# convention of every stain jitter here; in them MoNuSeg's haematoxylin spans about 0-0.15 (1st-99th
# percentile), so a shift of 0.01 is a few percent of its range.
_LOG_FLOOR = math.log(1e-6)
_HED_FROM_RGB = torch.from_numpy(hed_from_rgb).float()
_RGB_FROM_HED = torch.from_numpy(rgb_from_hed).float()

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


def hed_jitter(rgb: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> the same with stain s of image b at ``scale[b, s] · s + shift[b, s]``
    (stains as skimage's ``rgb2hed``, back as ``hed2rgb``). Unlike ``rgb2hed`` the stains are not clipped
    at zero before the jitter: a colour the stain matrix does not fit keeps its colour, and scale 1,
    shift 0 is the identity."""
    density = rgb.clamp(min=1e-6).log() / _LOG_FLOOR
    stains = torch.einsum("bchw,cs->bshw", density, _HED_FROM_RGB.to(rgb.device))
    stains = stains * scale[:, :, None, None] + shift[:, :, None, None]
    return torch.einsum("bshw,sc->bchw", stains * _LOG_FLOOR, _RGB_FROM_HED.to(rgb.device)).exp().clamp(max=1)


def random_stain_jitter(rgb: torch.Tensor, stain_scale: float, stain_shift: float,
                        generator: torch.Generator) -> torch.Tensor:
    """Tellez et al. 2018's HED jitter of each image of (B, 3, H, W) RGB in [0, 1]: its haematoxylin and
    eosin densities scaled by U[1 - stain_scale, 1 + stain_scale] and shifted by U[-stain_shift,
    stain_shift] (``rgb2hed`` units); DAB is left alone, as H&E has none."""
    count = rgb.shape[0]
    scale = F.pad(torch.empty(count * 2).uniform_(-stain_scale, stain_scale, generator=generator).view(count, 2),
                  (0, 1)) + 1
    shift = F.pad(torch.empty(count * 2).uniform_(-stain_shift, stain_shift, generator=generator).view(count, 2),
                  (0, 1))
    return hed_jitter(rgb, scale.to(rgb.device), shift.to(rgb.device))

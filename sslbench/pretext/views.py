"""Two random views of a crop, shared by the joint-embedding pretexts (SimCLR, MoCo v2, BYOL, Barlow
Twins, DINO).

One view of a ``crop``² crop, output at the same size:
* a random resized crop: area fraction in ``scale`` (MoCo v2's (0.2, 1)), aspect ratio in ``ratio``;
* a random mirror and quarter turn: the 8 symmetries of a square (a slide has no "up");
* the H&E stain jitter finetuning uses too (``data.image.random_stain_jitter``, skimage ``rgb2hed``
  units): haematoxylin stays a haematoxylin colour, which an RGB hue jitter would not keep;
* a Gaussian blur with probability ``blur_p``, σ in ``blur_sigma`` pixels (SimCLR's 0.1–2).

Random numbers come from the CPU generator, as in every sampler here (no device sync); pixels are
transformed on the crops' device in batched ops: one ``grid_sample`` for crop + resize + mirror + turn,
two channel matmuls for the stains, one grouped convolution per axis for the blur.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sslbench.data.image import random_stain_jitter


@dataclass(frozen=True)
class ViewSettings:
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    stain_scale: float = 0.1
    stain_shift: float = 0.01
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)

    def __post_init__(self):
        if not (0 < self.scale[0] <= self.scale[1] <= 1 and 0 < self.ratio[0] <= self.ratio[1]
                and 0 <= self.stain_scale < 1 and 0 <= self.stain_shift and 0 <= self.blur_p <= 1
                and 0 < self.blur_sigma[0] <= self.blur_sigma[1]):
            raise ValueError(f"views need 0 < scale <= 1, 0 < ratio, 0 <= stain_scale < 1, 0 <= stain_shift, "
                             f"0 <= blur_p <= 1 and "
                             f"0 < blur_sigma, ranges low <= high; got {self}.")

    @property
    def blur_radius(self) -> int:
        return math.ceil(3 * self.blur_sigma[1])


def uniform(count: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.empty(count).uniform_(low, high, generator=generator)


def crop_transforms(count: int, settings: ViewSettings, generator: torch.Generator) -> torch.Tensor:
    """(count, 2, 3) ``affine_grid`` matrices: a random box of the crop, mirrored and turned at random.

    Box sides are fractions of the crop's side; a box too long for an extreme aspect ratio is clamped
    to the crop rather than redrawn (torchvision redraws up to 10 times)."""
    area = uniform(count, *settings.scale, generator)
    ratio = uniform(count, math.log(settings.ratio[0]), math.log(settings.ratio[1]), generator).exp()
    width, height = (area * ratio).sqrt().clamp(max=1), (area / ratio).sqrt().clamp(max=1)
    left = torch.rand(count, generator=generator) * (1 - width)
    top = torch.rand(count, generator=generator) * (1 - height)
    angle = torch.randint(0, 4, (count,), generator=generator) * (math.pi / 2)
    cos, sin = angle.cos().round(), angle.sin().round()  # exact quarter turns: pixel centres land on centres
    mirror = 1.0 - 2 * torch.randint(0, 2, (count,), generator=generator)
    # diag(width, height) @ rotation @ diag(mirror, 1); the box centre in [-1, 1] coordinates as translation
    return torch.stack([torch.stack([width * cos * mirror, -width * sin, 2 * left + width - 1], 1),
                        torch.stack([height * sin * mirror, height * cos, 2 * top + height - 1], 1)], 1)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Blur image b of (B, C, H, W) with its own ``sigma[b]`` (0: unchanged), kernel side 2·radius + 1,
    reflect padding: torchvision's ``gaussian_blur`` per image, as one grouped convolution per axis."""
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernels = torch.exp(-0.5 * (offsets / sigma.clamp(min=1e-3)[:, None]) ** 2)  # sigma 0: a unit impulse
    kernels = (kernels / kernels.sum(1, keepdim=True)).to(images.device, images.dtype)
    batch, channels, height, width = images.shape
    weight = kernels.repeat_interleave(channels, 0)[:, None, None, :]  # (B·C, 1, 1, K): one kernel per plane
    x = images.reshape(1, batch * channels, height, width)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), weight, groups=batch * channels)
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), weight.transpose(2, 3), groups=batch * channels)
    return x.reshape(batch, channels, height, width)


def random_views(crops: torch.Tensor, settings: ViewSettings, generator: torch.Generator) -> torch.Tensor:
    """(B, 3, S, S) uint8 crops -> one random view of each, (B, 3, S, S) uint8, on the crops' device."""
    count, device = crops.shape[0], crops.device
    theta = crop_transforms(count, settings, generator).to(device)
    x = crops.float().div_(255)
    x = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), mode="bilinear",
                      padding_mode="border", align_corners=False)
    x = random_stain_jitter(x, settings.stain_scale, settings.stain_shift, generator)
    blurred = torch.rand(count, generator=generator) < settings.blur_p
    sigma = uniform(count, *settings.blur_sigma, generator) * blurred
    x = gaussian_blur(x, sigma, settings.blur_radius)
    return x.mul_(255).round_().clamp_(0, 255).to(torch.uint8)

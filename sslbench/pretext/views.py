"""Two random views of a crop, shared by the joint-embedding pretexts (SimCLR, MoCo v2, BYOL, Barlow Twins).

One view of a ``crop``² crop, output at the same size:
* a random resized crop: area fraction in ``scale`` (MoCo v2's (0.2, 1)), aspect ratio in ``ratio``;
* a random mirror and quarter turn: the 8 symmetries of a square (a slide has no "up");
* a stain jitter in HED space (Tellez et al. 2018): the haematoxylin and eosin optical densities, as
  skimage's ``rgb2hed`` separates them (Ruifrok & Johnston's matrix), each scaled by
  U[1 − stain_scale, 1 + stain_scale] and shifted by U[−stain_shift, stain_shift]; the third (DAB)
  channel is left alone, as H&E has no DAB. Haematoxylin stays a haematoxylin colour, which an RGB hue
  jitter would not keep. In these units MoNuSeg's haematoxylin spans about 0–0.15 (1st–99th
  percentile), so Tellez's σ = 0.05 as a shift would be a third of the range: the shift is 0.01;
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
from skimage.color import hed_from_rgb, rgb_from_hed

_LOG_FLOOR = math.log(1e-6)  # skimage's floor on RGB before the log; optical densities are in its units
_HED_FROM_RGB = torch.from_numpy(hed_from_rgb).float()
_RGB_FROM_HED = torch.from_numpy(rgb_from_hed).float()


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


def hed_jitter(rgb: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> the same with stain s of image b at ``scale[b, s] · s + shift[b, s]``
    (stains as skimage's ``rgb2hed``, back as ``hed2rgb``). Unlike ``rgb2hed`` the stains are not clipped
    at zero before the jitter: a colour the stain matrix does not fit keeps its colour, and scale 1,
    shift 0 is the identity."""
    density = rgb.clamp(min=1e-6).log() / _LOG_FLOOR
    stains = torch.einsum("bchw,cs->bshw", density, _HED_FROM_RGB.to(rgb.device))
    stains = stains * scale[:, :, None, None] + shift[:, :, None, None]
    return torch.einsum("bshw,sc->bchw", stains * _LOG_FLOOR, _RGB_FROM_HED.to(rgb.device)).exp().clamp(max=1)


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
    # (count, 3) per stain, DAB (the last) untouched
    scale = F.pad(uniform(count * 2, -settings.stain_scale, settings.stain_scale, generator).view(count, 2), (0, 1)) + 1
    shift = F.pad(uniform(count * 2, -settings.stain_shift, settings.stain_shift, generator).view(count, 2), (0, 1))
    blurred = torch.rand(count, generator=generator) < settings.blur_p
    sigma = uniform(count, *settings.blur_sigma, generator) * blurred
    x = crops.float().div_(255)
    x = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), mode="bilinear",
                      padding_mode="border", align_corners=False)
    x = hed_jitter(x, scale.to(device), shift.to(device))
    x = gaussian_blur(x, sigma, settings.blur_radius)
    return x.mul_(255).round_().clamp_(0, 255).to(torch.uint8)

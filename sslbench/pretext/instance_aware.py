"""Instance-aware pretext task: Xie et al., MICCAI 2020.

A triplet per source image: anchor = random ``crop``² crop; positive = an adjacent crop of the same
size (shifted by at most one crop side, so it overlaps or touches the anchor); negative = a random
sub-crop of the positive with side drawn from ``neg_scales``, resized to ``crop``² (larger, fewer
nuclei). Encoder features -> global average pool -> linear 128-d embedding z.
L_ST = max(0, d(za, zp) - d(za, zn) + m1), d = squared L2 (scale-wise triplet, Eq. 1);
L_CR = max(0, f(zn) - f(zp) + m2), f a learned linear map to a scalar (count ranking, Eq. 2).

Departures from the paper's text (listed in docs/deviations.md):

* ``normalize_embedding=True`` (default) L2-normalises z as FaceNet does (Schroff et al., the
  triplet loss the paper cites as [12]); the paper does not say. On the unit sphere the squared
  distances lie in [0, 4], so the margin m1 = 1 keeps a fixed meaning; unnormalised, the loss can
  be lowered by scaling z instead of ordering it. ``--set pretext.normalize_embedding=False`` gives
  the unnormalised z of the paper's text.
* The paper's Σ runs over triplets; both losses are batch means here, so the loss scale (and the
  learning rate that suits it) does not depend on the batch size.

Two options probe what the task teaches (issue 15; off by default, the paper's task is unchanged):

* ``match_blur=True``: the negative is the only view that was upsampled, so interpolation blur alone
  tells it apart — a low-level cue, not nuclei size or count. Anchor and positive then go through the
  same path at the same scale (down to the negative's side, back up to ``crop``), so only the zoom on
  the content differs between the views.
* ``shuffle_roles=True`` is the control: the same triplets at the same cost, but positive and negative
  swap roles in a random half of them, so the targets carry no nuclei information. A gain that this
  strategy shares cannot come from instance awareness; what else it would come from is not tested.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sslbench.pretext.base import Pretext, full_precision, normalize, pick_images, randint, random_crop_box
from sslbench.registry import PRETEXTS


@full_precision
def triplet_loss(za: torch.Tensor, zp: torch.Tensor, zn: torch.Tensor, margin: float) -> torch.Tensor:
    d_ap = (za - zp).pow(2).sum(dim=1)
    d_an = (za - zn).pow(2).sum(dim=1)
    return F.relu(d_ap - d_an + margin).mean()


@full_precision
def ranking_loss(score_pos: torch.Tensor, score_neg: torch.Tensor, margin: float) -> torch.Tensor:
    """The positive (more nuclei) must score at least ``margin`` above the negative."""
    return F.relu(score_neg - score_pos + margin).mean()


@PRETEXTS.register_module()
class InstanceAware(Pretext):
    """Scale-wise triplet (L_ST) + count ranking (L_CR): Xie et al. 2020, the paper's method."""

    def __init__(self, encoder_channels: Sequence[int], crop: int = 768,
                 neg_scales: Sequence[int] = (512, 256, 128, 64), embed_dim: int = 128,
                 margin_st: float = 1.0, margin_cr: float = 1.0, use_st: bool = True, use_cr: bool = True,
                 normalize_embedding: bool = True, match_blur: bool = False, shuffle_roles: bool = False):
        super().__init__(encoder_channels)
        if not (use_st or use_cr):
            raise ValueError("instance_aware needs use_st or use_cr (or both) switched on.")
        if crop < 1 or not neg_scales or not all(0 < s <= crop for s in neg_scales):
            raise ValueError(f"instance_aware needs crop > 0 and every negative scale in (0, crop]; "
                             f"got crop={crop}, neg_scales={tuple(neg_scales)}.")
        if margin_st < 0 or margin_cr < 0:
            raise ValueError(f"margins must be >= 0, got margin_st={margin_st}, margin_cr={margin_cr}.")
        self.crop, self.neg_scales = crop, tuple(neg_scales)
        self.margin_st, self.margin_cr, self.use_st, self.use_cr = margin_st, margin_cr, use_st, use_cr
        self.normalize_embedding = normalize_embedding
        self.match_blur, self.shuffle_roles = match_blur, shuffle_roles
        self.min_image_size = crop
        self.embed = nn.Linear(self.encoder_channels[-1], embed_dim)
        # f: a 1×1 "fully convolutional" map on the pooled z; absent without L_CR, so that every
        # parameter gets a gradient (DDP requires it)
        self.count = nn.Linear(embed_dim, 1) if use_cr else None

    def sample(self, images, batch_size, generator):
        size = self.crop
        anchors, positives, negatives, boxes, scales = [], [], [], [], []
        for index in pick_images(images, batch_size, generator):
            image = images[index]
            height, width = image.shape[-2:]
            ay, ax = random_crop_box(height, width, size, generator)
            py, px = self._adjacent(ay, ax, height, width, generator)
            scale = self.neg_scales[randint(len(self.neg_scales) - 1, generator)]
            ny, nx = py + randint(size - scale, generator), px + randint(size - scale, generator)
            anchors.append(image[:, ay:ay + size, ax:ax + size])
            positives.append(image[:, py:py + size, px:px + size])
            negatives.append(image[:, ny:ny + scale, nx:nx + scale])
            boxes.append([[ay, ax, size], [py, px, size], [ny, nx, scale]])
            scales.append(scale)
        batch = {"anchor": torch.stack(anchors), "positive": torch.stack(positives),
                 "negative": self._resize(negatives), "boxes": torch.tensor(boxes)}
        if self.match_blur:
            for view in ("anchor", "positive"):
                batch[view] = self._resize(self._shrink(batch[view], scales))
        if self.shuffle_roles:
            batch["swap"] = torch.rand(batch_size, generator=generator) < 0.5
        return batch

    def _adjacent(self, ay, ax, height, width, generator):
        """A crop position within one crop side of the anchor, different from it where possible."""
        size = self.crop
        y_range = (max(0, ay - size), min(height - size, ay + size))
        x_range = (max(0, ax - size), min(width - size, ax + size))
        if y_range[0] == y_range[1] and x_range[0] == x_range[1]:
            return ay, ax  # image exactly crop-sized: the only crop there is
        while True:
            py, px = randint(y_range[1], generator, y_range[0]), randint(x_range[1], generator, x_range[0])
            if (py, px) != (ay, ax):
                return py, px

    @staticmethod
    def _shrink(views: torch.Tensor, sides: list[int]) -> list[torch.Tensor]:
        """Each view resized down to its side (antialiased, like a coarser scan), kept as uint8."""
        return [F.interpolate(view[None].float(), size=(side, side), mode="bilinear", antialias=True,
                              align_corners=False)[0].round_().clamp_(0, 255).to(torch.uint8)
                for view, side in zip(views, sides)]

    def _resize(self, crops: list[torch.Tensor]) -> torch.Tensor:
        """Resize every negative to crop², one interpolate call per distinct scale."""
        out = torch.empty((len(crops), 3, self.crop, self.crop), dtype=torch.uint8, device=crops[0].device)
        by_scale: dict[int, list[int]] = {}
        for i, crop in enumerate(crops):
            by_scale.setdefault(crop.shape[-1], []).append(i)
        for indices in by_scale.values():
            stacked = torch.stack([crops[i] for i in indices]).float()
            resized = F.interpolate(stacked, size=(self.crop, self.crop), mode="bilinear", align_corners=False)
            out[indices] = resized.round_().clamp_(0, 255).to(torch.uint8)
        return out

    def embed_features(self, encoder: nn.Module, images_uint8: torch.Tensor) -> torch.Tensor:
        features = encoder(normalize(images_uint8))[-1]
        z = self.embed(features.mean(dim=(2, 3)))
        return F.normalize(z, dim=1) if self.normalize_embedding else z

    def losses(self, za, zp, zn) -> dict[str, torch.Tensor]:
        out = {}
        if self.use_st:
            out["loss_st"] = triplet_loss(za, zp, zn, self.margin_st)
        if self.use_cr:
            out["loss_cr"] = ranking_loss(self.count(zp).squeeze(1), self.count(zn).squeeze(1), self.margin_cr)
        out["loss"] = sum(out.values())
        return out

    def forward(self, encoder, batch):
        # One encoder pass over all three views: shared weights, one set of BatchNorm statistics.
        z = self.embed_features(encoder, torch.cat([batch["anchor"], batch["positive"], batch["negative"]]))
        za, zp, zn = z.chunk(3)
        if "swap" in batch:  # the control: roles carry no information
            swap = batch["swap"].to(z.device)[:, None]
            zp, zn = torch.where(swap, zn, zp), torch.where(swap, zp, zn)
        return self.losses(za, zp, zn)

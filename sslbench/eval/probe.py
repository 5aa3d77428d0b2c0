"""Frozen-encoder probes: what does a pretrained encoder know about nuclei count and size?

The paper claims its pretext tasks teach "the prior knowledge of nuclei size and quantity". A probe
tests that directly: random ``crop``² crops of labelled images, the encoder's deepest features
global-average-pooled (the input of the instance-aware embedding), and a ridge regression from
those features to the crop's nucleus count (centroids inside the crop) and mean log nucleus area.
Scores are leave-one-image-out R² (no image's crops are both fitted and scored), so a probe cannot
memorise an image's stain or texture. Scratch (random init) is the baseline every pretext must beat.

The resampling probe asks what the Fig.-3 density maps respond to. The instance-aware negative is a
sub-crop of side s zoomed to the crop size: fewer, larger nuclei, but also the only blurred view. The
same crops are shown natively, zoomed (as negatives), and resampled (down to s and back up: the same
nuclei, the negative's blur). The *blur share* (native − resampled) / (native − zoomed) of the mean
activation says how much of the zoomed view's drop blur alone reproduces: near 0 the encoder responds
to content (nuclei count and size), near 1 to sharpness.

Hand-written ridge (closed form, a few lines) because scikit-learn is not a dependency.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sslbench.data.base import Sample, image_tensor
from sslbench.data.image import normalize, random_crop_box
from sslbench.errors import DataError

TARGETS = ("count", "log_size")


def nuclei_table(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centroids (n, 2) as row, column; areas (n,)) of every nucleus, one bincount pass."""
    flat = labels.ravel().astype(np.intp)
    area = np.bincount(flat)
    rows, cols = np.divmod(np.arange(flat.size), labels.shape[1])
    present = np.flatnonzero(area[1:]) + 1
    centroids = np.stack([np.bincount(flat, rows)[present], np.bincount(flat, cols)[present]], 1) / area[present, None]
    return centroids, area[present]


def crop_targets(centroids: np.ndarray, areas: np.ndarray, top: int, left: int, size: int) -> tuple[float, float]:
    """(nuclei whose centroid lies in the crop, mean log area of those nuclei; 0 without any)."""
    inside = ((centroids[:, 0] >= top) & (centroids[:, 0] < top + size)
              & (centroids[:, 1] >= left) & (centroids[:, 1] < left + size))
    if not inside.any():
        return 0.0, 0.0
    return float(inside.sum()), float(np.log(areas[inside]).mean())


def _probe_crops(samples: Sequence[Sample], crop: int, per_image: int, seed: int, device: torch.device | str):
    """(image index, sample, boxes, (per_image, 3, crop, crop) uint8 crops) per labelled sample; the
    same seeded crops for every encoder and every probe."""
    generator = torch.Generator().manual_seed(seed)
    labelled = [s for s in samples if s.labelled]
    if len(labelled) < 2:
        raise DataError("the probe needs at least 2 labelled images (it scores each image's crops with a "
                        "regression fitted on the others).")
    for index, sample in enumerate(labelled):
        height, width = sample.labels.shape
        if min(height, width) < crop:
            raise DataError(f"{sample.source or sample.name}: image is {height}×{width}, smaller than the probe "
                            f"crop {crop}; pass a smaller --crop.")
        boxes = [random_crop_box(height, width, crop, generator) for _ in range(per_image)]
        image = image_tensor(sample.image, device)
        yield index, sample, boxes, torch.stack([image[:, top:top + crop, left:left + crop] for top, left in boxes])


def _resize(crops: torch.Tensor, side: int) -> torch.Tensor:
    # antialiased on the way down (a coarser scan), bilinear on the way up (as the pretext zooms)
    return F.interpolate(crops, size=(side, side), mode="bilinear", antialias=side < crops.shape[-1],
                         align_corners=False)


def default_scales(crop: int) -> list[int]:
    """The zoom sides the probe and the density figure use unless told: 3/4, 1/2, 1/4, 1/8 of the crop."""
    return [crop * 3 // 4, crop // 2, crop // 4, crop // 8]


def zoomed(crops: torch.Tensor, side: int) -> torch.Tensor:
    """Float (B, 3, c, c) crops -> their centre side² sub-crops resized to c², as the pretext zooms negatives."""
    size = crops.shape[-1]
    top = (size - side) // 2
    return _resize(crops[..., top:top + side, top:top + side], size)


def resampled(crops: torch.Tensor, side: int) -> torch.Tensor:
    """Float (B, 3, c, c) crops -> down to side² and back up: the same nuclei, the zoomed view's blur."""
    return _resize(_resize(crops, side), crops.shape[-1])


@torch.no_grad()
def density_activation(encoder: nn.Module, images_uint8: torch.Tensor) -> torch.Tensor:
    """(B, h, w): the channel mean of the encoder's last-but-one feature map, what the Fig.-3 density
    maps show (``bench.figures.density_maps``) and the blur share averages."""
    return density_map(encoder(normalize(images_uint8)))


def density_map(feature_maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """(B, h, w): the channel mean of the last-but-one of an encoder's feature maps."""
    return feature_maps[-2].float().mean(dim=1)


@torch.no_grad()
def probe_images(encoder: nn.Module, samples: Sequence[Sample], crop: int, per_image: int, seed: int = 0,
                 scales: Sequence[int] = (), device: torch.device | str = "cpu"):
    """One encoder pass per labelled sample over its seeded crops (and their zoomed and resampled views at
    each of ``scales``), yielding (image index, pooled deepest features (per_image, C), targets (per_image,
    2) as TARGETS, {"native" | (view, s): summed ``density_activation``}). The same crops for every
    encoder given the same seed."""
    if not all(0 < s < crop for s in scales):
        raise DataError(f"resampling scales must lie in (0, crop={crop}); got {list(scales)}.")
    encoder.eval().to(device)

    def activation(views: torch.Tensor) -> float:
        return float(density_activation(encoder, views.round().clamp(0, 255).to(torch.uint8)).mean(dim=(1, 2)).sum())

    for index, sample, boxes, crops in _probe_crops(samples, crop, per_image, seed, device):
        maps = encoder(normalize(crops))  # the native crops' features and density map in one pass
        response = {"native": float(density_map(maps).mean(dim=(1, 2)).sum())}
        for s in scales:
            response["zoomed", s] = activation(zoomed(crops.float(), s))
            response["resampled", s] = activation(resampled(crops.float(), s))
        nuclei = nuclei_table(sample.labels)
        targets = np.array([crop_targets(*nuclei, top, left, crop) for top, left in boxes])
        yield index, maps[-1].mean(dim=(2, 3)).float().cpu().numpy(), targets, response


def blur_shares(response: dict, scales: Sequence[int]) -> dict[int, float | None]:
    """{s: (native − resampled) / (native − zoomed)} of summed activations; None where zooming does not
    lower the activation."""
    shares = {}
    for s in scales:
        drop = response["native"] - response["zoomed", s]
        shares[s] = (response["native"] - response["resampled", s]) / drop if drop > 0 else None
    return shares


def ridge_r2(features: np.ndarray, targets: np.ndarray, groups: np.ndarray, alpha: float = 10.0) -> np.ndarray:
    """Leave-one-image-out R² of a ridge regression (standardised features) per target column."""
    predictions = np.zeros_like(targets)
    for group in np.unique(groups):
        held_out = groups == group
        x, y = features[~held_out], targets[~held_out]
        mean, std = x.mean(0), x.std(0) + 1e-6
        x = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
        gram = x.T @ x + alpha * np.diag([1.0] * (x.shape[1] - 1) + [0.0])  # intercept unpenalised
        weights = np.linalg.solve(gram, x.T @ y)
        test = np.hstack([(features[held_out] - mean) / std, np.ones((held_out.sum(), 1))])
        predictions[held_out] = test @ weights
    residual = ((targets - predictions) ** 2).sum(0)
    total = ((targets - targets.mean(0)) ** 2).sum(0)
    return 1 - residual / np.where(total > 0, total, 1.0)


def probe_encoder(encoder: nn.Module, samples: Sequence[Sample], crop: int = 128, per_image: int = 32,
                  seed: int = 0, scales: Sequence[int] = (), device: torch.device | str = "cpu",
                  on_image: Callable[[], None] = lambda: None) -> dict:
    """{"count": R², "log_size": R², "blur_share": {s: share}} of the frozen ``encoder`` on ``samples``;
    ``on_image`` is called after each labelled image (a progress bar's tick)."""
    features, targets, groups, response = [], [], [], Counter()
    for index, image_features, image_targets, image_response in probe_images(encoder, samples, crop, per_image,
                                                                             seed, scales, device):
        features.append(image_features)
        targets.append(image_targets)
        groups += [index] * len(image_targets)
        response.update(image_response)
        on_image()
    r2 = ridge_r2(np.concatenate(features), np.concatenate(targets), np.array(groups))
    return dict(zip(TARGETS, r2.tolist())) | {"blur_share": blur_shares(response, scales)}

"""The built-in default data: H&E-like images rendered from exact instance label maps.

Each image draws its own mean nucleus size and density (the cues the instance-aware pretext task
learns from), places elliptical nuclei in clusters so that many touch or overlap slightly, and renders stain colours by
Beer-Lambert mixing of haematoxylin and eosin optical densities (Ruifrok & Johnston stain vectors),
with chromatin and stroma texture, blur and sensor noise. The image is drawn from the label map, so
the labels are exact.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.draw import ellipse
from skimage.segmentation import find_boundaries

from sslbench.data.base import Sample
from sslbench.registry import DATASETS

_HAEMATOXYLIN = np.array([0.650, 0.704, 0.286])
_EOSIN = np.array([0.072, 0.990, 0.105])


def _smooth_noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return (field - field.mean()) / (field.std() + 1e-8)


def synthetic_labels(rng: np.random.Generator, size: int, mean_radius: float, coverage: float,
                     max_overlap: float = 0.12) -> np.ndarray:
    """Instance map with up to ``coverage`` of the area in nuclei of about ``mean_radius`` px.

    Nuclei touch and may overlap by at most ``max_overlap`` of their area, the earlier one staying
    on top: as in tissue, every nucleus stays one piece with a clear shared edge, never an occluded
    fragment (which no post-processing could recover). Candidates breaking that are skipped, so a
    crowded image stops short of ``coverage``.
    """
    shape = (size, size)
    labels = np.zeros(shape, np.int32)
    clustering = np.exp(1.5 * _smooth_noise(rng, shape, size / 8)).ravel()
    count = max(1, int(coverage * size * size / (np.pi * mean_radius**2)))
    placed = 0
    for centre in rng.choice(size * size, size=5 * count, p=clustering / clustering.sum()):
        major = mean_radius * rng.uniform(0.8, 1.3)
        minor = major * rng.uniform(0.6, 1.0)
        rows, cols = ellipse(centre // size, centre % size, minor, major, shape=shape,
                             rotation=rng.uniform(0, np.pi))
        free = labels[rows, cols] == 0
        if free.size == 0 or free.mean() < 1 - max_overlap or not (free.all() or _one_piece(rows[free], cols[free])):
            continue
        placed += 1
        labels[rows[free], cols[free]] = placed
        if placed == count:
            break
    return labels


def _one_piece(rows: np.ndarray, cols: np.ndarray) -> bool:
    mask = np.zeros((rows.max() - rows.min() + 1, cols.max() - cols.min() + 1), bool)
    mask[rows - rows.min(), cols - cols.min()] = True
    return ndimage.label(mask)[1] == 1


def render_he(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """RGB uint8 H&E-like rendering of an instance map."""
    shape = labels.shape
    nuclei = labels > 0
    stain_h = _HAEMATOXYLIN + rng.normal(0, 0.04, 3)
    stain_e = _EOSIN + rng.normal(0, 0.04, 3)
    stroma = 0.25 + 0.12 * _smooth_noise(rng, shape, 3.0) + 0.08 * _smooth_noise(rng, shape, 12.0)
    stroma *= ndimage.gaussian_filter((rng.random(shape) > 0.08).astype(float), 2.0)  # pale gaps
    per_nucleus = rng.uniform(0.7, 1.3, labels.max() + 1)
    chromatin = 1.0 + 0.25 * _smooth_noise(rng, shape, 1.0)
    rim = find_boundaries(labels, mode="inner") & nuclei  # dark nuclear envelope: touching nuclei show their edge
    conc_h = nuclei * per_nucleus[labels] * chromatin * rng.uniform(0.9, 1.3) + 0.35 * rim + 0.05
    conc_e = np.clip(stroma, 0.02, None) * (~nuclei + 0.4 * nuclei)
    density = conc_h[..., None] * stain_h + conc_e[..., None] * stain_e
    density = ndimage.gaussian_filter(density, (rng.uniform(0.5, 1.2),) * 2 + (0,))
    rgb = 255 * np.exp(-density) + rng.normal(0, rng.uniform(2, 5), (*shape, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


@DATASETS.register_module()
class Synthetic:
    """Deterministic synthetic H&E tiles with exact instance masks (the built-in default data)."""

    def __init__(self, num_images: int = 12, size: int = 256, seed: int = 0,
                 radius_range: tuple[float, float] = (5.0, 11.0),
                 coverage_range: tuple[float, float] = (0.12, 0.45)):
        if num_images < 1 or size < 16:
            raise ValueError(f"synthetic data needs num_images >= 1 and size >= 16, got {num_images}, {size}.")
        self.num_images, self.size, self.seed = num_images, size, seed
        self.radius_range, self.coverage_range = radius_range, coverage_range

    def sample(self, index: int) -> Sample:
        rng = np.random.default_rng([self.seed, index])
        radius = float(np.exp(rng.uniform(*np.log(self.radius_range))))
        coverage = float(rng.uniform(*self.coverage_range))
        labels = synthetic_labels(rng, self.size, radius, coverage)
        return Sample(f"synthetic_{index:03d}", render_he(rng, labels), labels, source="synthetic")

    def load(self) -> list[Sample]:
        return [self.sample(i) for i in range(self.num_images)]

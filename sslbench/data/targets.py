"""Instance label maps -> the 3-class finetuning target (background / nucleus body / boundary)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.segmentation import find_boundaries

BACKGROUND, BODY, BOUNDARY = 0, 1, 2


def instance_to_classes(labels: np.ndarray, boundary_width: int = 1) -> np.ndarray:
    """(H, W) uint8 class map. Boundary = the inner ``boundary_width`` px of every nucleus, so two
    touching nuclei are separated by boundary pixels from both sides."""
    if boundary_width < 1:
        raise ValueError(f"boundary_width must be >= 1, got {boundary_width}.")
    foreground = labels > 0
    boundary = find_boundaries(labels, connectivity=1, mode="inner") & foreground
    if boundary_width > 1:
        boundary = ndimage.binary_dilation(boundary, iterations=boundary_width - 1) & foreground
    classes = np.full(labels.shape, BACKGROUND, np.uint8)
    classes[foreground] = BODY
    classes[boundary] = BOUNDARY
    return classes

"""3-class probabilities -> instance label map.

Method (one-stage contour-aware segmentation, Cui et al. 2019): each pixel takes its most probable
class. Nucleus bodies are separated from each other by the predicted boundary ring, so their
connected components are the seeds; a watershed on -P(body), restricted to the foreground (body or
boundary), grows each seed back over its boundary pixels. ``body_threshold`` / ``foreground_threshold``
replace the argmax for seeds (P(body) above it) and foreground (1 - P(background) above it): a
higher body threshold splits touching nuclei more eagerly (values chosen on validation images,
``eval.evaluate.tune_postprocess``). A foreground blob with no body pixel at all
(an under-trained model may call a small nucleus all boundary) becomes an instance of its own rather
than being lost. Objects under ``min_area`` px are dropped.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.measure import regionprops_table
from skimage.segmentation import relabel_sequential, watershed

from sslbench.data.targets import BACKGROUND, BODY

MIN_AREA = 10  # px: objects under it are dropped where neither a config nor a grid names a value


def probabilities_to_instances(probs: np.ndarray, min_area: int = MIN_AREA, min_seed_area: int = 4,
                               body_threshold: float | None = None,
                               foreground_threshold: float | None = None) -> np.ndarray:
    """(3, H, W) class probabilities -> (H, W) int32 instance ids (0 = background)."""
    return without_small(seeded_watershed(probs, min_seed_area, body_threshold, foreground_threshold), min_area)


def seeded_watershed(probs: np.ndarray, min_seed_area: int = 4, body_threshold: float | None = None,
                     foreground_threshold: float | None = None) -> np.ndarray:
    """The instances before objects under ``min_area`` go: the costly part, which ``min_area`` does not
    change (so a grid over it runs once per other setting)."""
    if probs.ndim != 3 or probs.shape[0] != 3:
        raise ValueError(f"expected (3, H, W) probabilities, got shape {probs.shape}.")
    classes = probs.argmax(axis=0)  # ties go to the lower class: background first
    body = classes == BODY if body_threshold is None else probs[BODY] > body_threshold
    seeds = drop_small(ndimage.label(body)[0], min_seed_area)
    foreground = classes != BACKGROUND if foreground_threshold is None else 1 - probs[BACKGROUND] > foreground_threshold
    instances = watershed(-probs[BODY], markers=seeds, mask=foreground)
    unseeded, _ = ndimage.label(foreground & (instances == 0))
    return np.where(unseeded > 0, unseeded + instances.max(), instances)


def without_small(instances: np.ndarray, min_area: int) -> np.ndarray:
    """``instances`` less the objects under ``min_area`` px, ids made consecutive (int32; the input is kept)."""
    return relabel_sequential(drop_small(instances.copy(), min_area))[0].astype(np.int32)


def drop_small(labels: np.ndarray, min_area: int) -> np.ndarray:
    """Zero every object of fewer than ``min_area`` pixels (one bincount, any skimage version)."""
    small = np.bincount(labels.ravel()) < min_area
    small[0] = False
    labels[small[labels]] = 0
    return labels


def nucleus_table(instances: np.ndarray, probs: np.ndarray) -> dict[str, np.ndarray]:
    """One entry per instance, ids ascending: its id, centroid (row, col), area in pixels and mean
    P(body) over its pixels (how sure the model is of it)."""
    props = regionprops_table(instances, intensity_image=probs[BODY],
                              properties=("label", "centroid", "area", "intensity_mean"))
    return {"id": props["label"], "centroid_row": props["centroid-0"], "centroid_col": props["centroid-1"],
            "area_px": props["area"].astype(np.int64), "mean_body_probability": props["intensity_mean"]}

"""A dataset's card: what ``sslbench data inspect`` says about it as a whole, and the warning when its
resolution differs from the training data's."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from sslbench.data.base import Sample
from sslbench.data.io import FileDataset

#: linear scale factors closer to 1 than this are not worth a warning (area within about ±25 %)
RESOLUTION_TOLERANCE = 1.12


def nucleus_areas(labels: np.ndarray | None) -> np.ndarray | None:
    """Pixel area of every nucleus of one label map; None for an unlabelled image."""
    if labels is None:
        return None
    counts = np.bincount(labels.ravel())[1:]
    return counts[counts > 0]


class CardBuilder:
    """Collects a card while the samples stream past (the pixels are not kept)."""

    def __init__(self, dataset: FileDataset):
        self.dataset = dataset
        self.sizes: Counter[str] = Counter()
        self.tissues: Counter[str] = Counter()
        self.areas: list[np.ndarray] = []
        self.images = 0

    def add(self, sample: Sample) -> None:
        self.images += 1
        self.sizes[f"{sample.image.shape[0]}×{sample.image.shape[1]}"] += 1
        if "tissue" in sample.meta:
            self.tissues[sample.meta["tissue"]] += 1
        areas = nucleus_areas(sample.labels)
        if areas is not None:
            self.areas.append(areas)

    def card(self) -> dict:
        nuclei = int(sum(a.size for a in self.areas))
        cls = type(self.dataset)
        magnification = cls.MAGNIFICATION
        return {
            "format": self.dataset.format, "images": self.images, "labelled": len(self.areas),
            "sizes": dict(self.sizes.most_common()), "nuclei": nuclei,
            "nuclei_per_image": round(nuclei / len(self.areas), 1) if self.areas else None,
            "median_nucleus_area_px": float(np.median(np.concatenate(self.areas))) if nuclei else None,
            "magnification": f"{magnification:g}x" if magnification else None,
            "rescale": self.dataset.rescale, "classes": list(cls.CLASS_NAMES), "tissues": dict(self.tissues),
            "license": cls.LICENSE or None, "citation": cls.CITATION or None,
        }


def resolution_warning(card: dict, train: dict, path: str, train_path: str) -> str | None:
    """A warning when ``card``'s data is at another resolution than the training data ``train``: by
    their magnifications when both are known, else by their median nucleus areas. Area scales with
    the SQUARE of the linear resolution: 20x vs 40x halves width and height, quarters the area."""
    def magnification(c: dict) -> float | None:
        return float(c["magnification"].rstrip("x")) * c["rescale"] if c["magnification"] else None

    ours, theirs = magnification(card), magnification(train)
    if ours and theirs:
        factor, why = theirs / ours, f"{path} is at {ours:g}x, {train_path} at {theirs:g}x"
    elif card["median_nucleus_area_px"] and train["median_nucleus_area_px"]:
        factor = math.sqrt(train["median_nucleus_area_px"] / card["median_nucleus_area_px"])
        why = (f"the median nucleus is {card['median_nucleus_area_px']:g} px in {path} but "
               f"{train['median_nucleus_area_px']:g} px in {train_path} (magnification unknown)")
    else:
        return None
    if 1 / RESOLUTION_TOLERANCE <= factor <= RESOLUTION_TOLERANCE:
        return None
    return (f"resolution mismatch: {why}: nuclei there are {1 / factor:.3g}x as wide and {1 / factor ** 2:.3g}x "
            f"the area of the training data's (area goes with the square of the linear scale); resize it to the "
            f"training resolution with --set data.rescale={factor:.3g} (linear factor) where it is read as --data.")

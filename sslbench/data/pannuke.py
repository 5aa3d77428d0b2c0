"""PanNuke reader (19 tissues, 256×256 tiles at 40x): per fold ``images.npy`` (N, 256, 256, 3),
``masks.npy`` (N, 256, 256, 6: five class channels of instance ids, then background) and
``types.npy`` (N tissue names), as in the official zips (``Fold 1/images/fold1/images.npy``,
``Fold 1/masks/fold1/masks.npy``). The arrays are memory-mapped: a tile is read when it is loaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sslbench.data.base import Sample
from sslbench.data.io import FileDataset, to_rgb_uint8
from sslbench.errors import DataError
from sslbench.registry import DATASETS

CLASS_CHANNELS = 5  # the sixth channel is background


def fold_files(images: Path) -> tuple[Path, Path]:
    """masks.npy and types.npy of the fold whose images.npy is ``images``: beside it, or under the
    fold's masks/ branch (official layout)."""
    parts = list(images.parent.parts)
    if "images" in parts:
        parts[len(parts) - 1 - parts[::-1].index("images")] = "masks"  # the last 'images' only
    mirrored = Path(*parts)
    masks = next((p for p in (images.parent / "masks.npy", mirrored / "masks.npy") if p.is_file()), None)
    types = next((p for p in (images.parent / "types.npy", mirrored / "types.npy") if p.is_file()), None)
    if masks is None or types is None:
        missing = "masks.npy" if masks is None else "types.npy"
        raise DataError(f"{images}: no {missing} beside it or under the fold's masks/ folder; unzip the fold's "
                        "images and masks archives into one 'Fold N' folder.")
    return masks, types


def _open(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # ValueError, OSError, EOFError for truncated or non-.npy files
        raise DataError(f"{path}: cannot be read as a .npy array ({type(exc).__name__}: {exc}); download "
                        "it again.") from None


def instances_and_classes(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One (H, W, 6) PanNuke mask as instance ids 1.. (renumbered class by class, as CellViT does, so
    equal ids in two channels stay two nuclei) and the class (channel + 1) of every pixel."""
    labels = np.zeros(masks.shape[:2], np.int32)
    classes = np.zeros(masks.shape[:2], np.int32)
    count = 0
    for channel in range(CLASS_CHANNELS):
        ids = masks[..., channel]
        inside = ids > 0
        unique, compact = np.unique(ids[inside], return_inverse=True)
        labels[inside] = count + 1 + compact
        classes[inside] = channel + 1
        count += unique.size
    return labels, classes


@DATASETS.register_module(name="pannuke")
class PanNuke(FileDataset):
    """PanNuke folds: images.npy + masks.npy + types.npy per fold, memory-mapped."""

    format = "pannuke"
    LICENSE = "CC BY-NC-SA 4.0"
    CITATION = ("J. Gamper et al., PanNuke: an open pan-cancer histology dataset for nuclei instance "
                "segmentation and classification, ECDP 2019; J. Gamper et al., PanNuke Dataset Extension, "
                "Insights and Baselines, arXiv:2003.10778, 2020.")
    MAGNIFICATION = 40.0
    CLASS_NAMES = ("neoplastic", "inflammatory", "connective", "dead", "epithelial")

    def list_entries(self) -> list[tuple[str, Path]]:
        """(name, images.npy) per tile; which fold array and row each name is lives in ``self.tiles``
        (the fingerprint then reads no multi-GB masks file per tile)."""
        folds = sorted(p for p in self.root.rglob("images.npy") if not p.name.startswith("."))
        if not folds:
            raise DataError(f"{self.root}: no images.npy found; a PanNuke folder holds 'Fold N/images/foldN/"
                            "images.npy', 'Fold N/masks/foldN/masks.npy' and types.npy.")
        self.tiles: dict[str, tuple[np.ndarray, np.ndarray, Path, str, int]] = {}
        entries = []
        for images_path in folds:
            masks_path, types_path = fold_files(images_path)
            images, masks, types = _open(images_path), _open(masks_path), _open(types_path)
            if images.ndim != 4 or images.shape[-1] != 3:
                raise DataError(f"{images_path}: shape {images.shape}, expected (N, H, W, 3) RGB tiles; "
                                "download the fold again.")
            if masks.shape != (*images.shape[:3], CLASS_CHANNELS + 1):
                raise DataError(f"{masks_path}: shape {masks.shape} does not match {images_path.name} "
                                f"{images.shape} (expected (N, H, W, 6)); use the masks of the same fold.")
            if types.shape != images.shape[:1]:
                raise DataError(f"{types_path}: {types.shape[0] if types.ndim else 0} tissue names for "
                                f"{images.shape[0]} tiles; use the types.npy of the same fold.")
            relative = images_path.relative_to(self.root).parts
            fold = relative[0] if len(relative) > 1 else ""
            for index in range(images.shape[0]):
                name = f"{fold}/{index:04d}" if fold else f"{index:04d}"
                self.tiles[name] = (images, masks, masks_path, str(types[index]), index)
                entries.append((name, images_path))
        return entries

    def read_entry(self, entry: tuple[str, Path]) -> Sample:
        name, images_path = entry
        images, masks, masks_path, tissue, index = self.tiles[name]
        image = np.asarray(images[index])
        if image.dtype.kind == "f" and image.size and image.max() > 1:  # the release stores 0..255 as float64
            if image.min() < 0 or image.max() > 255:
                raise DataError(f"{images_path}: tile {index} has values outside 0..255; download the fold again.")
            image = np.rint(image).astype(np.uint8)
        labels, classes = instances_and_classes(np.asarray(masks[index]))
        return Sample(name, to_rgb_uint8(image, images_path), labels, source=f"{images_path}[{index}]",
                      annotation=str(masks_path), classes=classes,
                      meta={"tissue": tissue, "fold": name.rsplit("/", 1)[0] if "/" in name else ""})

"""CoNSeP reader (HoVer-Net's colorectal set): ``Images/*.png`` + ``Labels/*.mat`` (``inst_map``
instance ids, ``type_map`` class per pixel), for one split or a folder holding ``Train/`` and ``Test/``."""

from __future__ import annotations

from pathlib import Path

from sslbench.data.base import Sample
from sslbench.data.io import (
    IMAGE_SUFFIXES,
    FileDataset,
    find_child,
    list_files,
    pair_by_stem,
    read_mat_sample,
    unique_stems,
)
from sslbench.errors import DataError
from sslbench.registry import DATASETS


def split_folders(root: Path) -> list[Path]:
    """``root`` if it holds Images/ + Labels/ with .mat files, else its sub-folders that do (Train/, Test/)."""
    def is_split(folder: Path) -> bool:
        labels = find_child(folder, "Labels")
        return find_child(folder, "Images") is not None and labels is not None and bool(list_files(labels, (".mat",)))
    if is_split(root):
        return [root]
    return [child for child in sorted(root.iterdir()) if child.is_dir() and is_split(child)]


@DATASETS.register_module(name="consep")
class CoNSeP(FileDataset):
    """CoNSeP: Images/*.png + Labels/*.mat (inst_map, type_map), per split folder."""

    format = "consep"
    LICENSE = "see the HoVer-Net data page (warwick.ac.uk/fac/cross_fac/tia/data/hovernet); not verified here"
    CITATION = ("S. Graham et al., HoVer-Net: Simultaneous segmentation and classification of nuclei in "
                "multi-tissue histology images, Medical Image Analysis 58:101563, 2019.")
    MAGNIFICATION = 40.0
    CLASS_NAMES = ("other", "inflammatory", "healthy epithelial", "dysplastic/malignant epithelial",
                   "fibroblast", "muscle", "endothelial")

    def list_entries(self) -> list[tuple[str, Path, Path | None]]:
        splits = split_folders(self.root)
        if not splits:
            raise DataError(f"{self.root}: no Images/ + Labels/*.mat here or in a sub-folder (Train/, Test/); "
                            "point at the unzipped CoNSeP folder.")
        entries = []
        for split in splits:
            image_dir, label_dir = find_child(split, "Images"), find_child(split, "Labels")
            images = unique_stems(list_files(image_dir, IMAGE_SUFFIXES), image_dir)
            labels = unique_stems(list_files(label_dir, (".mat",)), label_dir)
            prefix = "" if split == self.root else f"{split.name}/"
            entries += [(prefix + name, image, mat)
                        for name, image, mat in pair_by_stem(images, labels, image_dir, label_dir, ".mat label")]
        return entries

    def read_entry(self, entry: tuple[str, Path, Path | None]) -> Sample:
        name, image_path, mat_path = entry
        split = name.split("/")[0] if "/" in name else ""
        return read_mat_sample(name, image_path, mat_path, {"split": split} if split else {})

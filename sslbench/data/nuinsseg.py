"""NuInsSeg reader (31 human and mouse organs, 512×512 at 40x): per organ folder
``tissue images/*.png``, ``label masks modify/*.tif`` (instance ids; ``label masks/`` where that is
absent) and ``vague areas/mask binary/*.png``, the regions the annotators marked ambiguous. Those
become the sample's ignore mask: left out of scoring, not counted as background."""

from __future__ import annotations

from pathlib import Path

from sslbench.data.base import Sample
from sslbench.data.io import (
    IMAGE_SUFFIXES,
    LABEL_SUFFIXES,
    FileDataset,
    check_pair,
    check_same_size,
    find_child,
    list_files,
    pair_by_stem,
    read_image,
    read_label_map,
    read_mask,
    unique_stems,
)
from sslbench.errors import DataError
from sslbench.registry import DATASETS

IMAGE_DIR = "tissue images"
LABEL_DIRS = ("label masks modify", "label masks")
VAGUE_DIR = "vague areas"
VAGUE_MASK_DIRS = ("mask binary", "mask binary_vague")


def organ_folders(root: Path) -> list[Path]:
    """``root`` if it is one organ's folder (tissue images/ + label masks/: MoNuSeg has 'Tissue Images/'
    too), else its sub-folders that are."""
    def is_organ(folder: Path) -> bool:
        return find_child(folder, IMAGE_DIR) is not None and find_child(folder, *LABEL_DIRS) is not None
    if is_organ(root):
        return [root]
    return [child for child in sorted(root.iterdir()) if child.is_dir() and is_organ(child)]


def _ambiguous_masks(organ: Path) -> dict[str, Path]:
    vague = find_child(organ, VAGUE_DIR)
    masks = (find_child(vague, *VAGUE_MASK_DIRS) or vague) if vague else None
    return unique_stems(list_files(masks, (".png",)), masks) if masks else {}


@DATASETS.register_module(name="nuinsseg")
class NuInsSeg(FileDataset):
    """NuInsSeg: <organ>/tissue images/*.png + label masks modify/*.tif + vague areas/mask binary/*.png."""

    format = "nuinsseg"
    LICENSE = "CC BY 4.0"
    CITATION = ("A. Mahbod et al., NuInsSeg: A fully annotated dataset for nuclei instance segmentation in "
                "H&E-stained histological images, Scientific Data 11:295, 2024; doi:10.1038/s41597-024-03117-2.")
    MAGNIFICATION = 40.0

    def list_entries(self) -> list[tuple[str, Path, Path | None, Path | None]]:
        organs = organ_folders(self.root)
        if not organs:
            raise DataError(f"{self.root}: no '{IMAGE_DIR}/' + '{LABEL_DIRS[0]}/' here or in a sub-folder; "
                            "point at the unzipped NuInsSeg folder (one folder per organ).")
        entries = []
        for organ in organs:
            image_dir = find_child(organ, IMAGE_DIR)
            label_dir = find_child(organ, *LABEL_DIRS)
            images = unique_stems(list_files(image_dir, IMAGE_SUFFIXES), image_dir)
            labels = unique_stems(list_files(label_dir, LABEL_SUFFIXES), label_dir)
            ambiguous = _ambiguous_masks(organ)
            prefix = "" if organ == self.root else f"{organ.name}/"
            entries += [(prefix + name, image, label, ambiguous.get(name))
                        for name, image, label in pair_by_stem(images, labels, image_dir, organ, "label mask")]
        return entries

    def read_entry(self, entry: tuple[str, Path, Path | None, Path | None]) -> Sample:
        name, image_path, label_path, ambiguous_path = entry
        image = read_image(image_path)
        labels = ignore = None
        if label_path is not None:
            labels = read_label_map(label_path)
            check_pair(image, labels, image_path, label_path)
        if ambiguous_path is not None:
            ignore = read_mask(ambiguous_path)
            check_same_size(image, ignore, image_path, ambiguous_path, "ambiguous-area mask")
        organ = name.split("/")[0] if "/" in name else self.root.name
        return Sample(name, image, labels, source=str(image_path), annotation=str(label_path or ""),
                      ignore=ignore, meta={"tissue": organ})

"""TNBC reader (Naylor et al., breast, 11 patients, 512×512 at 40x), in either layout:

- the Zenodo release: ``Slide_XX/*.png`` + ``GT_XX/*.png``, where the ground truth is a BINARY mask.
  Instances are made from it here as 8-connected components: two touching nuclei that share a
  boundary in the mask become one instance. The annotators mostly left gaps (4,028 components for
  the 4,022 published nuclei), but a touching pair is merged silently by construction.
- an instance conversion in the folder layout, ``images/<patient>_<tile>.png`` +
  ``labels/<patient>_<tile>.png`` (how /work/shared/data/tnbc is stored): read as instance ids.

Every sample records its patient (``meta["patient"]``, the stem's first number): split by patient,
never by tile, or tiles of one patient land in both train and test."""

from __future__ import annotations

import re
from pathlib import Path

from sslbench.data.base import Sample
from sslbench.data.folder import Folder
from sslbench.data.io import (
    IMAGE_SUFFIXES,
    check_pair,
    instances_from_mask,
    list_files,
    pair_by_stem,
    read_image,
    read_mask,
    unique_stems,
    warn,
)
from sslbench.errors import DataError
from sslbench.registry import DATASETS

SLIDE_DIR = re.compile(r"^slide_(\d+)$", re.IGNORECASE)


def zenodo_folders(root: Path) -> dict[str, tuple[Path, Path | None]]:
    """patient -> (Slide_XX, GT_XX or None) of the Zenodo layout; {} when ``root`` is not one."""
    folders = {}
    for child in sorted(root.iterdir()):
        match = SLIDE_DIR.match(child.name)
        if child.is_dir() and match:
            ground_truth = next((p for p in root.iterdir() if p.is_dir() and p.name.lower() == f"gt_{match[1]}"), None)
            folders[match[1]] = (child, ground_truth)
    return folders


@DATASETS.register_module(name="tnbc")
class TNBC(Folder):
    """TNBC: Slide_XX/ + GT_XX/ binary masks (made into instances), or images/ + labels/ instance maps."""

    format = "tnbc"
    LICENSE = "see Zenodo record 1175282 (doi:10.5281/zenodo.1175282); not verified here"
    CITATION = ("P. Naylor, M. Laé, F. Reyal, T. Walter, Segmentation of Nuclei in Histopathology Images by "
                "Deep Regression of the Distance Map, IEEE TMI 38(2):448-459, 2019; doi:10.5281/zenodo.1175282.")
    MAGNIFICATION = 40.0

    def list_entries(self) -> list[tuple[str, Path, Path | None]]:
        folders = zenodo_folders(self.root)
        if not folders:
            return super().list_entries()
        warn(f"{self.root}: TNBC ground truth is binary; instances are its 8-connected components, so "
             "nuclei touching in the mask are merged into one.")
        entries = []
        for slide_dir, gt_dir in folders.values():
            images = unique_stems(list_files(slide_dir, IMAGE_SUFFIXES), slide_dir)
            masks = unique_stems(list_files(gt_dir, IMAGE_SUFFIXES), gt_dir) if gt_dir else {}
            entries += pair_by_stem(images, masks, slide_dir, gt_dir or slide_dir, "ground-truth mask")
        names = [entry[0] for entry in entries]
        if len(set(names)) < len(names):
            raise DataError(f"{self.root}: two Slide_XX folders hold files of the same name; TNBC names tiles "
                            "<patient>_<tile>.png, rename the copies.")
        return entries

    def read_entry(self, entry: tuple[str, Path, Path | None]) -> Sample:
        name, image_path, label_path = entry
        patient = {"patient": name.split("_")[0]} if re.match(r"^\d+_", name) else {}
        if label_path is None or not label_path.parent.name.lower().startswith("gt_"):
            sample = super().read_entry(entry)
            sample.meta.update(patient)
            return sample
        image = read_image(image_path)
        labels = instances_from_mask(read_mask(label_path))
        check_pair(image, labels, image_path, label_path)
        return Sample(name, image, labels, source=str(image_path), annotation=str(label_path), meta=patient)

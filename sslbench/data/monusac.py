"""MoNuSAC reader (4 organs, 40x): one folder per patient holding each image (.svs, .tif or .png)
with its Aperio XML of the same name, one ``Annotation`` per class ('Epithelial', 'Lymphocyte',
'Neutrophil', 'Macrophage'). Regions of the test set's 'Ambiguous' class become the ignore mask
(left out of scoring), not nuclei."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sslbench.data.base import Sample
from sslbench.data.io import (
    IMAGE_SUFFIXES,
    SLIDE_SUFFIXES,
    FileDataset,
    class_map,
    list_files,
    pair_by_stem,
    read_image,
    unique_stems,
)
from sslbench.data.monuseg import parse_aperio_regions, rasterise, rasterise_regions
from sslbench.errors import DataError
from sslbench.registry import DATASETS

AMBIGUOUS = "ambiguous"


@DATASETS.register_module(name="monusac")
class MoNuSAC(FileDataset):
    """MoNuSAC: <patient>/<image>.svs|tif|png + <image>.xml, one Aperio Annotation per class."""

    format = "monusac"
    LICENSE = "CC BY-NC-SA 4.0 (as stated on the MoNuSAC challenge site; not verified here)"
    CITATION = ("R. Verma et al., MoNuSAC2020: A Multi-Organ Nuclei Segmentation and Classification Challenge, "
                "IEEE TMI 40(12):3413-3423, 2021.")
    MAGNIFICATION = 40.0
    CLASS_NAMES = ("epithelial", "lymphocyte", "neutrophil", "macrophage")

    def list_entries(self) -> list[tuple[str, Path, Path | None]]:
        images = unique_stems(list_files(self.root, IMAGE_SUFFIXES + SLIDE_SUFFIXES, recursive=True), self.root)
        if not images:
            raise DataError(f"{self.root}: no images found; a MoNuSAC folder holds one folder per patient with "
                            "<image>.svs (or .tif) and <image>.xml.")
        annotations = unique_stems(list_files(self.root, (".xml",), recursive=True), self.root)
        return pair_by_stem(images, annotations, self.root, self.root, "XML annotation")

    def read_entry(self, entry: tuple[str, Path, Path | None]) -> Sample:
        name, image_path, xml_path = entry
        image = read_image(image_path)
        if xml_path is None:
            return Sample(name, image, None, source=str(image_path))
        regions = parse_aperio_regions(xml_path)
        known = {class_name: k for k, class_name in enumerate(self.CLASS_NAMES, start=1)}
        unknown = sorted({c for c, _ in regions if c.lower() not in known and c.lower() != AMBIGUOUS})
        if unknown:
            raise DataError(f"{xml_path}: unknown class '{unknown[0]}'; MoNuSAC classes are "
                            f"{', '.join(self.CLASS_NAMES)} (and Ambiguous): fix the Annotation's Attribute Name.")
        nuclei = [(known[c.lower()], xy) for c, xy in regions if c.lower() != AMBIGUOUS]
        ambiguous = [xy for c, xy in regions if c.lower() == AMBIGUOUS]
        labels, kept = rasterise_regions([xy for _, xy in nuclei], image.shape[:2], xml_path)
        classes = class_map(labels, np.arange(1, len(kept) + 1), [nuclei[i][0] for i in kept], xml_path)
        ignore = rasterise(ambiguous, image.shape[:2], xml_path) > 0 if ambiguous else None
        return Sample(name, image, labels, source=str(image_path), annotation=str(xml_path),
                      classes=classes, ignore=ignore, meta={"patient": Path(name).parent.as_posix()})

"""MoNuSeg reader: ``Tissue Images/*.tif`` + ``Annotations/*.xml`` (Aperio ImageScope), or both
side by side in one folder. An image may instead be annotated by an instance label map in
``Label Maps/`` (how the 17 training images without public XML are distributed) or ``labels/`` (a
user's own corrections); one image with two annotations is an error. Images with none are returned
unlabelled (pretraining only)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from skimage.draw import polygon

from sslbench.data.base import Sample
from sslbench.data.io import (
    IMAGE_SUFFIXES,
    LABEL_SUFFIXES,
    FileDataset,
    check_pair,
    pair_by_stem,
    find_child,
    list_files,
    read_image,
    read_label_map,
    unique_stems,
    warn,
)
from sslbench.errors import DataError
from sslbench.registry import DATASETS

IMAGE_DIRS = ("Tissue Images", "Tissue_Images", "TissueImages")
ANNOTATION_DIRS = ("Annotations",)
LABEL_MAP_DIRS = ("Label Maps", "Label_Maps", "LabelMaps", "labels")


def parse_aperio_xml(path: Path) -> list[np.ndarray]:
    """Every ``Region``'s vertices as an (N, 2) float array of (X = column, Y = row), in file order."""
    return [xy for _, xy in parse_aperio_regions(path)]


def parse_aperio_regions(path: Path) -> list[tuple[str, np.ndarray]]:
    """(class, vertices) of every ``Region`` in file order: the class is the Name of the first
    ``Attribute`` of its ``Annotation`` (MoNuSAC: 'Epithelial', ...; '' where none), the vertices an
    (N, 2) float array of (X = column, Y = row). Streamed (iterparse, regions cleared as they end):
    MoNuSeg XML holds ~70k vertices per image."""
    regions: list[tuple[str | None, str, list]] = []
    root_tag = None
    annotation_class, in_region = "", False
    try:
        for event, element in ET.iterparse(path, events=("start", "end")):
            if event == "start":
                root_tag = root_tag or element.tag
                if element.tag == "Vertex" and regions:
                    regions[-1][2].append((element.get("X"), element.get("Y")))
                elif element.tag == "Region":
                    regions.append((element.get("Id"), annotation_class, []))
                    in_region = True
                elif element.tag == "Annotation":
                    annotation_class = ""
                elif element.tag == "Attribute" and not in_region and not annotation_class:
                    annotation_class = element.get("Name") or ""
            elif element.tag == "Region":
                in_region = False
                element.clear()
    except ET.ParseError as exc:
        message = f"{path}: malformed XML ({exc}); re-export it from ImageScope or remove it."
        raise DataError(message) from None
    if root_tag != "Annotations" and not regions:
        raise DataError(f"{path}: not an Aperio ImageScope annotation (no <Annotations>/<Region> "
                        "elements); MoNuSeg XML is expected next to the image.")
    polygons = []
    for region_id, region_class, vertices in regions:
        try:
            xy = np.array(vertices, dtype=np.float64).reshape(-1, 2)
        except (TypeError, ValueError):
            xy = np.array([np.nan])
        if not np.isfinite(xy).all():
            raise DataError(f"{path}: Region Id={region_id} has a Vertex without numeric X and Y; "
                            "fix or delete that region.")
        polygons.append((region_class, xy))
    return polygons


def _area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def rasterise(polygons: list[np.ndarray], shape: tuple[int, int], path: Path | str = "") -> np.ndarray:
    """``rasterise_regions``' instance map."""
    return rasterise_regions(polygons, shape, path)[0]


def rasterise_regions(polygons: list[np.ndarray], shape: tuple[int, int],
                      path: Path | str = "") -> tuple[np.ndarray, list[int]]:
    """Fill polygons into an (H, W) int32 instance map, ids 1.. in region order, and list for each id
    the index of the polygon it came from (skipped polygons get no id). Where polygons overlap the
    earlier region keeps the pixels (as the official MoNuSeg MATLAB code does). Pixels whose
    centre lies inside a polygon are filled; coordinates are used as given (0-based)."""
    labels = np.zeros(shape, np.int32)
    height, width = shape
    skipped = {"fewer than 3 vertices": 0, "zero area": 0, "outside the image": 0,
               "covered by earlier regions": 0}
    clipped = 0
    next_id = 1
    kept = []
    for index, xy in enumerate(polygons):
        if len(xy) < 3:
            skipped["fewer than 3 vertices"] += 1
            continue
        if _area(xy) == 0:  # collinear vertices
            skipped["zero area"] += 1
            continue
        cols, rows = xy[:, 0], xy[:, 1]
        rr, cc = polygon(rows, cols, shape)  # shape= clips to the image
        if not len(rr):  # no pixel centre inside: zero area at this resolution, or off the image
            skipped["outside the image" if _outside(rows, cols, shape) else "zero area"] += 1
            continue
        free = labels[rr, cc] == 0
        if not free.any():
            skipped["covered by earlier regions"] += 1
            continue
        labels[rr[free], cc[free]] = next_id
        kept.append(index)
        next_id += 1
        clipped += bool(cols.min() < -0.5 or rows.min() < -0.5 or cols.max() > width - 0.5
                        or rows.max() > height - 0.5)
    notes = [f"{n} region(s) skipped ({why})" for why, n in skipped.items() if n]
    if clipped:
        notes.append(f"{clipped} polygon(s) extending past the {width}×{height} image clipped to it")
    if notes:
        warn(f"{path}: " + "; ".join(notes) + ".")
    if next_id == 1:
        warn(f"{path}: no nuclei in this annotation; kept as a labelled image with zero nuclei.")
    return labels, kept


def _outside(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> bool:
    return bool(rows.max() < -0.5 or cols.max() < -0.5 or rows.min() > shape[0] - 0.5
                or cols.min() > shape[1] - 0.5)


@DATASETS.register_module(name="monuseg")
class MoNuSeg(FileDataset):
    """MoNuSeg 2018 layout: Tissue Images/*.tif + Annotations/*.xml (Aperio polygons), or an instance map
    in Label Maps/ or labels/ for an image without XML."""

    format = "monuseg"
    LICENSE = "CC BY-NC-SA 4.0"
    CITATION = ("N. Kumar et al., A Multi-Organ Nucleus Segmentation Challenge, IEEE TMI 39(5):1380-1391, "
                "2020; N. Kumar et al., IEEE TMI 36(7):1550-1560, 2017.")
    MAGNIFICATION = 40.0

    def list_entries(self) -> list[tuple[str, Path, Path | None]]:
        image_dir = find_child(self.root, *IMAGE_DIRS) or self.root
        xml_dir = find_child(self.root, *ANNOTATION_DIRS) or image_dir
        images = unique_stems(list_files(image_dir, IMAGE_SUFFIXES), image_dir)
        if not images:
            raise DataError(f"{image_dir}: no images found; a MoNuSeg folder holds 'Tissue Images/*.tif' "
                            "and 'Annotations/*.xml' (or both side by side).")
        annotations = unique_stems(list_files(xml_dir, (".xml",)), xml_dir)
        map_dirs = [d for d in (find_child(self.root, name) for name in LABEL_MAP_DIRS) if d is not None]
        for map_dir in dict.fromkeys(map_dirs):  # find_child is case-insensitive: 'Labels' may match twice
            for stem, path in unique_stems(list_files(map_dir, LABEL_SUFFIXES), map_dir).items():
                if stem in annotations:
                    raise DataError(f"{annotations[stem]} and {path}: two annotations of image '{stem}'; "
                                    "keep only one of them.")
                annotations[stem] = path
        return pair_by_stem(images, annotations, image_dir, self.root, "annotation (XML or label map)")

    def read_entry(self, entry: tuple[str, Path, Path | None]) -> Sample:
        name, image_path, annotation_path = entry
        image = read_image(image_path)
        labels = None
        if annotation_path is not None and annotation_path.suffix.lower() == ".xml":
            labels = rasterise(parse_aperio_xml(annotation_path), image.shape[:2], annotation_path)
        elif annotation_path is not None:
            labels = read_label_map(annotation_path)
            check_pair(image, labels, image_path, annotation_path)
        return Sample(name, image, labels, source=str(image_path),
                      annotation=str(annotation_path) if annotation_path else "")

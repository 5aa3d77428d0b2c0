"""Lizard reader (colon, 20x): ``Lizard_Images1/``, ``Lizard_Images2/`` (*.png) and
``Lizard_Labels/Labels/*.mat`` (``inst_map`` + per-nucleus ``id``/``class``); ``info.csv`` beside
the labels, where present, gives each image's source data set and split."""

from __future__ import annotations

import csv
from pathlib import Path

from sslbench.data.base import Sample
from sslbench.data.io import (
    IMAGE_SUFFIXES,
    FileDataset,
    list_files,
    pair_by_stem,
    read_mat_sample,
)
from sslbench.errors import DataError
from sslbench.registry import DATASETS


def image_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.lower().startswith("lizard_images"))


def label_folder(root: Path) -> Path | None:
    """Lizard_Labels/Labels/ (the official zip) or Lizard_Labels/ itself."""
    labels = [p for p in root.iterdir() if p.is_dir() and p.name.lower() == "lizard_labels"]
    if not labels:
        return None
    inner = [p for p in labels[0].iterdir() if p.is_dir() and p.name.lower() == "labels"]
    return inner[0] if inner else labels[0]


def _stems(files: list[Path]) -> dict[str, Path]:
    """file stem -> file over several folders; one stem twice is refused."""
    by_stem: dict[str, Path] = {}
    for file in files:
        if file.stem in by_stem:
            raise DataError(f"{by_stem[file.stem]} and {file}: two files named '{file.stem}'; keep only one.")
        by_stem[file.stem] = file
    return by_stem


@DATASETS.register_module(name="lizard")
class Lizard(FileDataset):
    """Lizard: Lizard_Images*/ *.png + Lizard_Labels/Labels/*.mat (inst_map, id, class)."""

    format = "lizard"
    LICENSE = "CC BY-NC-SA 4.0 (as stated on the Lizard release page; not verified here)"
    CITATION = ("S. Graham et al., Lizard: A Large-Scale Dataset for Colonic Nuclear Instance Segmentation "
                "and Classification, ICCV Workshops (CDPath), 2021.")
    MAGNIFICATION = 20.0
    CLASS_NAMES = ("neutrophil", "epithelial", "lymphocyte", "plasma", "eosinophil", "connective")

    def list_entries(self) -> list[tuple[str, Path, Path | None]]:
        folders, label_dir = image_folders(self.root), label_folder(self.root)
        if not folders or label_dir is None:
            raise DataError(f"{self.root}: a Lizard folder holds Lizard_Images1/, Lizard_Images2/ and "
                            "Lizard_Labels/Labels/*.mat; unzip all three archives there.")
        images = _stems([f for folder in folders for f in list_files(folder, IMAGE_SUFFIXES)])
        labels = _stems(list_files(label_dir, (".mat",)))
        self.info = self._read_info(label_dir)
        return pair_by_stem(images, labels, folders[0], label_dir, ".mat label")

    @staticmethod
    def _read_info(label_dir: Path) -> dict[str, dict[str, str]]:
        """image stem -> {"source", "split"} from info.csv (columns Filename, Source, Split)."""
        info_path = next((p for p in (label_dir / "info.csv", label_dir.parent / "info.csv") if p.is_file()), None)
        if info_path is None:
            return {}
        with info_path.open(newline="") as file:
            rows = list(csv.DictReader(file))
        if rows and "Filename" not in rows[0]:
            raise DataError(f"{info_path}: no 'Filename' column; restore Lizard's info.csv or remove it.")
        return {row["Filename"]: {key.lower(): row[key] for key in ("Source", "Split") if row.get(key)}
                for row in rows}

    def read_entry(self, entry: tuple[str, Path, Path | None]) -> Sample:
        name, image_path, mat_path = entry
        return read_mat_sample(name, image_path, mat_path, dict(self.info.get(name, {})))

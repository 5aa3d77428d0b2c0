"""Unlabelled reader: every H&E image under a folder, recursively, for pretraining only.
Aperio .svs slides contribute their level-0 image (up to ``io.MAX_PIXELS``; tile bigger ones)."""

from __future__ import annotations

from pathlib import Path

from sslbench.data.base import Sample
from sslbench.data.io import IMAGE_SUFFIXES, SLIDE_SUFFIXES, FileDataset, list_files, read_image, unique_stems
from sslbench.errors import DataError
from sslbench.registry import DATASETS

SUFFIXES = IMAGE_SUFFIXES + SLIDE_SUFFIXES


@DATASETS.register_module(name="unlabeled")
class Unlabeled(FileDataset):
    """Any folder of H&E images (searched recursively), no labels: pretraining only."""

    format = "unlabeled"

    def list_entries(self) -> list[tuple[str, Path]]:
        files = unique_stems(list_files(self.root, SUFFIXES, recursive=True), self.root)
        if not files:
            raise DataError(f"{self.root}: no images found (looked recursively for "
                            f"{', '.join(SUFFIXES)}); point at the folder that holds them.")
        return sorted(files.items())

    def read_entry(self, entry: tuple[str, Path]) -> Sample:
        name, path = entry
        return Sample(name, read_image(path), None, source=str(path))

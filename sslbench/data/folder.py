"""Folder reader: ``images/<stem>.(png|tif|jpg)`` + ``labels/<stem>.(png|tif|npy)`` instance maps,
the form CPM, Kumar, CoNSeP and PanNuke tiles are usually converted into."""

from __future__ import annotations

from pathlib import Path

from sslbench.data.base import Sample
from sslbench.data.io import (
    IMAGE_SUFFIXES,
    LABEL_SUFFIXES,
    FileDataset,
    pair_by_stem,
    check_pair,
    find_child,
    list_files,
    read_image,
    read_label_map,
    unique_stems,
    warn,
)
from sslbench.errors import DataError
from sslbench.registry import DATASETS


def _warn_unsupported(folder: Path, suffixes: tuple[str, ...], what: str) -> None:
    others = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
              and p.suffix.lower() not in suffixes]
    if others:
        warn(f"{folder}: {len(others)} file(s) of unsupported type skipped (e.g. {others[0].name}); "
             f"{what} must be {', '.join(suffixes)}.")


@DATASETS.register_module(name="folder")
class Folder(FileDataset):
    """images/<stem>.png|tif|jpg + labels/<stem>.png|tif|npy instance label maps."""

    format = "folder"

    def list_entries(self) -> list[tuple[str, Path, Path | None]]:
        image_dir, label_dir = find_child(self.root, "images"), find_child(self.root, "labels")
        if image_dir is None or label_dir is None:
            raise DataError(f"{self.root}: a folder dataset needs images/<stem>.png|tif|jpg and "
                            "labels/<stem>.png|tif|npy sub-folders.")
        _warn_unsupported(image_dir, IMAGE_SUFFIXES, "images")
        _warn_unsupported(label_dir, LABEL_SUFFIXES, "label maps")
        images = unique_stems(list_files(image_dir, IMAGE_SUFFIXES), image_dir)
        labels = unique_stems(list_files(label_dir, LABEL_SUFFIXES), label_dir)
        if not images:
            raise DataError(f"{image_dir}: no images (.png, .tif, .jpg); put the H&E tiles there.")
        return pair_by_stem(images, labels, image_dir, label_dir, "label map")

    def read_entry(self, entry: tuple[str, Path, Path | None]) -> Sample:
        name, image_path, label_path = entry
        image = read_image(image_path)
        labels = None
        if label_path is not None:
            labels = read_label_map(label_path)
            check_pair(image, labels, image_path, label_path)
        return Sample(name, image, labels, source=str(image_path), annotation=str(label_path or ""))

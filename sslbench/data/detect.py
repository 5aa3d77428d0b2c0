"""Which reader a data folder needs, and the dataset object for it."""

from __future__ import annotations

from pathlib import Path

from sslbench.data.io import (
    IMAGE_SUFFIXES,
    SLIDE_SUFFIXES,
    FileDataset,
    find_child,
    list_files,
    require_folder,
)
from sslbench.data.monuseg import ANNOTATION_DIRS, IMAGE_DIRS
from sslbench.errors import ConfigError, DataError
from sslbench.registry import DATASETS, build, closest_hint

FORMATS = ("monuseg", "folder", "unlabeled")


def detect_format(path: str | Path) -> str:
    """'folder' (images/ + labels/), 'monuseg' (Tissue Images/ or Annotations/ or *.xml beside the
    images), else 'unlabeled' if any image lies anywhere below ``path``."""
    root = require_folder(path)
    if find_child(root, "images") and find_child(root, "labels"):
        return "folder"
    if find_child(root, *IMAGE_DIRS) or find_child(root, *ANNOTATION_DIRS) or list_files(root, (".xml",)):
        return "monuseg"
    if list_files(root, IMAGE_SUFFIXES + SLIDE_SUFFIXES, recursive=True):
        return "unlabeled"
    empty = "is empty" if not any(root.iterdir()) else "holds no recognised data"
    raise DataError(f"{root}: {empty}; looked for images/ + labels/ (folder), 'Tissue Images/' + "
                    "'Annotations/' or *.xml beside the images (monuseg), or any "
                    f"{'/'.join(s.lstrip('.') for s in IMAGE_SUFFIXES + SLIDE_SUFFIXES)} file (unlabeled).")


def dataset_from_path(path: str | Path, format: str | None = None) -> FileDataset:
    """The registered reader for ``path`` (detected unless ``format`` is given); the layout is checked
    now, the pixels are read by ``.load()`` (or by iterating it)."""
    if format is not None and format not in FORMATS:
        raise ConfigError(f"unknown data format '{format}'.{closest_hint(format, FORMATS)} "
                          f"Choose one of: {', '.join(FORMATS)}.")
    return build(DATASETS, dict(type=format or detect_format(path), root=str(path)))

"""Which reader a data folder needs, and the dataset object for it."""

from __future__ import annotations

from pathlib import Path

from sslbench.data.consep import split_folders
from sslbench.data.io import (
    IMAGE_SUFFIXES,
    SLIDE_SUFFIXES,
    FileDataset,
    find_child,
    list_files,
    require_folder,
)
from sslbench.data.lizard import image_folders, label_folder
from sslbench.data.monuseg import ANNOTATION_DIRS, IMAGE_DIRS
from sslbench.data.nuinsseg import organ_folders
from sslbench.data.tnbc import zenodo_folders
from sslbench.errors import ConfigError, DataError
from sslbench.registry import DATASETS, closest_hint

FORMATS = ("monuseg", "folder", "unlabeled", "consep", "lizard", "pannuke", "monusac", "nuinsseg", "tnbc")


def _layouts(root: Path):
    """(format, test) in the order tried: the specific layouts before the generic ones they resemble
    (CoNSeP's Images/ + Labels/ is also a folder layout; MoNuSAC's XML in patient folders, MoNuSeg's)."""
    yield "consep", lambda: bool(split_folders(root))
    yield "lizard", lambda: bool(image_folders(root)) and label_folder(root) is not None
    yield "pannuke", lambda: any(p.name == "images.npy" for p in root.rglob("*.npy"))
    yield "nuinsseg", lambda: bool(organ_folders(root))
    yield "tnbc", lambda: bool(zenodo_folders(root))
    yield "folder", lambda: bool(find_child(root, "images") and find_child(root, "labels"))
    yield "monuseg", lambda: bool(find_child(root, *IMAGE_DIRS) or find_child(root, *ANNOTATION_DIRS)
                                  or list_files(root, (".xml",)))
    yield "monusac", lambda: bool(list_files(root, (".xml",), recursive=True))
    yield "unlabeled", lambda: bool(list_files(root, IMAGE_SUFFIXES + SLIDE_SUFFIXES, recursive=True))


def detect_format(path: str | Path) -> str:
    """The first layout of ``_layouts`` that ``path`` has: CoNSeP (Images/ + Labels/*.mat), Lizard,
    PanNuke (images.npy), NuInsSeg (tissue images/), TNBC (Slide_XX/ + GT_XX/), folder (images/ +
    labels/), MoNuSeg (Tissue Images/, Annotations/ or *.xml beside the images), MoNuSAC (*.xml in
    patient folders), else 'unlabeled' if any image lies anywhere below ``path``."""
    root = require_folder(path)
    for format, matches in _layouts(root):
        if matches():
            return format
    empty = "is empty" if not any(root.iterdir()) else "holds no recognised data"
    raise DataError(f"{root}: {empty}; looked for images/ + labels/ (folder), 'Tissue Images/' + "
                    "'Annotations/' or *.xml beside the images (monuseg), the CoNSeP, Lizard, PanNuke, "
                    "MoNuSAC, NuInsSeg and TNBC layouts, or any "
                    f"{'/'.join(s.lstrip('.') for s in IMAGE_SUFFIXES + SLIDE_SUFFIXES)} file (unlabeled).")


def dataset_from_path(path: str | Path, format: str | None = None, rescale: float = 1.0) -> FileDataset:
    """The registered reader for ``path`` (detected unless ``format`` is given), its images resized by
    ``rescale`` at load; the layout is checked now, the pixels are read by ``.load()`` (or by iterating it)."""
    if format is not None and format not in FORMATS:
        raise ConfigError(f"unknown data format '{format}'.{closest_hint(format, FORMATS)} "
                          f"Choose one of: {', '.join(FORMATS)}.")
    # the class itself, not registry.build: that reports a reader's DataError as an invalid config
    return DATASETS.get(format or detect_format(path))(root=str(path), rescale=rescale)

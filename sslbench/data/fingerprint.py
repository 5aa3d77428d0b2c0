"""A data folder's identity by its content, not by where it lies: bench rows and encoders made from a
folder are recognised after it moves (another machine, another mount)."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from sslbench.data.detect import dataset_from_path
from sslbench.data.io import file_sha256, require_folder


def dataset_fingerprint(path: str | Path, format: str | None = None) -> str:
    """16 hex digits naming the data set read from ``path`` (with ``format``, else the detected one);
    computed once per folder and process (DataError once the folder is gone)."""
    return _fingerprint(str(require_folder(path).resolve()), format)


@lru_cache(maxsize=None)
def _fingerprint(root: str, format: str | None) -> str:
    dataset = dataset_from_path(root, format)
    digest = hashlib.sha256(dataset.format.encode())
    for name, *parts in sorted(dataset.entries, key=lambda entry: entry[0]):  # (name, image, annotation …)
        digest.update(name.encode() + b"\0")
        for position, part in enumerate(parts):
            digest.update(_part_identity(part, root, annotation=position > 0))
    return digest.hexdigest()[:16]


def _part_identity(part, root: str, annotation: bool) -> bytes:
    """An annotation file by its bytes: it is small and it is what gets corrected in place (a moved
    vertex, a fixed label map keep the file's size). An image file by its name and size only: images
    are most of the bytes (an --unlabeled folder of slides can hold gigabytes, read at every bench
    start) and are replaced, not edited, which changes a compressed file's size."""
    if not isinstance(part, (str, Path)):  # no file (an image without annotation), or an index into one
        return repr(part).encode() + b"\0"
    path = Path(part)
    relative = Path(os.path.relpath(path, root)).as_posix().encode() + b"\0"
    if not annotation:
        return relative + str(path.stat().st_size).encode() + b"\0"
    return relative + _file_digest(str(path))


@lru_cache(maxsize=None)
def _file_digest(path: str) -> bytes:
    """Once per file: readers whose images share one annotation file (a stack) name it in every entry."""
    return bytes.fromhex(file_sha256(path))

"""Reading images and label maps from disk, with one-line errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from sslbench.errors import DataError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
LABEL_SUFFIXES = (".png", ".tif", ".tiff", ".npy")


def _read_array(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path.")
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        if path.suffix.lower() in (".tif", ".tiff"):
            return tifffile.imread(path)
        with Image.open(path) as img:
            if img.mode == "P":
                img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            return np.asarray(img)
    except (OSError, ValueError, UnidentifiedImageError, tifffile.TiffFileError) as exc:
        raise DataError(f"{path}: cannot be read ({exc}); the file is corrupt or truncated, "
                        "re-export or remove it.") from None


def to_rgb_uint8(array: np.ndarray, path: Path) -> np.ndarray:
    """Normalise grayscale / RGBA / 16-bit arrays to (H, W, 3) uint8; refuse anything else."""
    if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[-1] not in (3, 4):
        array = np.moveaxis(array, 0, -1)  # planar TIFF
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise DataError(f"{path}: image has shape {array.shape}; expected H×W, H×W×3 or H×W×4.")
    array = array[..., :3]
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype == np.uint16:
        return (array >> 8).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating) and array.size and 0 <= array.min() and array.max() <= 1:
        return (array * 255 + 0.5).astype(np.uint8)
    raise DataError(f"{path}: image dtype {array.dtype} is not supported; save it as 8-bit RGB.")


def read_image(path: str | Path) -> np.ndarray:
    path = Path(path)
    return to_rgb_uint8(_read_array(path), path)


def read_label_map(path: str | Path) -> np.ndarray:
    """An instance label map as (H, W) int32: 0 = background, any positive id = one nucleus."""
    path = Path(path)
    array = _read_array(path)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise DataError(f"{path}: a label map must be 2-D (H×W) instance ids, got shape {array.shape}.")
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        if not np.issubdtype(array.dtype, np.floating) or not np.all(np.mod(array, 1) == 0):
            raise DataError(f"{path}: label map has non-integer values ({array.dtype}); "
                            "store instance ids as integers.")
    if array.size and array.min() < 0:
        raise DataError(f"{path}: label map has negative ids; use 0 for background and positive ids.")
    if array.size and array.max() > np.iinfo(np.int32).max:
        raise DataError(f"{path}: label ids exceed int32; relabel them sequentially.")
    return array.astype(np.int32)

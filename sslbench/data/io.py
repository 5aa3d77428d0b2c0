"""Reading images and label maps from disk, with one-line errors that name the file and the fix.

Every image is normalised to (H, W, 3) uint8 RGB; every label map to (H, W) int32 instance ids.
Rules (nothing is guessed silently):
- grayscale is replicated to RGB (with a warning: H&E is normally colour);
- RGBA / LA: opaque alpha is dropped; transparent pixels are composited onto white (slide background);
- palette images are expanded to their colours; a palette *label map* keeps its indices as ids;
- 16-bit: values <= 255 are 8-bit data stored in 16 bits and kept; otherwise full range, x / 257;
- float images must lie in [0, 1]; any other dtype is refused.
TIFF goes through tifffile (level 0 / first page of pyramids such as Aperio .svs); when tifffile lacks
the codec (LZW, JPEG need the optional ``imagecodecs``), Pillow decodes the first page instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import scipy.io
import tifffile
from PIL import Image
from scipy import ndimage

from sslbench.data.base import Sample
from sslbench.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
SLIDE_SUFFIXES = (".svs",)  # whole-slide pyramids: level 0 is read, within MAX_PIXELS
LABEL_SUFFIXES = (".png", ".tif", ".tiff", ".npy")
TIFF_SUFFIXES = (".tif", ".tiff", ".svs")
MAX_PIXELS = 64_000_000  # ~8000 x 8000 RGB = 192 MB; bigger slides must be tiled first
_CONVERT_TO_RGB = {"CMYK", "YCbCr", "LAB", "HSV"}


class DataWarning(UserWarning):
    """Something in the data was fixed up or skipped; the message names the file and counts."""


def warn(message: str) -> None:
    warnings.warn(message, DataWarning, stacklevel=3)


def _check_size(path: Path, height: int, width: int) -> None:
    if height * width > MAX_PIXELS:
        raise DataError(f"{path}: {width}×{height} px is a whole slide, over the {MAX_PIXELS:,} px limit; "
                        "cut it into tiles (e.g. 1000×1000) first.")


def _read_tiff(path: Path) -> np.ndarray | None:
    """The first page (level 0) via tifffile; None when tifffile lacks the codec."""
    with tifffile.TiffFile(path) as tif:
        page = tif.series[0].levels[0] if tif.series else tif.pages[0]
        shape = page.shape
        rows, cols = (shape[1], shape[2]) if len(shape) == 3 and shape[0] in (3, 4) else shape[:2]
        _check_size(path, rows, cols)
        try:
            return page.asarray()
        except ValueError as exc:
            if "imagecodecs" in str(exc):
                return None
            raise


def _read_pillow(path: Path, keep_palette: bool) -> np.ndarray:
    with Image.open(path) as img:
        _check_size(path, img.height, img.width)
        if img.mode == "P" and not keep_palette:
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        elif img.mode in _CONVERT_TO_RGB:
            img = img.convert("RGB")
        return np.asarray(img)


def _read_array(path: Path, keep_palette: bool = False) -> np.ndarray:
    if not path.exists():
        raise DataError(f"{path}: no such file; check the path.")
    if not path.is_file():
        raise DataError(f"{path}: is not a file; pass an image or label file.")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty (0 bytes); re-export or remove it.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        array = _read_tiff(path) if suffix in TIFF_SUFFIXES else None
        array = array if array is not None else _read_pillow(path, keep_palette)
        return array.astype(array.dtype.newbyteorder("="), copy=False)  # big-endian 16-bit PNG/TIFF
    except DataError:
        raise
    except Exception as exc:  # decoders raise many types (OSError, zlib.error, struct.error, ...)
        reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        raise DataError(f"{path}: cannot be read ({reason}); the file is corrupt, truncated or not "
                        f"a {suffix or 'known'} image: re-export or remove it.") from None


def _uint16_to_uint8(array: np.ndarray) -> np.ndarray:
    if array.max(initial=0) <= 255:  # 8-bit values stored in a 16-bit container
        return array.astype(np.uint8)
    return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)


def to_rgb_uint8(array: np.ndarray, path: Path) -> np.ndarray:
    """Normalise grayscale / RGBA / 16-bit / float arrays to (H, W, 3) uint8; refuse anything else."""
    if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[-1] not in (3, 4):
        array = np.moveaxis(array, 0, -1)  # planar TIFF
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (2, 3, 4)):
        raise DataError(f"{path}: image has shape {array.shape}; expected H×W, H×W×3 or H×W×4 "
                        "(one 2-D image, not a stack).")
    if array.dtype == np.uint16:
        array = _uint16_to_uint8(array)
    elif np.issubdtype(array.dtype, np.floating):
        if not (array.size and np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
            raise DataError(f"{path}: float image outside [0, 1]; save it as 8-bit RGB.")
        array = (array * 255 + 0.5).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise DataError(f"{path}: image dtype {array.dtype} is not supported (is it a label map or "
                        "mask?); save H&E images as 8-bit or 16-bit RGB.")
    if array.ndim == 3 and array.shape[-1] in (2, 4):  # trailing alpha channel
        alpha = array[..., -1:]
        colour = array[..., :-1]
        if alpha.min() < 255:
            warn(f"{path}: {int((alpha < 255).sum())} transparent pixels composited onto white.")
            colour = (colour * (alpha / 255.0) + 255.0 * (1 - alpha / 255.0) + 0.5).astype(np.uint8)
        array = colour
    if array.ndim == 2 or array.shape[-1] == 1:
        warn(f"{path}: grayscale image replicated to RGB; H&E images are normally colour.")
        array = np.repeat(array.reshape(*array.shape[:2], 1), 3, axis=-1)
    return np.ascontiguousarray(array)


def read_image(path: str | Path) -> np.ndarray:
    path = Path(path)
    return to_rgb_uint8(_read_array(path), path)


def read_label_map(path: str | Path) -> np.ndarray:
    """An instance label map as (H, W) int32: 0 = background, any positive id = one nucleus."""
    path = Path(path)
    return label_map_from_array(_read_array(path, keep_palette=True), path)


def label_map_from_array(array: np.ndarray, path: Path) -> np.ndarray:
    """``read_label_map``'s checks on an array already read (from a .mat or .npy stack)."""
    labels = id_map_from_array(array, path)
    if len(np.unique(labels)) == 2:
        blobs = ndimage.label(labels > 0)[1]
        if blobs > 1:
            warn(f"{path}: one id covers {blobs} separate blobs: this looks like a binary mask, not "
                 "instance ids; give each nucleus its own id.")
    return labels


def id_map_from_array(array: np.ndarray, path: Path) -> np.ndarray:
    """A 2-D map of non-negative integer ids (instances or classes) as int32, or a one-line DataError."""
    if array.ndim == 3 and array.shape[-1] in (3, 4) and (array[..., 1:3] == array[..., :1]).all():
        array = array[..., 0]  # gray saved as RGB
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise DataError(f"{path}: a label map must be 2-D (H×W) instance ids, got shape {array.shape}; "
                        "save ids as a single-channel 16-bit PNG/TIFF or .npy.")
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or not np.all(np.mod(array, 1) == 0):
            raise DataError(f"{path}: label map has non-integer values ({array.dtype}); "
                            "store instance ids as integers.")
    if array.size and array.min() < 0:
        raise DataError(f"{path}: label map has negative ids; use 0 for background and positive ids.")
    if array.size and array.max() > np.iinfo(np.int32).max:
        raise DataError(f"{path}: label ids exceed int32; relabel them sequentially.")
    return array.astype(np.int32)


def read_mask(path: str | Path) -> np.ndarray:
    """A binary mask (any non-zero pixel is set) as (H, W) bool; gray saved as RGB(A) is accepted."""
    path = Path(path)
    array = _read_array(path)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        array = array[..., :3].max(axis=-1)
    if array.ndim != 2:
        raise DataError(f"{path}: a mask must be 2-D (H×W), got shape {array.shape}; save it as a "
                        "single-channel PNG.")
    return array > 0


def instances_from_mask(mask: np.ndarray) -> np.ndarray:
    """Instance ids from a binary mask: its 8-connected components. Touching nuclei that share a
    boundary in the mask become ONE instance: only as right as the annotators' gaps between nuclei."""
    return ndimage.label(mask, structure=np.ones((3, 3), bool))[0].astype(np.int32)


def read_mat(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The variables ``keys`` (those present) of a MATLAB file: v5/v7 through scipy, v7.3 (HDF5)
    through h5py when it is installed."""
    try:
        return scipy.io.loadmat(path, variable_names=keys)
    except NotImplementedError:  # scipy's answer to v7.3
        pass
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError... for a bad file
        reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        raise DataError(f"{path}: cannot be read as a MATLAB .mat file ({reason}); re-export or remove it.") from None
    try:
        import h5py
    except ImportError:
        raise DataError(f"{path}: a MATLAB v7.3 (HDF5) file, which needs h5py: pip install h5py, or re-save "
                        "it as v7 in MATLAB (save(file, '-struct', 's', '-v7')).") from None
    with h5py.File(path, "r") as file:
        return {key: np.asarray(file[key]).T for key in keys if key in file}  # HDF5 stores MATLAB's arrays transposed


def read_mat_labels(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(instance ids, class per pixel or None) of a HoVer-Net style .mat: ``inst_map`` with either a
    per-pixel ``type_map`` (CoNSeP) or per-instance ``id`` + ``class`` (Lizard); no class variable: None."""
    found = read_mat(path, ("inst_map", "type_map", "id", "class"))
    if "inst_map" not in found:
        raise DataError(f"{path}: no 'inst_map' variable; a CoNSeP/Lizard label file holds inst_map (instance "
                        "ids), optionally type_map or id + class: re-export it or remove it.")
    labels = label_map_from_array(found["inst_map"], path)
    if "type_map" in found:
        classes = id_map_from_array(found["type_map"], path)
        if classes.shape != labels.shape:
            raise DataError(f"{path}: type_map is {classes.shape} but inst_map is {labels.shape}; re-export it.")
        return labels, classes
    if "id" in found and "class" in found:
        return labels, class_map(labels, found["id"], found["class"], path)
    return labels, None


def read_mat_sample(name: str, image_path: Path, mat_path: Path | None, meta: dict[str, str]) -> Sample:
    """An image and its .mat labels (``read_mat_labels``; None: unlabelled) as one Sample."""
    image = read_image(image_path)
    labels = classes = None
    if mat_path is not None:
        labels, classes = read_mat_labels(mat_path)
        check_pair(image, labels, image_path, mat_path)
    return Sample(name, image, labels, source=str(image_path), annotation=str(mat_path or ""),
                  classes=classes, meta=meta)


def class_map(labels: np.ndarray, ids: np.ndarray, classes: np.ndarray, path: Path) -> np.ndarray:
    """(H, W) class per pixel from a class per instance id (Lizard's ``id``/``class``, MoNuSAC's regions)."""
    ids, classes = np.asarray(ids).ravel().astype(np.int64), np.asarray(classes).ravel().astype(np.int64)
    if ids.size != classes.size:
        raise DataError(f"{path}: {ids.size} instance ids but {classes.size} classes; each nucleus needs one class.")
    lookup = np.zeros(max(int(labels.max(initial=0)), int(ids.max(initial=0))) + 1, np.int32)
    lookup[ids] = classes
    return lookup[labels]


def check_pair(image: np.ndarray, labels: np.ndarray, image_path: Path, label_path: Path) -> None:
    """A label map must match its image's size; an all-zero one is kept (a tile with no nuclei is
    valid ground truth) with a warning, since it is more often an export mistake."""
    check_same_size(image, labels, image_path, label_path)
    if not labels.any():
        warn(f"{label_path}: label map has no nuclei (all 0); kept as a labelled image with zero nuclei.")


def check_same_size(image: np.ndarray, mask: np.ndarray, image_path: Path, mask_path: Path,
                    what: str = "label map") -> None:
    if mask.shape != image.shape[:2]:
        raise DataError(f"{mask_path}: {what} is {mask.shape[1]}×{mask.shape[0]} px but its image "
                        f"{image_path.name} is {image.shape[1]}×{image.shape[0]}; re-export the {what} "
                        "at the image's size.")


def write_label_map(path: str | Path, labels: np.ndarray) -> Path:
    """Save as 16-bit PNG (ids <= 65535) or 32-bit TIFF; returns the path written (suffix chosen here)."""
    path = Path(path)
    if labels.max(initial=0) <= np.iinfo(np.uint16).max:
        path = path.with_suffix(".png")
        Image.fromarray(labels.astype(np.uint16)).save(path)
    else:
        path = path.with_suffix(".tif")
        tifffile.imwrite(path, labels.astype(np.uint32), compression="zlib")
    return path


def count_nuclei(labels: np.ndarray | None) -> int | None:
    return None if labels is None else int(np.count_nonzero(np.unique(labels)))


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, as hex (read in chunks: archives can be gigabytes)."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def list_files(folder: Path, suffixes: tuple[str, ...], recursive: bool = False) -> list[Path]:
    """Files with one of ``suffixes`` (case-insensitive), hidden ones skipped, sorted."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in suffixes
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def unique_stems(files: list[Path], root: Path) -> dict[str, Path]:
    """name -> file, name = path relative to ``root`` without suffix; duplicates are refused."""
    by_name: dict[str, Path] = {}
    for file in files:
        name = file.relative_to(root).with_suffix("").as_posix()
        if name in by_name:
            raise DataError(f"{by_name[name]} and {file.name} have the same name '{name}'; "
                            "keep only one of them.")
        by_name[name] = file
    return by_name


def pair_by_stem(images: dict[str, Path], annotations: dict[str, Path], image_dir: Path, where: Path,
                 kind: str) -> list[tuple[str, Path, Path | None]]:
    """(name, image, annotation or None) per image; an annotation without its image is an error,
    an image without annotation is kept unlabelled (pretraining only) with one warning."""
    orphans = sorted(set(annotations) - set(images))
    if orphans:
        raise DataError(f"{annotations[orphans[0]]}: {kind} has no image named '{orphans[0]}' in {image_dir} "
                        f"({len(orphans)} such); name each {kind} after its image.")
    missing = sorted(set(images) - set(annotations))
    if missing:
        warn(f"{where}: {len(missing)} of {len(images)} images have no {kind} (e.g. {images[missing[0]].name}); "
             "they are used unlabelled, for pretraining only.")
    return [(name, images[name], annotations.get(name)) for name in sorted(images)]


def find_child(folder: Path, *names: str) -> Path | None:
    """The sub-folder of ``folder`` whose name matches one of ``names``, case-insensitively."""
    wanted = {n.lower() for n in names}
    matches = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.lower() in wanted)
    return matches[0] if matches else None


def require_folder(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such folder; check the path.")
    if not path.is_dir():
        raise DataError(f"{path}: is a file; pass the folder that holds the images.")
    return path


def rescale_sample(sample: Sample, factor: float) -> Sample:
    """``sample`` resized by ``factor``: the image bilinearly, the label, class and ignore maps by
    nearest neighbour (ids must not blend)."""
    if factor == 1:
        return sample
    height, width = sample.image.shape[:2]
    new_height, new_width = max(1, round(height * factor)), max(1, round(width * factor))
    image = np.asarray(Image.fromarray(sample.image).resize((new_width, new_height), Image.BILINEAR))
    rows = np.minimum(((np.arange(new_height) + 0.5) * height / new_height).astype(np.intp), height - 1)
    cols = np.minimum(((np.arange(new_width) + 0.5) * width / new_width).astype(np.intp), width - 1)

    def nearest(array: np.ndarray | None) -> np.ndarray | None:
        return None if array is None else array[np.ix_(rows, cols)]

    return dataclasses.replace(sample, image=image, labels=nearest(sample.labels),
                               classes=nearest(sample.classes), ignore=nearest(sample.ignore))


class FileDataset:
    """A dataset read from files: ``entries`` (tuples: the sample name, then the files it is read from,
    None where absent) are listed and the layout checked up front; ``load_entry`` reads one, rescaled by
    ``rescale`` (``data.rescale``: e.g. 2.0 brings 20x scans to a 40x model). Iterate for a progress
    bar, or ``load()`` the list. Subclasses implement ``list_entries`` and ``read_entry`` and state
    what they know of the data (shown by ``sslbench data inspect``)."""

    format = ""
    LICENSE = ""  # "" = unknown
    CITATION = ""
    MAGNIFICATION: float | None = None  # objective power of the scans (40.0 for 40x); None = unknown
    CLASS_NAMES: tuple[str, ...] = ()  # class k of Sample.classes is CLASS_NAMES[k - 1]

    def __init__(self, root: str | Path, rescale: float = 1.0):
        if isinstance(rescale, bool) or not isinstance(rescale, (int, float)) or not 0 < rescale < math.inf:
            raise ConfigError(f"data.rescale must be a number > 0 (2.0 doubles width and height), got {rescale!r}.")
        self.root = require_folder(root)
        self.rescale = float(rescale)
        self.entries = self.list_entries()

    def list_entries(self) -> list:
        raise NotImplementedError

    def read_entry(self, entry) -> Sample:
        raise NotImplementedError

    def load_entry(self, entry) -> Sample:
        return rescale_sample(self.read_entry(entry), self.rescale)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Sample]:
        return (self.load_entry(entry) for entry in self.entries)

    def load(self) -> list[Sample]:
        return list(self)

"""A region of one level of a pyramidal TIFF / Aperio .svs slide, read without decoding the rest of the
level: tifffile's ``selection`` goes through zarr and reads only the tiles the region touches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from sslbench.data.io import MAX_PIXELS, TIFF_SUFFIXES, to_rgb_uint8
from sslbench.errors import ConfigError, DataError


@dataclass(frozen=True)
class Region:
    """A window in pixels of one level: ``x``, ``y`` its top-left column and row."""

    x: int
    y: int
    width: int
    height: int

    @classmethod
    def parse(cls, text: str) -> Region:
        """'X,Y,W,H' (non-negative integers, W and H at least 1)."""
        try:
            x, y, width, height = (int(part) for part in text.split(","))
            valid = min(x, y) >= 0 and min(width, height) >= 1
        except ValueError:  # not four integers
            valid = False
        if not valid:
            raise ConfigError(f"--region {text}: give X,Y,W,H in pixels of the level (X, Y >= 0; W, H >= 1), "
                              "e.g. --region 0,0,2000,2000.")
        return cls(x, y, width, height)

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.width},{self.height}"


def _levels(path: Path) -> list[tuple[str, tuple[int, int]]]:
    """(axes, (rows, cols)) of every level of the slide's first image series, level 0 (full resolution) first."""
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise ConfigError(f"{path}: --level and --region read pyramidal TIFF or .svs slides; "
                          f"{path.suffix or 'this file'} is not one. Drop them for an ordinary image.")
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path.")
    try:
        with tifffile.TiffFile(path) as tif:
            return [(level.axes, (level.shape[level.axes.index("Y")], level.shape[level.axes.index("X")]))
                    for level in tif.series[0].levels]
    except (tifffile.TiffFileError, IndexError, ValueError, OSError) as exc:
        raise DataError(f"{path}: cannot be read as a TIFF image ({exc}); re-export or remove it.") from None


def read_region(path: Path, level: int, region: Region | None) -> np.ndarray:
    """The (H, W, 3) uint8 pixels of ``region`` of ``level`` (the whole level when None)."""
    levels = _levels(path)
    if not 0 <= level < len(levels):
        sizes = ", ".join(f"{cols}×{rows}" for _, (rows, cols) in levels)
        raise DataError(f"{path}: --level {level} does not exist; this slide has levels 0 to {len(levels) - 1} "
                        f"({sizes} px).")
    axes, (rows, cols) = levels[level]
    region = region or Region(0, 0, cols, rows)
    if region.x + region.width > cols or region.y + region.height > rows:
        raise DataError(f"{path}: --region {region} reaches outside level {level}, which is {cols}×{rows} px "
                        "(X + W and Y + H must stay within it).")
    if region.width * region.height > MAX_PIXELS:
        raise DataError(f"{path}: --region {region} is {region.width * region.height:,} px, over the "
                        f"{MAX_PIXELS:,} px limit; predict it as several smaller regions.")
    window = {"Y": slice(region.y, region.y + region.height), "X": slice(region.x, region.x + region.width)}
    try:
        array = tifffile.imread(path, level=level, selection=tuple(window.get(axis, slice(None)) for axis in axes))
    except Exception as exc:  # decoders raise many types (ValueError for a missing codec, zlib.error, ...)
        fix = "pip install imagecodecs" if "imagecodecs" in str(exc) else "the file is corrupt or truncated"
        reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        raise DataError(f"{path}: level {level} cannot be read ({reason}); {fix}.") from None
    return to_rgb_uint8(array, path)  # planar (S, Y, X) samples are moved last there

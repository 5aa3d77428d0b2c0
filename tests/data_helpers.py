"""Small on-disk datasets for the data tests, generated per test (no fixtures checked in)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from sslbench.data.synthetic import Synthetic

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def save_image(path: Path, array: np.ndarray, **kwargs) -> Path:
    """tifffile for .tif (Pillow when ``pillow=True``, e.g. for LZW), numpy for .npy, else Pillow."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".tif", ".tiff") and not kwargs.pop("pillow", False):
        if array.shape[-1] in (3, 4):
            kwargs.setdefault("photometric", "rgb")
        tifffile.imwrite(path, array, **kwargs)
    elif path.suffix == ".npy":
        np.save(path, array)
    else:
        Image.fromarray(array).save(path, **kwargs)
    return path


def synthetic_samples(n: int = 3, size: int = 48):
    return Synthetic(num_images=n, size=size, seed=3).load()


def square(col0: float, row0: float, col1: float, row1: float) -> list[tuple[float, float]]:
    """A rectangle as Aperio (X = column, Y = row) vertices."""
    return [(col0, row0), (col1, row0), (col1, row1), (col0, row1)]


def aperio_xml(polygons: list[list[tuple[float, float]]]) -> str:
    regions = "".join(
        f'<Region Id="{i}" Type="0"><Attributes/><Vertices>'
        + "".join(f'<Vertex X="{x}" Y="{y}"/>' for x, y in vertices)
        + "</Vertices></Region>"
        for i, vertices in enumerate(polygons, start=1))
    return (f'<Annotations MicronsPerPixel="0.25"><Annotation Id="1"><Regions>{regions}'
            "</Regions></Annotation></Annotations>")


def write_monuseg(root: Path, images: dict[str, np.ndarray], polygons: dict[str, list],
                  flat: bool = False) -> Path:
    """Official layout (Tissue Images/ + Annotations/), or both side by side when ``flat``."""
    image_dir = root if flat else root / "Tissue Images"
    xml_dir = root if flat else root / "Annotations"
    xml_dir.mkdir(parents=True, exist_ok=True)
    for name, image in images.items():
        save_image(image_dir / f"{name}.tif", image)
    for name, regions in polygons.items():
        (xml_dir / f"{name}.xml").write_text(aperio_xml(regions))
    return root


def write_folder_set(root: Path, samples, image_ext: str = ".png", label_ext: str = ".png") -> Path:
    for sample in samples:
        save_image(root / "images" / f"{sample.name}{image_ext}", sample.image)
        labels = sample.labels.astype(np.uint16) if label_ext != ".npy" else sample.labels
        save_image(root / "labels" / f"{sample.name}{label_ext}", labels)
    return root

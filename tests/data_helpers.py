"""Small on-disk datasets for the data tests, generated per test (no fixtures checked in)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from sslbench.data.synthetic import Synthetic

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def needs_shared(folder: str = ""):
    """Skip a test cleanly where ``../shared/data/<folder>`` is absent (a clone without the shared data)."""
    return pytest.mark.skipif(not (SHARED_DATA / folder).is_dir(), reason=f"../shared/data/{folder} absent")


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


def two_nuclei(height: int = 16, width: int = 16) -> np.ndarray:
    """A label map with nucleus 1 (4×4, top left) and nucleus 2 (3×5, bottom right)."""
    labels = np.zeros((height, width), np.int32)
    labels[2:6, 2:6] = 1
    labels[9:12, 8:13] = 2
    return labels


def write_consep(root: Path, image: np.ndarray, labels: np.ndarray, types: np.ndarray, split: str = "Train") -> Path:
    from scipy.io import savemat
    save_image(root / split / "Images" / "train_1.png", image)
    (root / split / "Labels").mkdir(parents=True)
    savemat(root / split / "Labels" / "train_1.mat", {"inst_map": labels.astype(np.float64),
                                                       "type_map": types.astype(np.float64)})
    return root


def write_lizard(root: Path, image: np.ndarray, labels: np.ndarray, classes_by_id: dict[int, int]) -> Path:
    from scipy.io import savemat
    save_image(root / "Lizard_Images1" / "consep_1.png", image)
    (root / "Lizard_Labels" / "Labels").mkdir(parents=True)
    ids = np.array(sorted(classes_by_id), np.int32).reshape(-1, 1)
    savemat(root / "Lizard_Labels" / "Labels" / "consep_1.mat",
            {"inst_map": labels, "id": ids, "class": np.array([classes_by_id[i] for i in ids.ravel()]).reshape(-1, 1)})
    (root / "Lizard_Labels" / "info.csv").write_text("Filename,Source,Split\nconsep_1,consep,2\n")
    return root


def write_pannuke(root: Path, images: np.ndarray, masks: np.ndarray, tissues: list[str], fold: int = 1) -> Path:
    """The official zip layout: Fold N/images/foldN/{images,types}.npy + Fold N/masks/foldN/masks.npy."""
    image_dir = root / f"Fold {fold}" / "images" / f"fold{fold}"
    mask_dir = root / f"Fold {fold}" / "masks" / f"fold{fold}"
    image_dir.mkdir(parents=True)
    mask_dir.mkdir(parents=True)
    np.save(image_dir / "images.npy", images)
    np.save(image_dir / "types.npy", np.array(tissues))
    np.save(mask_dir / "masks.npy", masks)
    return root


def monusac_xml(regions_by_class: dict[str, list[list[tuple[float, float]]]]) -> str:
    """MoNuSAC XML: one Annotation per class, its name in the first Attribute."""
    annotations = ""
    for annotation_id, (class_name, polygons) in enumerate(regions_by_class.items(), start=1):
        regions = "".join(
            f'<Region Id="{i}"><Attributes/><Vertices>'
            + "".join(f'<Vertex X="{x}" Y="{y}" Z="0"/>' for x, y in vertices)
            + "</Vertices></Region>"
            for i, vertices in enumerate(polygons, start=1))
        annotations += (f'<Annotation Id="{annotation_id}"><Attributes><Attribute Name="{class_name}" Id="0" '
                        f'Value=""/></Attributes><Regions><RegionAttributeHeaders/>{regions}</Regions></Annotation>')
    return f'<Annotations MicronsPerPixel="0.25">{annotations}</Annotations>'

"""The CoNSeP, Lizard, PanNuke, MoNuSAC, NuInsSeg and TNBC readers on small files written in each
release's exact format (real .mat, .npy, XML, PNG/TIFF), and on the shared TNBC copy where present."""

import numpy as np
import pytest
from data_helpers import (
    SHARED_DATA,
    monusac_xml,
    needs_shared,
    save_image,
    square,
    two_nuclei,
    write_consep,
    write_lizard,
    write_pannuke,
)
from scipy.io import savemat
from typer.testing import CliRunner

from sslbench.cli import app
from sslbench.data.detect import dataset_from_path, detect_format
from sslbench.data.io import DataWarning
from sslbench.errors import DataError

IMAGE = np.full((16, 16, 3), 200, np.uint8)


def test_consep_reads_instances_and_per_pixel_classes(tmp_path):
    labels = two_nuclei()
    types = np.where(labels == 1, 2, np.where(labels == 2, 4, 0))
    write_consep(tmp_path, IMAGE, labels, types)
    write_consep(tmp_path, IMAGE, labels, types, split="Test")
    assert detect_format(tmp_path) == "consep"
    test, train = dataset_from_path(tmp_path).load()
    assert (test.name, train.name) == ("Test/train_1", "Train/train_1")
    assert np.array_equal(train.labels, labels) and np.array_equal(train.classes, types)
    assert train.classes.dtype == np.int32 and train.annotation.endswith("train_1.mat")
    assert {s.meta["split"] for s in (train, test)} == {"Train", "Test"}


def test_lizard_maps_per_nucleus_classes_to_pixels_and_reads_info(tmp_path):
    labels = two_nuclei()
    write_lizard(tmp_path, IMAGE, labels, {1: 3, 2: 6})
    assert detect_format(tmp_path) == "lizard"
    (sample,) = dataset_from_path(tmp_path).load()
    assert np.array_equal(sample.labels, labels)
    assert set(np.unique(sample.classes[labels == 1])) == {3} and set(np.unique(sample.classes[labels == 2])) == {6}
    assert (sample.classes[labels == 0] == 0).all()
    assert sample.meta == {"source": "consep", "split": "2"}


def test_mat_errors_name_the_file_and_the_fix(tmp_path):
    write_consep(tmp_path, IMAGE, two_nuclei(), two_nuclei())
    mat = tmp_path / "Train" / "Labels" / "train_1.mat"
    savemat(mat, {"something_else": np.zeros((16, 16))})
    with pytest.raises(DataError, match=r"train_1.mat: no 'inst_map' variable; .* re-export"):
        dataset_from_path(tmp_path).load()
    mat.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DataError, match=r"train_1.mat: cannot be read as a MATLAB .mat file"):
        dataset_from_path(tmp_path).load()
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116) + bytes(8) + b"\x00\x02IM"
    mat.write_bytes(header.ljust(512, b"\0"))  # what MATLAB writes before the HDF5 body
    with pytest.raises(DataError, match=r"train_1.mat: a MATLAB v7.3 \(HDF5\) file, which needs h5py: pip install h5py"):
        dataset_from_path(tmp_path).load()


def pannuke_masks() -> np.ndarray:
    """Two tiles; tile 0 holds a neoplastic nucleus (id 7) and an inflammatory one with the SAME id 7."""
    masks = np.zeros((2, 16, 16, 6))
    masks[0, 2:6, 2:6, 0] = 7
    masks[0, 9:12, 8:13, 1] = 7
    masks[1, 1:4, 1:4, 4] = 3
    masks[..., 5] = (masks[..., :5].sum(-1) == 0)
    return masks


def test_pannuke_reads_memory_mapped_folds_with_classes_and_tissue(tmp_path):
    images = np.stack([IMAGE, IMAGE // 2]).astype(np.float64)  # the release stores 0..255 as float64
    write_pannuke(tmp_path, images, pannuke_masks(), ["Breast", "Colon"])
    assert detect_format(tmp_path) == "pannuke"
    dataset = dataset_from_path(tmp_path)
    assert isinstance(dataset.tiles["Fold 1/0000"][0], np.memmap)
    first, second = dataset.load()
    assert first.name == "Fold 1/0000" and first.image.dtype == np.uint8 and (second.image == 100).all()
    assert np.array_equal(first.labels, two_nuclei())  # equal ids in two channels stay two nuclei
    assert np.array_equal(first.classes, np.where(two_nuclei() == 1, 1, np.where(two_nuclei() == 2, 2, 0)))
    assert (first.meta["tissue"], second.meta["tissue"]) == ("Breast", "Colon")
    assert set(np.unique(second.classes)) == {0, 5}


def test_pannuke_mismatched_fold_files_are_refused(tmp_path):
    write_pannuke(tmp_path, np.zeros((3, 16, 16, 3), np.uint8), pannuke_masks(), ["a", "b", "c"])
    with pytest.raises(DataError, match=r"masks.npy: shape \(2, 16, 16, 6\) does not match images.npy"):
        dataset_from_path(tmp_path)
    (tmp_path / "Fold 1" / "masks" / "fold1" / "masks.npy").unlink()
    with pytest.raises(DataError, match=r"images.npy: no masks.npy beside it"):
        dataset_from_path(tmp_path)


def test_monusac_classes_per_annotation_and_ambiguous_regions_ignored(tmp_path):
    patient = tmp_path / "TCGA-55-1594"
    save_image(patient / "TCGA-55-1594-01Z-00-DX1_001.tif", IMAGE)
    (patient / "TCGA-55-1594-01Z-00-DX1_001.xml").write_text(monusac_xml({
        "Lymphocyte": [square(1.5, 1.5, 5.5, 5.5)],
        "Epithelial": [square(8.5, 8.5, 12.5, 11.5)],
        "Ambiguous": [square(0.5, 12.5, 4.5, 15.5)]}))
    assert detect_format(tmp_path) == "monusac"
    (sample,) = dataset_from_path(tmp_path).load()
    assert sample.name == "TCGA-55-1594/TCGA-55-1594-01Z-00-DX1_001" and sample.meta["patient"] == "TCGA-55-1594"
    assert sorted(np.unique(sample.labels)) == [0, 1, 2]  # the ambiguous region is no nucleus
    assert set(np.unique(sample.classes[sample.labels == 1])) == {2}  # lymphocyte
    assert set(np.unique(sample.classes[sample.labels == 2])) == {1}  # epithelial
    assert sample.ignore[13:16, 1:5].all() and sample.ignore.sum() == 12
    (patient / "TCGA-55-1594-01Z-00-DX1_001.xml").write_text(monusac_xml({"Fibroblast": [square(1, 1, 5, 5)]}))
    with pytest.raises(DataError, match=r"DX1_001.xml: unknown class 'Fibroblast'; MoNuSAC classes are"):
        dataset_from_path(tmp_path).load()


def write_nuinsseg_organ(organ_dir, ambiguous=None):
    save_image(organ_dir / "tissue images" / "human_liver_01.png", IMAGE)
    save_image(organ_dir / "label masks modify" / "human_liver_01.tif", two_nuclei().astype(np.uint16))
    if ambiguous is not None:
        save_image(organ_dir / "vague areas" / "mask binary" / "human_liver_01.png", ambiguous)


def test_nuinsseg_reads_ambiguous_areas_as_ignore_mask(tmp_path):
    ambiguous = np.zeros((16, 16), np.uint8)
    ambiguous[12:16, 0:4] = 255
    write_nuinsseg_organ(tmp_path / "human liver", ambiguous)
    assert detect_format(tmp_path) == "nuinsseg"
    (sample,) = dataset_from_path(tmp_path).load()
    assert sample.name == "human liver/human_liver_01" and sample.meta == {"tissue": "human liver"}
    assert np.array_equal(sample.labels, two_nuclei())
    assert sample.ignore.dtype == bool and sample.ignore.sum() == 16 and sample.ignore[12:, :4].all()
    save_image(tmp_path / "human liver" / "vague areas" / "mask binary" / "human_liver_01.png", ambiguous[:8])
    with pytest.raises(DataError, match=r"ambiguous-area mask is 16×8 px but its image human_liver_01.png is 16×16"):
        dataset_from_path(tmp_path).load()


def test_nuinsseg_without_ambiguous_masks_has_no_ignore(tmp_path):
    write_nuinsseg_organ(tmp_path)
    (sample,) = dataset_from_path(tmp_path, format="nuinsseg").load()
    assert sample.ignore is None and sample.meta == {"tissue": tmp_path.name}


def test_tnbc_zenodo_binary_masks_become_connected_components_with_a_warning(tmp_path):
    save_image(tmp_path / "Slide_03" / "03_1.png", IMAGE)
    mask = np.zeros((16, 16), np.uint8)
    mask[two_nuclei() > 0] = 255
    mask[6, 6] = 255  # touches nucleus 1 diagonally: 8-connected, same component
    save_image(tmp_path / "GT_03" / "03_1.png", mask)
    assert detect_format(tmp_path) == "tnbc"
    with pytest.warns(DataWarning, match="TNBC ground truth is binary; .* touching in the mask are merged"):
        dataset = dataset_from_path(tmp_path)
    (sample,) = dataset.load()
    assert sample.meta == {"patient": "03"} and sample.labels.max() == 2
    assert sample.labels[6, 6] == sample.labels[2, 2]


@needs_shared("tnbc")
def test_shared_tnbc_instance_maps_with_patient_ids():
    samples = dataset_from_path(SHARED_DATA / "tnbc", format="tnbc").load()
    assert len(samples) == 50 and {s.image.shape for s in samples} == {(512, 512, 3)}
    assert sum(int(s.labels.max()) for s in samples) == 4028  # the README's count (ids consecutive)
    assert len({s.meta["patient"] for s in samples}) == 11
    assert next(s for s in samples if s.name == "09_4").meta == {"patient": "09"}


def test_convert_writes_any_reader_as_a_folder_dataset(tmp_path):
    write_pannuke(tmp_path / "pannuke", np.stack([IMAGE, IMAGE]), pannuke_masks(), ["Breast", "Colon"])
    out = tmp_path / "converted"
    result = CliRunner().invoke(app, ["data", "convert", str(tmp_path / "pannuke"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    converted = dataset_from_path(out).load()
    assert [s.name for s in converted] == ["Fold_1_0000", "Fold_1_0001"]
    for original, copy in zip(dataset_from_path(tmp_path / "pannuke").load(), converted, strict=True):
        assert np.array_equal(copy.image, original.image) and np.array_equal(copy.labels, original.labels)

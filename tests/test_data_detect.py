import numpy as np
import pytest
from data_helpers import SHARED_DATA, needs_shared, save_image, square, synthetic_samples, write_folder_set, write_monuseg

from sslbench.data.detect import dataset_from_path, detect_format
from sslbench.data.io import DataWarning
from sslbench.errors import ConfigError, DataError
from sslbench.registry import DATASETS

IMAGE = np.full((10, 10, 3), 180, np.uint8)


def test_formats_are_registered():
    for name, cls in [("monuseg", "MoNuSeg"), ("folder", "Folder"), ("unlabeled", "Unlabeled")]:
        assert DATASETS.get(name).__name__ == cls


def test_detects_each_layout(tmp_path):
    write_monuseg(tmp_path / "official", {"a": IMAGE}, {"a": [square(1.5, 1.5, 4.5, 4.5)]})
    write_monuseg(tmp_path / "flat", {"a": IMAGE}, {"a": [square(1.5, 1.5, 4.5, 4.5)]}, flat=True)
    write_folder_set(tmp_path / "folder", synthetic_samples(1))
    save_image(tmp_path / "plain" / "x" / "y.jpg", IMAGE)
    expected = {"official": "monuseg", "flat": "monuseg", "folder": "folder", "plain": "unlabeled"}
    for name, fmt in expected.items():
        assert detect_format(tmp_path / name) == fmt
        dataset = dataset_from_path(tmp_path / name)
        assert dataset.format == fmt and len(dataset.load()) == 1


def test_format_can_be_forced(tmp_path):
    write_monuseg(tmp_path, {"a": IMAGE}, {"a": [square(1.5, 1.5, 4.5, 4.5)]})
    (sample,) = dataset_from_path(tmp_path, format="unlabeled").load()
    assert sample.labels is None
    with pytest.raises(ConfigError, match="unknown data format 'monuseq'. Did you mean 'monuseg'?"):
        dataset_from_path(tmp_path, format="monuseq")


def test_nothing_to_read(tmp_path):
    with pytest.raises(DataError, match="is empty; looked for images/ \\+ labels/ \\(folder\\)"):
        detect_format(tmp_path)
    (tmp_path / "README.md").write_text("hello")
    with pytest.raises(DataError, match="holds no recognised data"):
        dataset_from_path(tmp_path)
    with pytest.raises(DataError, match="no such folder"):
        detect_format(tmp_path / "missing")
    with pytest.raises(DataError, match="is a file"):
        detect_format(tmp_path / "README.md")


@needs_shared()
def test_shared_folders_are_detected():
    assert detect_format(SHARED_DATA / "monuseg2018_train") == "monuseg"
    assert detect_format(SHARED_DATA / "unlabeled_he") == "unlabeled"
    assert len(dataset_from_path(SHARED_DATA / "monuseg2018_train")) == 30

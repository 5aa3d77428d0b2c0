import numpy as np
import pytest
from data_helpers import save_image, synthetic_samples, write_folder_set

from sslbench.data.folder import Folder
from sslbench.data.io import DataWarning
from sslbench.errors import DataError


@pytest.mark.parametrize("image_ext,label_ext", [(".png", ".png"), (".tif", ".tif"), (".png", ".npy")])
def test_round_trip(tmp_path, image_ext, label_ext):
    samples = synthetic_samples()
    loaded = Folder(write_folder_set(tmp_path, samples, image_ext, label_ext)).load()
    assert [s.name for s in loaded] == [s.name for s in samples]
    for original, read in zip(samples, loaded):
        np.testing.assert_array_equal(read.image, original.image)
        np.testing.assert_array_equal(read.labels, original.labels)
        assert read.labels.dtype == np.int32


def test_jpeg_images_load(tmp_path):
    samples = synthetic_samples(1)
    (read,) = Folder(write_folder_set(tmp_path, samples, ".jpg")).load()
    assert read.image.shape == samples[0].image.shape
    assert np.abs(read.image.astype(int) - samples[0].image).mean() < 10  # lossy, but the same picture


def test_image_without_label_map_is_unlabelled_with_a_warning(tmp_path):
    root = write_folder_set(tmp_path, synthetic_samples(2))
    (root / "labels" / "synthetic_001.png").unlink()
    with pytest.warns(DataWarning, match="1 of 2 images have no label map"):
        loaded = Folder(root).load()
    assert loaded[0].labelled and not loaded[1].labelled


def test_empty_label_map_is_kept_with_zero_nuclei(tmp_path):
    (sample,) = synthetic_samples(1)
    sample.labels[:] = 0
    with pytest.warns(DataWarning, match="no nuclei"):
        (read,) = Folder(write_folder_set(tmp_path, [sample])).load()
    assert read.labelled and not read.labels.any()


def test_label_map_of_another_size_is_refused(tmp_path):
    root = write_folder_set(tmp_path, synthetic_samples(1))
    save_image(root / "labels" / "synthetic_000.png", np.zeros((10, 12), np.uint16))
    with pytest.raises(DataError, match=r"synthetic_000.png: label map is 12×10 px but its image "
                                        r"synthetic_000.png is 48×48"):
        Folder(root).load()


@pytest.mark.parametrize("labels,match", [(np.full((48, 48), -1), "negative"),
                                          (np.full((48, 48), 0.5), "non-integer")])
def test_invalid_label_values_are_refused(tmp_path, labels, match):
    root = write_folder_set(tmp_path, synthetic_samples(1), label_ext=".npy")
    save_image(root / "labels" / "synthetic_000.npy", labels)
    with pytest.raises(DataError, match=match):
        Folder(root).load()


def test_layout_errors(tmp_path):
    root = write_folder_set(tmp_path / "dup", synthetic_samples(1))
    save_image(root / "images" / "synthetic_000.tif", synthetic_samples(1)[0].image)
    with pytest.raises(DataError, match="same name 'synthetic_000'"):
        Folder(root)
    root = write_folder_set(tmp_path / "orphan", synthetic_samples(1))
    save_image(root / "labels" / "other.png", np.zeros((4, 4), np.uint16))
    with pytest.raises(DataError, match="other.png: label map has no image named 'other'"):
        Folder(root)
    (tmp_path / "nolabels" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match="needs images/.* and labels/"):
        Folder(tmp_path / "nolabels")
    (tmp_path / "nolabels" / "labels").mkdir()
    with pytest.raises(DataError, match="no images"):
        Folder(tmp_path / "nolabels")


def test_unsupported_label_files_are_named_in_a_warning(tmp_path):
    root = write_folder_set(tmp_path, synthetic_samples(1))
    (root / "labels" / "synthetic_000.png").rename(root / "labels" / "synthetic_000.mat")
    with pytest.warns(DataWarning) as caught:
        Folder(root)
    assert [str(w.message).split(": ", 1)[1] for w in caught] == [
        "1 file(s) of unsupported type skipped (e.g. synthetic_000.mat); label maps must be .png, .tif, "
        ".tiff, .npy.",
        "1 of 1 images have no label map (e.g. synthetic_000.png); they are used unlabelled, for "
        "pretraining only."]

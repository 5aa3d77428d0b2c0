import numpy as np
import pytest
from data_helpers import SHARED_DATA, needs_shared, save_image, synthetic_samples

from sslbench.data.io import read_image
from sslbench.data.unlabeled import Unlabeled
from sslbench.errors import DataError


def test_recursive_and_skips_hidden_and_non_images(tmp_path):
    image = synthetic_samples(1)[0].image
    save_image(tmp_path / "a.png", image)
    save_image(tmp_path / "slides" / "deep" / "b.TIF", image)
    save_image(tmp_path / ".cache" / "c.png", image)
    (tmp_path / "notes.txt").write_text("not an image")
    samples = Unlabeled(tmp_path).load()
    assert [s.name for s in samples] == ["a", "slides/deep/b"]
    assert all(s.labels is None for s in samples)
    np.testing.assert_array_equal(samples[1].image, image)


def test_empty_folder_and_duplicates_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="no images found"):
        Unlabeled(tmp_path)
    image = synthetic_samples(1)[0].image
    save_image(tmp_path / "a.png", image)
    save_image(tmp_path / "a.jpg", image)
    with pytest.raises(DataError, match="same name 'a'"):
        Unlabeled(tmp_path)


@needs_shared("unlabeled_he")
def test_real_unlabeled_folder_reads_svs_level_0():
    samples = {s.name: s for s in Unlabeled(SHARED_DATA / "unlabeled_he").load()}
    assert len(samples) == 6
    assert samples["stardist_histo"].image.shape == (300, 500, 3)
    slide = samples["cmu_small_region"].image
    assert slide.shape == (2967, 2220, 3)
    # the README's PNG crop of level 0 at row 512, column 1024 matches (JPEG decoders may differ by a bit)
    crop = read_image(SHARED_DATA / "unlabeled_he" / "cmu_small_region_L0_y0512_x1024.png")
    assert np.abs(slide[512:1024, 1024:1536].astype(int) - crop).mean() < 2

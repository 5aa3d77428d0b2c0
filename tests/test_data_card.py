"""Dataset cards in ``sslbench data inspect``, the resolution warning of ``--against``, and
``data.rescale``."""

import json

import numpy as np
import pytest
from data_helpers import (
    save_image,
    square,
    synthetic_samples,
    two_nuclei,
    write_folder_set,
    write_lizard,
    write_monuseg,
)
from typer.testing import CliRunner

from sslbench.cli import app
from sslbench.data.base import Sample
from sslbench.data.detect import dataset_from_path
from sslbench.data.io import rescale_sample
from sslbench.errors import ConfigError
from sslbench.pipeline.data import load_samples

IMAGE = np.full((16, 16, 3), 200, np.uint8)


def test_rescale_resizes_images_bilinearly_and_maps_by_nearest_neighbour():
    image = np.zeros((16, 16, 3), np.uint8)
    image[:, 8:] = 200
    ignore = np.zeros((16, 16), bool)
    ignore[0, 0] = True
    sample = Sample("a", image, two_nuclei(), classes=two_nuclei() * 3, ignore=ignore)
    big = rescale_sample(sample, 2.0)
    assert big.image.shape == (32, 32, 3) and big.labels.shape == big.classes.shape == big.ignore.shape == (32, 32)
    assert 0 < big.image[0, 15, 0] < 200 or 0 < big.image[0, 16, 0] < 200  # bilinear blends the edge
    assert set(np.unique(big.labels)) == {0, 1, 2} and (big.labels == 1).sum() == 4 * 16  # area x4
    assert np.array_equal(big.classes, big.labels * 3) and big.ignore.sum() == 4
    small = rescale_sample(sample, 0.5)
    assert small.image.shape == (8, 8, 3) and (small.labels == 1).sum() == 4
    assert rescale_sample(sample, 1) is sample


def test_rescale_is_a_reader_option_read_from_the_data_section(tmp_path):
    root = write_folder_set(tmp_path, synthetic_samples(1, size=32))
    (sample,) = load_samples({"type": "path", "path": str(root), "rescale": 0.5}, None)
    assert sample.image.shape == (16, 16, 3) and sample.labels.shape == (16, 16)
    with pytest.raises(ConfigError, match="data.rescale must be a number > 0"):
        dataset_from_path(root, rescale=0)


def test_inspect_prints_the_card(tmp_path):
    root = write_lizard(tmp_path, IMAGE, two_nuclei(), {1: 3, 2: 6})
    result = CliRunner().invoke(app, ["data", "inspect", str(root)])
    assert result.exit_code == 0, result.output
    for text in ("dataset card", "median nucleus area", "15.5 px", "20x", "CC BY-NC-SA 4.0", "Lizard: A",
                 "lymphocyte", "nuclei per image"):
        assert text in result.stdout, text
    card = json.loads(CliRunner().invoke(app, ["data", "inspect", str(root), "--json"]).stdout)["card"]
    assert card["sizes"] == {"16×16": 1} and card["nuclei"] == 2 and card["median_nucleus_area_px"] == 15.5


def test_against_warns_on_a_magnification_mismatch_with_the_area_squared(tmp_path):
    lizard = write_lizard(tmp_path / "lizard", IMAGE, two_nuclei(), {1: 3, 2: 6})  # 20x
    monuseg = write_monuseg(tmp_path / "monuseg", {"a": IMAGE}, {"a": [square(1.5, 1.5, 9.5, 9.5)]})  # 40x
    result = CliRunner().invoke(app, ["data", "inspect", str(lizard), "--against", str(monuseg), "--json"])
    assert result.exit_code == 0, result.output
    warning = json.loads(result.stdout)["resolution_warning"]
    assert "is at 20x" in warning and "at 40x" in warning
    assert "0.5x as wide and 0.25x the area" in warning and "--set data.rescale=2 " in warning
    assert "resolution mismatch" in result.stderr
    same = CliRunner().invoke(app, ["data", "inspect", str(monuseg), "--against", str(monuseg), "--json"])
    assert json.loads(same.stdout)["resolution_warning"] is None


def test_against_falls_back_to_nucleus_areas_when_magnification_is_unknown(tmp_path):
    small, large = np.zeros((32, 32), np.uint16), np.zeros((32, 32), np.uint16)
    small[2:6, 2:6] = 1  # 16 px
    large[2:18, 2:18] = 1  # 256 px: 16x the area, 4x the width
    save_image(tmp_path / "small" / "images" / "a.png", np.full((32, 32, 3), 200, np.uint8))
    save_image(tmp_path / "small" / "labels" / "a.png", small)
    save_image(tmp_path / "large" / "images" / "a.png", np.full((32, 32, 3), 200, np.uint8))
    save_image(tmp_path / "large" / "labels" / "a.png", large)
    result = CliRunner().invoke(app, ["data", "inspect", str(tmp_path / "small"), "--against",
                                      str(tmp_path / "large"), "--json"])
    warning = json.loads(result.stdout)["resolution_warning"]
    assert "median nucleus is 16 px" in warning and "256 px" in warning and "magnification unknown" in warning
    assert "--set data.rescale=4 " in warning

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_helpers import SHARED_DATA, needs_shared, square, synthetic_samples, write_folder_set, write_monuseg
from PIL import Image
from typer.testing import CliRunner

from sslbench.cli import app

IMAGE = np.full((12, 12, 3), 220, np.uint8)


def monuseg(tmp_path):
    return write_monuseg(tmp_path / "data", {"a": IMAGE, "b": IMAGE},
                         {"a": [square(1.5, 1.5, 5.5, 5.5), square(5.5, 1.5, 9.5, 5.5), [(0, 0), (1, 1)]]})


def test_inspect_json_counts_nuclei_and_keeps_warnings_off_stdout(tmp_path):
    result = CliRunner().invoke(app, ["data", "inspect", str(monuseg(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    card = report.pop("card")
    assert (card["images"], card["labelled"], card["nuclei"], card["nuclei_per_image"]) == (2, 1, 2, 2.0)
    assert card["median_nucleus_area_px"] == 16 and card["magnification"] == "40x"
    assert report == {
        "format": "monuseg", "total_nuclei": 2,
        "images": [{"name": "a", "height": 12, "width": 12, "nuclei": 2,
                    "annotation": str(tmp_path / "data" / "Annotations" / "a.xml")},
                   {"name": "b", "height": 12, "width": 12, "nuclei": None, "annotation": None}]}
    assert "a.xml: 1 region(s) skipped (fewer than 3 vertices)" in result.stderr
    assert "1 of 2 images have no annotation" in result.stderr


def test_inspect_table(tmp_path):
    root = write_folder_set(tmp_path, synthetic_samples(2))
    result = CliRunner().invoke(app, ["data", "inspect", str(root)])
    assert result.exit_code == 0, result.output
    assert "(folder)" in result.stdout and "2 images, 2 labelled" in result.stdout
    assert "synthetic_001" in result.stdout and "48 × 48" in result.stdout
    assert "label map in labels/" in result.stdout


@needs_shared("monuseg2018_train")
def test_reader_forces_a_reader_and_format_is_its_deprecated_name(tmp_path):
    root = write_folder_set(tmp_path, synthetic_samples(2))
    detected = json.loads(CliRunner().invoke(app, ["data", "inspect", str(root), "--json"]).stdout)
    forced = CliRunner().invoke(app, ["data", "inspect", str(root), "--json", "--reader", "unlabeled"])
    assert forced.exit_code == 0, forced.output
    assert (detected["format"], json.loads(forced.stdout)["format"]) == ("folder", "unlabeled")
    old_name = CliRunner().invoke(app, ["data", "inspect", str(root), "--json", "--format", "unlabeled"])
    assert old_name.exit_code == 0 and json.loads(old_name.stdout) == json.loads(forced.stdout)
    assert "--format is deprecated here, use --reader" in old_name.stderr
    assert "--format is deprecated" not in forced.stderr
    both = CliRunner().invoke(app, ["data", "render", str(root), "--out", str(tmp_path / "r"), "--reader", "folder",
                                    "--format", "folder"])
    assert both.exit_code != 0 and "pass --reader only" in str(both.exception)
    for command in ("inspect", "render", "convert"):
        shown = CliRunner().invoke(app, ["data", command, "--help"]).output
        assert "--reader" in shown and "--format" not in shown


@needs_shared("monuseg2018_train")
def test_inspect_reports_all_30_shared_training_images_annotated():
    result = CliRunner().invoke(app, ["data", "inspect", str(SHARED_DATA / "monuseg2018_train"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    kinds = [Path(row["annotation"]).parent.name for row in report["images"]]
    assert report["total_nuclei"] == 16959 and len(kinds) == 30
    assert kinds.count("Annotations") == 13 and kinds.count("Label Maps") == 17


def test_render_writes_16_bit_labels_and_outline_overlay(tmp_path):
    out = tmp_path / "render"
    result = CliRunner().invoke(app, ["data", "render", str(monuseg(tmp_path)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a_labels.png", "a_overlay.png"]
    labels = np.asarray(Image.open(out / "a_labels.png"))
    assert labels.dtype == np.uint16 and set(np.unique(labels)) == {0, 1, 2}
    overlay = np.asarray(Image.open(out / "a_overlay.png"))
    green = (overlay == [0, 255, 0]).all(axis=-1)
    assert green[2, 2:10].all() and green[2:6, 5].all() and green[2:6, 6].all()  # shared edge: both sides
    assert not green[3:5, 3].any() and (overlay[~green] == 220).all()


def test_bad_path_is_one_line_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-c", "from sslbench.cli import main; main()", "data", "inspect",
                             str(tmp_path / "nope")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'nope'}: no such folder; check the path."


@pytest.mark.filterwarnings("ignore::sslbench.data.io.DataWarning")  # the fixture's unlabelled image, bad region
def test_convert_rasterises_monuseg_into_a_folder_dataset_with_the_same_samples(tmp_path):
    from sslbench.data.detect import dataset_from_path
    source = monuseg(tmp_path)
    out = tmp_path / "converted"
    result = CliRunner().invoke(app, ["data", "convert", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 2 images (1 with label maps)" in result.stdout
    converted = dataset_from_path(out)
    assert converted.format == "folder"
    for original, copy in zip(dataset_from_path(source).load(), converted.load(), strict=True):
        assert copy.name == original.name and np.array_equal(copy.image, original.image)
        assert (copy.labels is None) == (original.labels is None)
        if original.labels is not None:
            assert np.array_equal(copy.labels, original.labels)
    again = CliRunner().invoke(app, ["data", "convert", str(source), "--out", str(out)])
    assert again.exit_code != 0 and "is not empty" in str(again.exception)

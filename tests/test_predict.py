"""``sslbench predict``: a run's model segments new images, a slide region or a labelled dataset, and
its label maps score exactly as the run scored the same images."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from typer.testing import CliRunner

from sslbench.cli import app
from sslbench.config import resolve_run_config
from sslbench.data.synthetic import Synthetic
from sslbench.engine.weights import write_safetensors
from sslbench.errors import SslbenchError
from sslbench.models import build_segmenter
from sslbench.pipeline.run_folder import RunFolder
from tiny import TINY_SETTINGS, tiny_args

EVALUATION = {"evaluation.tile": 64, "evaluation.overlap": 16}  # several tiles on 160² images


def predict(*args) -> dict:
    result = CliRunner().invoke(app, ["predict", *map(str, args), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refused(*args) -> str:
    """The one-line message a bad command line stops with."""
    result = CliRunner().invoke(app, ["predict", *map(str, args), "--device", "cpu"])
    assert isinstance(result.exception, SslbenchError), result.output
    message = str(result.exception)
    assert "\n" not in message
    return message


@pytest.fixture(scope="module")
def untrained_run(tmp_path_factory):
    """A run folder as sslbench run leaves it (config.json, model.safetensors), with untrained weights."""
    cfg = resolve_run_config("scratch", backbone="resnet18", overrides=[f"{k}={v}" for k, v in EVALUATION.items()])
    folder = RunFolder(tmp_path_factory.mktemp("untrained"))
    folder.write_config(cfg)
    torch.manual_seed(0)
    write_safetensors(folder.model, build_segmenter(cfg.backbone, cfg.head).state_dict())
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A folder of two 160² synthetic H&E images."""
    folder = tmp_path_factory.mktemp("images")
    for sample in Synthetic(num_images=2, size=160, seed=3).load():
        Image.fromarray(sample.image).save(folder / f"{sample.name}.png")
    return folder


def read_nuclei(path) -> list[dict]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_writes_a_label_map_overlay_and_nuclei_table_per_image(untrained_run, images, tmp_path):
    out = tmp_path / "out"
    result = predict(untrained_run.path, images, "--out", out)
    assert [row["name"] for row in result["images"]] == ["synthetic_000", "synthetic_001"]
    assert result["postprocess"] == {"values": {"min_area": 10}, "chosen_on": "config defaults"}
    assert result["scores"] is None  # no ground truth given
    for row in result["images"]:
        picture = np.asarray(Image.open(images / f"{row['name']}.png"))
        labels = np.asarray(Image.open(row["label_map"]))
        assert row["label_map"] == str(out / "labels" / f"{row['name']}.png")
        assert labels.dtype == np.uint16 and labels.shape == picture.shape[:2]
        overlay = np.asarray(Image.open(row["overlay"]))
        assert overlay.dtype == np.uint8 and overlay.shape == picture.shape
        assert not np.array_equal(overlay, picture) or labels.max() == 0  # outlines drawn
        nuclei = read_nuclei(row["nuclei_csv"])
        ids = np.unique(labels[labels > 0])
        assert len(nuclei) == len(ids) == row["nuclei"] == labels.max()
        assert [int(n["id"]) for n in nuclei] == ids.tolist()
        assert sum(int(n["area_px"]) for n in nuclei) == np.count_nonzero(labels)
        for nucleus in nuclei:
            assert 0.0 <= float(nucleus["mean_body_probability"]) <= 1.0
            assert 0 <= float(nucleus["centroid_row"]) < labels.shape[0]


def test_a_model_file_takes_its_config_from_beside_it_and_the_postprocessing_its_run_chose(untrained_run, images,
                                                                                          tmp_path):
    chosen = {"body_threshold": 0.9, "foreground_threshold": 0.99}
    untrained_run.metrics.write_text(json.dumps({"postprocess": {"chosen_on": "validation", "values": chosen}}))
    try:
        result = predict(untrained_run.model, images / "synthetic_000.png", "--out", tmp_path / "out")
    finally:
        untrained_run.metrics.unlink()
    assert result["postprocess"] == {"values": {"min_area": 10, **chosen}, "chosen_on": "validation images"}
    defaults = predict(untrained_run.model, images / "synthetic_000.png", "--out", tmp_path / "defaults")
    thresholded, argmax = (np.asarray(Image.open(r["images"][0]["label_map"])) for r in (result, defaults))
    assert not np.array_equal(thresholded > 0, argmax > 0)  # the chosen thresholds were applied


def test_a_slide_region_is_read_from_its_level_and_segmented_like_the_same_pixels_as_an_image(untrained_run,
                                                                                             tmp_path):
    mosaic = np.concatenate([s.image for s in Synthetic(num_images=2, size=160, seed=5).load()], axis=1)
    slide = tmp_path / "slide.tif"
    with tifffile.TiffWriter(slide) as tif:  # a 2-level pyramid, tiled like a .svs
        tif.write(mosaic, tile=(64, 64), subifds=1, photometric="rgb", compression="zlib")
        tif.write(mosaic[::2, ::2], tile=(64, 64), subfiletype=1, photometric="rgb", compression="zlib")
    crop = tmp_path / "crop.png"
    Image.fromarray(mosaic[20:140, 40:240]).save(crop)
    region = predict(untrained_run.path, slide, "--region", "40,20,200,120", "--out", tmp_path / "region")
    row = region["images"][0]
    assert row["name"] == "slide_level0_40_20_200_120" and (row["height"], row["width"]) == (120, 200)
    same = predict(untrained_run.path, crop, "--out", tmp_path / "crop")["images"][0]
    assert np.array_equal(np.asarray(Image.open(row["label_map"])), np.asarray(Image.open(same["label_map"])))
    level = predict(untrained_run.path, slide, "--level", "1", "--out", tmp_path / "level")["images"][0]
    assert (level["name"], level["height"], level["width"]) == ("slide_level1", 80, 160)

    assert "levels 0 to 1" in refused(untrained_run.path, slide, "--level", "2", "--out", tmp_path / "x")
    message = refused(untrained_run.path, slide, "--level", "1", "--region", "100,0,100,10", "--out", tmp_path / "x")
    assert "reaches outside level 1, which is 160×80 px" in message
    assert "X,Y,W,H" in refused(untrained_run.path, slide, "--region", "0,0,10", "--out", tmp_path / "x")
    assert "pyramidal TIFF or .svs" in refused(untrained_run.path, crop, "--level", "0", "--out", tmp_path / "x")


def test_bad_inputs_are_refused_in_one_line_before_any_work(untrained_run, images, tmp_path):
    out = tmp_path / "out"
    assert "no such file or folder" in refused(tmp_path / "nope", images, "--out", out)
    assert "no model.safetensors here" in refused(tmp_path, images, "--out", out)
    lone = tmp_path / "lone" / "model.safetensors"
    lone.parent.mkdir()
    lone.write_bytes(untrained_run.model.read_bytes())
    assert "no config beside it (model.json or config.json)" in refused(lone, images, "--out", out)
    assert "no such file or folder" in refused(untrained_run.path, tmp_path / "nope.png", "--out", out)
    labels = tmp_path / "labels"
    labels.mkdir()
    message = refused(untrained_run.path, images, "--labels", labels, "--out", out)
    assert "no label map for 2 of 2 images (e.g. 'synthetic_000')" in message
    (out / "old.png").parent.mkdir()
    (out / "old.png").write_bytes(b"")
    assert "is not empty" in refused(untrained_run.path, images, "--out", out)
    assert sorted(p.name for p in out.iterdir()) == ["old.png"]  # nothing written


@pytest.mark.slow  # a fresh interpreter imports torch: seconds on a busy machine
def test_a_bad_region_exits_2_with_one_line_on_stderr(untrained_run, images, tmp_path):
    result = subprocess.run([sys.executable, "-c", "from sslbench.cli import main; main()", "predict",
                             str(untrained_run.path), str(images / "synthetic_000.png"), "--region", "1,2",
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: --region 1,2: give X,Y,W,H in pixels of the level "
                                                  "(X, Y >= 0; W, H >= 1), e.g. --region 0,0,2000,2000."]


@pytest.mark.slow
def test_predicted_label_maps_score_as_the_run_scored_its_test_images(tmp_path):
    from data_helpers import write_folder_set

    run = tmp_path / "run"
    settings = {**EVALUATION, "finetune.steps": 12, "evaluation.tune.body_threshold": "[0.3,0.5]"}
    result = CliRunner().invoke(app, ["run", "--pretext", "scratch", "--out", str(run), *tiny_args(settings)])
    assert result.exit_code == 0, result.output
    scored = json.loads((run / "metrics.json").read_text())
    assert scored["postprocess"]["values"]  # chosen on validation, not the config's defaults
    run_aji = {p["name"]: p["aji"] for p in scored["test"]["per_image"]}
    data = Synthetic(num_images=TINY_SETTINGS["data.num_images"], size=TINY_SETTINGS["data.size"], seed=0).load()
    test_set = write_folder_set(tmp_path / "test", [s for s in data if s.name in run_aji])

    predicted = predict(run, test_set, "--out", tmp_path / "out")  # a labelled dataset: scored too
    assert predicted["postprocess"]["values"] == {"min_area": 10, **scored["postprocess"]["values"]}
    assert {r["name"]: r["scores"]["aji"] for r in predicted["images"]} == pytest.approx(run_aji, abs=1e-6)
    for row in predicted["images"]:
        assert len(read_nuclei(row["nuclei_csv"])) == row["nuclei"] > 0
    # tiles of 64 px from rows 0, 48 and 96: the first ends at row 64; nuclei across it keep one id
    labels = [np.asarray(Image.open(row["label_map"])) for row in predicted["images"]]
    assert any(set(np.unique(m[63])) & set(np.unique(m[64])) - {0} for m in labels)
    metrics = CliRunner().invoke(app, ["metrics", str(test_set / "labels"), str(tmp_path / "out" / "labels"),
                                       "--json"])
    assert metrics.exit_code == 0, metrics.output
    rescored = {p["name"]: p["aji"] for p in json.loads(metrics.stdout)["per_image"]}
    assert rescored == pytest.approx(run_aji, abs=1e-6)
    assert json.loads(metrics.stdout)["aji"] == pytest.approx(scored["test"]["per_image_mean"]["aji"], abs=1e-6)

    with_labels = predict(run, test_set / "images", "--labels", test_set / "labels", "--out", tmp_path / "again")
    assert with_labels["scores"]["per_image_mean"] == predicted["scores"]["per_image_mean"]

"""``sslbench run --validate-only``: a recipe is chosen on validation images without scoring a test image,
and the fixed choice scored once later with ``predict`` gives the scores a full run would have given."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from data_helpers import write_folder_set
from sslbench.cli import app
from sslbench.data.base import Sample
from sslbench.data.synthetic import Synthetic
from sslbench.errors import ConfigError
from tiny import tiny_args

SETTINGS = {"finetune.steps": 8, "finetune.eval_every": 4, "evaluation.tune.body_threshold": "[0.3,0.5]"}


@pytest.mark.slow
def test_validate_only_scores_no_test_image_and_predict_later_matches_a_full_run(tmp_path):
    test_set = [Sample(f"test_{s.name}", s.image, s.labels) for s in Synthetic(num_images=2, size=160, seed=9).load()]
    test_data = write_folder_set(tmp_path / "test", test_set)
    common = ["run", "--pretext", "scratch", "--test-data", str(test_data), *tiny_args(SETTINGS)]

    chosen = CliRunner().invoke(app, [*common, "--validate-only", "--out", str(tmp_path / "val")])
    assert chosen.exit_code == 0, chosen.output
    assert "No test image was scored" in chosen.output
    record = json.loads((tmp_path / "val" / "metrics.json").read_text())
    assert record["test"] is None and record["overlay"] is None
    assert not (tmp_path / "val" / "overlay.png").exists()
    assert [v["step"] for v in record["validation"]] == [4, 8]
    assert record["postprocess"]["chosen_on"] == "validation" and record["postprocess"]["val_names"]

    full = CliRunner().invoke(app, [*common, "--out", str(tmp_path / "full")])
    assert full.exit_code == 0, full.output
    scored = json.loads((tmp_path / "full" / "metrics.json").read_text())
    # the same seed trains the same model and chooses the same post-processing on the same val images
    assert record["validation"] == scored["validation"] and record["postprocess"] == scored["postprocess"]

    later = CliRunner().invoke(app, ["predict", str(tmp_path / "val"), str(test_data), "--out", str(tmp_path / "out"),
                                     "--device", "cpu", "--json"])
    assert later.exit_code == 0, later.output
    per_image = {r["name"]: r["scores"]["aji"] for r in json.loads(later.stdout)["images"]}
    assert per_image == pytest.approx({p["name"]: p["aji"] for p in scored["test"]["per_image"]}, abs=1e-6)


def test_bench_refuses_validate_only(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--suite", "table3", "--out", str(tmp_path / "bench"), "--dry-run",
                                      "--set", "validate_only=True"])
    assert isinstance(result.exception, ConfigError), result.output
    assert "sslbench run --validate-only" in str(result.exception) and "\n" not in str(result.exception)

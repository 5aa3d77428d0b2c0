"""End to end: the real pipeline at a tiny size (resnet18, a few steps), through the CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from sslbench.cli import app
from sslbench.engine.accel import cpu_has_native_bf16
from sslbench.eval.overlay import GT_COLOUR
from tiny import assert_scored, still_initial, tiny_args

TINY = tiny_args({"finetune.log_every": 1})
TINY_SCHEDULE = tiny_args({"finetune.log_every": 1, "data.num_images": None, "data.size": None})


def encoder_backbone(out):
    """The backbone a run folder's encoder was built as, from its sidecar."""
    return json.loads((out / "encoder.json").read_text())["backbone"]


@pytest.mark.slow
@pytest.mark.parametrize("pretext", ["instance_aware", "scratch"])
def test_run_writes_the_run_folder_and_prints_the_leaderboard_row(tmp_path, pretext):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--pretext", pretext, "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    assert f"sslbench run — {pretext}" in result.output
    assert ("70.63" if pretext == "instance_aware" else "65.29") in result.output  # the paper's AJI
    text = " ".join(result.output.split())
    assert "a reference, not a comparison" in text and "ours | paper" not in text  # synthetic data
    assert "Overlay of a test image:" in text and "overlay.png" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["strategy"] == pretext and metrics["device"] == "cpu"
    assert metrics["arithmetic"]["precision"] == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert f"device cpu ({metrics['arithmetic']['precision']}" in text and "docs/reliability.md#seeding" in text
    assert len(metrics["images"]["test"]) == 2 and len(metrics["test"]["per_image"]) == 2
    assert_scored(metrics["test"], metrics["images"]["test"])
    assert len(metrics["history"]["pretrain"]) == (1 if pretext == "instance_aware" else 0)
    initial = still_initial(out / "encoder.safetensors", encoder_backbone(out)).values()
    assert not any(initial) if pretext == "instance_aware" else all(initial)  # scratch saves its initialisation
    weights = load_file(out / "encoder.safetensors")
    assert "conv1.weight" in weights and not any(k.startswith("fc.") for k in weights)
    sidecar = json.loads((out / "encoder.json").read_text())
    assert sidecar["pretext"] == pretext
    assert "finetune" in (out / "log.txt").read_text()
    assert "pretrain" in (out / "config.py").read_text()
    assert metrics["overlay"] == "overlay.png"
    picture = np.asarray(Image.open(out / "overlay.png").convert("RGB")).astype(int)
    assert 400 <= min(picture.shape[:2]) and max(picture.shape[:2]) <= 1200
    assert (np.abs(picture - GT_COLOUR).sum(axis=-1) < 30).sum() > 500  # ground-truth contours drawn


@pytest.mark.slow
def test_a_convnext_backbone_runs_end_to_end_through_pretraining_and_finetuning(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--pretext", "instance_aware", "--out", str(out),
                                      *tiny_args({"finetune.log_every": 1}, backbone="convnext_atto")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["step"] for h in metrics["history"]["pretrain"]] == [2]
    assert not any(still_initial(out / "encoder.safetensors", encoder_backbone(out)).values())
    assert_scored(metrics["test"], metrics["images"]["test"])
    encoder, model = load_file(out / "encoder.safetensors"), load_file(out / "model.safetensors")
    assert "model.stem_0.weight" in encoder  # timm's ConvNeXt, not a ResNet
    assert set(encoder) == {k.removeprefix("encoder.") for k in model if k.startswith("encoder.")}


def test_finished_run_folder_is_never_overwritten(tmp_path):
    (tmp_path / "metrics.json").write_text("{}")
    result = CliRunner().invoke(app, ["run", "--out", str(tmp_path), *TINY])
    assert result.exit_code != 0 and "already holds a finished run" in str(result.exception)


@pytest.mark.parametrize(("args", "message"), [
    (["run", "--pretext", "instance_awar"], "Did you mean 'instance_aware'?"),
    (["run", "--backbone", "resnet100"], "unknown backbone 'resnet100'"),
    (["run", "--preset", "smok"], "'smok' is not one of 'cpu', 'mini', 'paper', 'smoke'"),
    (["run", "--seed", "-1"], "Invalid value for '--seed'"),
    (["bench", "--suite", "table9"], "'table9' is not one of"),
    (["bench", "--suite", "table3", "--seeds", "0"], "Invalid value for '--seeds'"),
    (["bench", "--suite", "table3", "--launcher", "slurm", "--slurm-time", "0"], "Invalid value for '--slurm-time'"),
    (["run", "--no-such-option"], "No such option: --no-such-option"),
    (["run", "--set", "split.label_fraction=1.5"], "split.label_fraction must be <= 1, got 1.5"),
    (["run", "--set", "pretext.margin_st=-1"], "margins must be >= 0"),
    (["run", "--preset", "mini"], "preset mini is sized for real images: pass --data"),
    (["run", "--preset", "cpu"], "preset cpu is sized for real images: pass --data"),
])
def test_bad_options_give_one_line_errors(args, message):
    result = subprocess.run([sys.executable, "-c", "from sslbench.cli import main; main()", *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_broken_plugin_file_is_one_line_error(tmp_path):
    plugin = tmp_path / "broken_task.py"
    plugin.write_text("raise RuntimeError('boom')\n")
    result = subprocess.run([sys.executable, "-c", "from sslbench.cli import main; main()", "list",
                             "--plugin", str(plugin)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "plugin" in result.stderr and "RuntimeError: boom" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_run_reads_a_folder_dataset_and_extra_unlabelled_images(tmp_path):
    from sslbench.data.io import write_label_map
    from sslbench.data.synthetic import Synthetic

    data, extra = tmp_path / "data", tmp_path / "extra"
    for folder in (data / "images", data / "labels", extra / "nested"):
        folder.mkdir(parents=True)
    for sample in Synthetic(num_images=6, size=160, seed=3).load():
        Image.fromarray(sample.image).save(data / "images" / f"{sample.name}.png")
        write_label_map(data / "labels" / f"{sample.name}.png", sample.labels)
    for sample in Synthetic(num_images=2, size=160, seed=4).load():
        Image.fromarray(sample.image).save(extra / "nested" / f"more_{sample.name}.png")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--data", str(data), "--unlabeled", str(extra), "--out", str(out),
                                      *TINY_SCHEDULE])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert str(data) in result.output
    # 6 labelled (2 held out for test) + 2 unlabelled images feed pretraining
    assert metrics["pretrain_images"] == 4 + 2 and len(metrics["images"]["test"]) == 2


@pytest.mark.slow
def test_run_scores_a_separate_test_set_and_refuses_one_that_overlaps_the_data(tmp_path):
    from data_helpers import write_folder_set

    from sslbench.data.base import Sample
    from sslbench.data.synthetic import Synthetic

    unseen = [Sample(f"unseen_{s.name}", s.image, s.labels) for s in Synthetic(num_images=2, size=160, seed=7).load()]
    test_data = write_folder_set(tmp_path / "test", unseen)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--test-data", str(test_data), "--out", str(out), *TINY],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"]["test"] == ["unseen_synthetic_000", "unseen_synthetic_001"]
    assert metrics["pretrain_images"] == 6  # all of --data: nothing of it is held out
    per_image = [p["aji"] for p in metrics["test"]["per_image"]]
    assert metrics["test"]["per_image_mean"]["aji"] == pytest.approx(sum(per_image) / 2)
    assert f"{100 * metrics['test']['per_image_mean']['aji']:.2f}" in result.output
    assert "mean of the per-image AJI over 2 the labelled images of" in " ".join(result.output.split())

    copied = write_folder_set(tmp_path / "copied", Synthetic(num_images=1, size=160, seed=0).load())
    refused = subprocess.run([sys.executable, "-c", "from sslbench.cli import main; main()", "run", "--test-data",
                              str(copied), "--out", str(tmp_path / "refused"), *TINY],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "shares 1 image(s) with the training data" in refused.stderr and "synthetic_000.png" in refused.stderr


def test_list_shows_every_kind_by_the_name_the_options_take():
    result = CliRunner().invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = {tuple(cell.strip() for cell in line.split("│")[1:3]) for line in result.output.splitlines()
            if line.startswith("│")}
    for expected in [("pretexts", "instance_aware"), ("pretexts", "jigsaw"), ("backbones", "resnet101"),
                     ("heads", "unet"), ("datasets", "monuseg"), ("presets", "smoke"), ("suites", "table4")]:
        assert expected in rows, expected


def test_bench_help_groups_the_slurm_options_in_their_own_panel():
    result = CliRunner().invoke(app, ["bench", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    panel = result.output[result.output.index("SLURM (--launcher slurm)"):]
    assert "--slurm-partition" in panel and "--slurm-time" in panel and "--slurm-arg" in panel

"""``sslbench bench`` end to end at a tiny size: SIGKILL and resume, skip, --test-data, leaderboard, figures,
--force."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import sslbench
from data_helpers import write_folder_set
from store_helpers import set_arithmetic
from sslbench.bench.store import Store
from sslbench.bench.tasks import git_commit
from sslbench.cli import app
from sslbench.data.base import Sample
from sslbench.data.synthetic import Synthetic
from sslbench.eval.metrics import aji
from tiny import assert_bench_row, tiny_args

TINY = tiny_args({"finetune.eval_every": 1})


def test_rows_name_the_commit_and_whether_the_code_differed_from_it():
    root = Path(sslbench.__file__).parents[1]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("sslbench is not run from a git checkout here")
    changed = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "sslbench", "registry"], cwd=root).returncode
    assert git_commit() == head.stdout.strip() + ("+modified" if changed else "")


def rows_in(out):
    return Store(out).rows() if (out / "results.sqlite").is_file() else []


@pytest.mark.slow
def test_bench_resumes_after_sigkill_then_skips_and_feeds_leaderboard_and_figures(tmp_path):
    test_set = [Sample(f"test_{s.name}", s.image, s.labels) for s in Synthetic(num_images=2, size=160, seed=9).load()]
    test_data = write_folder_set(tmp_path / "test", test_set)
    out = tmp_path / "bench"
    args = ["bench", "--suite", "table3", "--skip", "instance_aware_st", "--skip", "instance_aware_cr",
            "--out", str(out), "--test-data", str(test_data), *TINY]
    process = subprocess.Popen([sys.executable, "-c", "from sslbench.cli import main; main()", *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while not rows_in(out) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.poll() is None, process.stderr.read().decode()  # killed in the middle of the second job
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert [r["strategy"] for r in rows_in(out)] == ["scratch"]
    elsewhere = {**rows_in(out)[0]["arithmetic"], "precision": "fp32", "channels_last": False, "kernels": "AVX2",
                 "processor": "Other CPU"}
    set_arithmetic(out, elsewhere)  # as if scratch had run on another machine

    other_bench = out / "checkpoints" / "0123456789abcdef" / "finetune.safetensors"  # a job of another suite
    other_bench.parent.mkdir(parents=True, exist_ok=True)
    other_bench.write_bytes(b"in flight")
    resumed = CliRunner().invoke(app, args)
    assert resumed.exit_code == 0, resumed.output
    assert list((out / "checkpoints").iterdir()) == [other_bench.parent] and other_bench.is_file()
    assert "finished rows of this suite were computed otherwise (1 with fp32, AVX2 kernels" in " ".join(
        resumed.output.split())  # rich wraps the warning line
    assert "1 jobs run, 1 already done (skipped)" in resumed.output
    rows = Store(out).rows()
    assert [r["strategy"] for r in rows] == ["scratch", "instance_aware"]
    for row in rows:
        assert row["test_names"] == [s.name for s in test_set] and row["test_images"] == 2
        assert row["train_names"] and row["val_names"] and not set(row["train_names"]) & set(row["val_names"])
        assert row["context"]["test_data"] == str(test_data.resolve()) and row["device"] == "cpu"
        assert_bench_row(out, row)
        saved = np.load(out / row["prediction"])  # the first test image's instances, as they were scored
        truth = np.load(out / "samples" / str(saved["sample"]))["labels"]
        assert str(saved["name"]) == test_set[0].name and np.array_equal(truth, test_set[0].labels)
        assert row["scores"]["per_image"][0]["aji"] == aji(truth, saved["instances"])
        assert row["finetune_seconds"] > 0 and row["versions"]["torch"] and len(row["key"]) == 16
        assert row["pretrain_seconds"] > 0  # instance_aware's too, if its encoder was made before the kill
        # the validation curve that chose the checkpoint: every step, scored on the val images
        assert [v["step"] for v in row["scores"]["validation"]] == [1, 2]
        assert all(0 <= v["aji"] <= 1 for v in row["scores"]["validation"])

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "0 jobs run, 2 already done (skipped)" in again.output
    assert len(Store(out).rows()) == 2

    board = CliRunner().invoke(app, ["leaderboard", "--suite", "table3", "--out", str(out), "--format", "md"])
    assert board.exit_code == 0, board.output
    assert "| 65.29" in board.output and "| 70.63 (+5.34)" in board.output
    assert "2 labelled images of" in board.output and "Aggregation: per_image_mean" in board.output
    caption = (out / "leaderboard-table3.md").read_text()  # the data by name and content, not this machine's path
    content = rows[0]["context"]["data_content"]["test_data"]
    assert f"labelled images of {test_data.name} (content {content})" in caption and str(test_data) not in caption
    assert "MIXED ARITHMETIC: " in board.output and "Other CPU (1 row)" in board.output
    assert (out / "leaderboard-table3.md").read_text().count("\n| ") == 4 + 1  # header + 4 strategies
    pairs = CliRunner().invoke(app, ["leaderboard", "--suite", "table3", "--out", str(out), "--format", "md",
                                     "--pairs"])
    assert pairs.exit_code == 0, pairs.output
    assert "against Train-from-scratch, over seeds and over test images" in pairs.output
    assert "/2 pairs better, " in pairs.output
    assert (out / "leaderboard-table3-pairs.md").is_file()
    runs = CliRunner().invoke(app, ["leaderboard", "--suite", "table3", "--out", str(out), "--format", "md", "--runs"])
    assert runs.exit_code == 0, runs.output
    job_lines = (out / "leaderboard-table3-runs.md").read_text().splitlines()[4:6]
    assert [line.split(" | ")[0] for line in job_lines] == ["| Train-from-scratch", "| SSL (Ours): L_ST + L_CR"]
    assert all(f"{100 * row['aji']:.2f}" in line for row, line in zip(rows, job_lines))
    for row, line in zip(rows, job_lines):  # the step whose weights were kept: the first best on val
        curve = row["scores"]["validation"]
        best = next(v for v in curve if v["aji"] == max(w["aji"] for w in curve))
        assert f"| {best['step']} of 2 ({100 * best['aji']:.1f}) |" in line, line

    figures = CliRunner().invoke(app, ["figures", "--out", str(out)])
    assert figures.exit_code == 0, figures.output
    assert "aji_vs_fraction: skipped — fewer than two label fractions" in figures.output
    for name in ("overlay", "density"):
        png = out / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

    sidecars = {row["strategy"]: (out / row["encoder"]).with_suffix(".json") for row in rows}
    made = {strategy: sidecar.stat().st_mtime_ns for strategy, sidecar in sidecars.items()}
    forced = CliRunner().invoke(app, [*args, "--force", "--skip", "scratch"])
    assert forced.exit_code == 0 and "1 jobs run, 0 already done (skipped)" in forced.output, forced.output
    assert sidecars["scratch"].stat().st_mtime_ns == made["scratch"] and other_bench.is_file()  # not its jobs
    assert sidecars["instance_aware"].stat().st_mtime_ns > made["instance_aware"]  # pretrained again
    redone = {row["strategy"]: row for row in Store(out).rows()}
    assert redone["scratch"]["finished_at"] == rows[0]["finished_at"] and len(redone) == 2
    assert redone["instance_aware"]["finished_at"] > rows[1]["finished_at"]
    assert redone["instance_aware"]["pretrain_seconds"] > 0  # the row carries its new pretraining's time


def test_imagenet_in_the_grid_without_weights_is_a_one_line_error_before_any_work(tmp_path):
    result = subprocess.run([sys.executable, "-c", "from sslbench.cli import main; main()", "bench",
                             "--suite", "table1", "--out", str(tmp_path), *TINY],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: suite table1 includes imagenet, which needs --set pretext.weights=PATH (a local ResNet file); "
        "or pass --skip imagenet."]
    assert not (tmp_path / "results.sqlite").exists() or not Store(tmp_path).rows()

"""The frozen-encoder protocol as a suite axis (issue 43 item 4) and the cost each job records: a bench
of the encoders suite runs each job finetuned and frozen from one encoder, the leaderboard shows both
columns, the protocol in its caption, and seconds per step and peak memory."""

import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from sslbench.bench.leaderboard import select_rows, suite_leaderboard, to_markdown
from sslbench.bench.plan import BenchOptions, suite_jobs
from sslbench.bench.store import Store
from sslbench.bench.suites import load_suite
from sslbench.cli import app
from sslbench.engine.resources import phase_resources
from sslbench.errors import ConfigError
from store_helpers import CONTEXT, record
from tiny import tiny_args


def test_encoders_suite_runs_each_job_under_both_protocols_from_one_encoder():
    suite = load_suite("encoders", skip=["mae", "weights"])  # a ResNet bench: MAE needs a ViT
    assert suite.columns == ["100 % finetune", "100 % frozen"]
    jobs = suite_jobs(BenchOptions(suite, out=None, backbone="resnet18", seeds=2))
    assert len(jobs) == 3 * 2 * 2  # strategies × protocols × seeds
    by_job = {(job.strategy, job.protocol, job.seed): (cfg, key, pretrain_key) for job, cfg, key, pretrain_key in jobs}
    finetuned, frozen = by_job[("dino", "finetune", 1)], by_job[("dino", "frozen", 1)]
    assert finetuned[0].finetune["freeze_encoder"] is False and frozen[0].finetune["freeze_encoder"] is True
    assert finetuned[1] != frozen[1]  # two rows in the store
    assert finetuned[2] == frozen[2]  # one pretraining serves both
    assert len({key for _, key, _ in by_job.values()}) == len(jobs)


def test_a_protocol_suite_refuses_a_freeze_override_and_the_weights_strategy_keeps_its_old_name(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--suite", "encoders", "--skip", "mae", "--skip", "weights",
                                      "--out", str(tmp_path),
                                      "--set", "finetune.freeze_encoder=True", *tiny_args()])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith("--set finetune.freeze_encoder: suite encoders runs each job under "
                                            "each of its protocols (finetune, frozen)")
    listed = CliRunner().invoke(app, ["list", "pretexts"])
    assert "weights" in listed.output and "imagenet" in listed.output


PEAKS = """
import torch
from sslbench.engine.resources import peak_memory_bytes, reset_peak_memory
cpu = torch.device("cpu")
block = torch.ones(256 * 2 ** 20, dtype=torch.uint8)  # 256 MiB touched, then given back
del block
high = peak_memory_bytes(cpu)
reset_peak_memory(cpu)
low = peak_memory_bytes(cpu)
block = torch.ones(64 * 2 ** 20, dtype=torch.uint8)
print(high, low, peak_memory_bytes(cpu))
"""


def test_a_phase_peak_starts_from_the_memory_in_use_and_step_time_is_a_median():
    # a fresh process: one that ran other tests may hold freed memory that a new tensor reuses
    high, low, grown = map(int, subprocess.run([sys.executable, "-c", PEAKS], capture_output=True, text=True,
                                               check=True).stdout.split())
    assert low <= high - 200 * 2 ** 20  # the 256 MiB peak is forgotten
    assert grown >= low + 60 * 2 ** 20  # and the next 64 MiB is seen
    cpu = torch.device("cpu")
    assert phase_resources([0.5, 9.0, 0.7], cpu)["step_seconds"] == 0.7  # one slowed reading is shed
    assert phase_resources([], cpu)["step_seconds"] is None


@pytest.mark.slow
def test_encoders_bench_rows_show_both_protocols_their_cost_and_caption(tmp_path):
    out = tmp_path / "bench"
    args = ["bench", "--suite", "encoders", "--skip", "instance_aware", "--skip", "dino", "--skip", "mae",
            "--skip", "weights", "--out", str(out), *tiny_args({"finetune.steps": 4, "finetune.log_every": 2})]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = Store(out).rows()
    assert sorted(r["config"]["finetune"]["freeze_encoder"] for r in rows) == [False, True]
    for row in rows:
        finetune = row["resources"]["finetune"]
        assert 0 < finetune["step_seconds"] < row["finetune_seconds"]
        assert finetune["peak_memory_bytes"] > 2 ** 20
    suite, selected, _ = select_rows(load_suite("encoders", skip=["mae", "weights"]), rows)
    assert len(selected) == 2
    # a suite without the axis, in the same store, reads the finetuned row only: the frozen one is not its job
    _, table3_rows, _ = select_rows(load_suite("table3"), rows)
    assert [r["config"]["finetune"]["freeze_encoder"] for r in table3_rows] == [False]
    assert "protocol: finetune (encoder and decoder trained)" in suite_leaderboard(out, load_suite("table3")).caption
    board = suite_leaderboard(out, load_suite("encoders"))
    text = to_markdown(board)
    assert "| 100 % finetune | 100 % frozen |" in text
    assert "protocols: finetune (encoder and decoder trained), frozen (decoder only" in text
    cost = text.split("Seconds per step (median) · peak memory")[1]
    assert cost.count(" s · ") == 2 and "GiB" in cost


def test_a_suite_without_the_axis_shows_frozen_rows_when_its_own_setup_froze_them():
    frozen_setup = dict(CONTEXT, overrides=["finetune.freeze_encoder=True"])
    rows = [dict(record(strategy, aji, context=frozen_setup), config={"finetune": {"freeze_encoder": True}})
            for strategy, aji in (("scratch", 0.4), ("instance_aware", 0.5))]
    _, selected, _ = select_rows(load_suite("table3"), rows)
    assert sorted(r["strategy"] for r in selected) == ["instance_aware", "scratch"]

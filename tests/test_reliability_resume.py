"""Kill-and-resume: checkpoints restore model, optimizer, scheduler, step and every RNG stream, so a
resumed run continues exactly like an uninterrupted one."""

import json
import math
import signal
import subprocess
import sys
import time

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from sslbench.cli import app
from sslbench.engine.checkpoint import Checkpoint
from sslbench.engine.loop import LoopSettings, train
from sslbench.errors import ConfigError
from tiny_training import FAST, Interrupted, tiny_training

# A real instance-aware pretraining + finetuning, as small as it gets: 96² images, 64² crops.
CLI = [sys.executable, "-c", "from sslbench.cli import main; main()", "run"]


def test_resumed_training_matches_an_uninterrupted_run_exactly(tmp_path):
    expected, expected_state, _ = tiny_training(tmp_path / "a.safetensors")
    with pytest.raises(Interrupted):
        tiny_training(tmp_path / "b.safetensors", stop_at_call=8)  # dies in step 8; step 6 was saved
    # a new process would start from other random states: the checkpoint must override them all
    history, state, checkpoint = tiny_training(tmp_path / "b.safetensors", seed=99)
    assert checkpoint.resumed_step == 6
    assert history == expected
    for key, value in expected_state.items():
        assert torch.equal(state[key], value), key


def test_checkpoint_from_another_config_is_refused(tmp_path):
    tiny_training(tmp_path / "c.safetensors")
    module = nn.Linear(4, 1)
    checkpoint = Checkpoint(tmp_path / "c.safetensors", every=3, fingerprint={"lr": 0.1},
                            generator=torch.Generator())
    with pytest.raises(ConfigError, match=r"different config \(lr: 0.05 -> 0.1\)"):
        train(module, lambda: {"loss": module(torch.ones(1, 4)).sum()}, LoopSettings(steps=10, lr=0.1),
              torch.device("cpu"), "tiny", checkpoint=checkpoint)


def _start(out, log):
    return subprocess.Popen([*CLI, "--out", str(out), *FAST], stdout=log, stderr=subprocess.STDOUT)


def _kill_when(process, path, timeout=600):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL


@pytest.mark.slow
def test_run_killed_twice_resumes_and_matches_an_uninterrupted_run(tmp_path):
    out, console = tmp_path / "run", tmp_path / "console.txt"
    with console.open("wb") as log:
        _kill_when(_start(out, log), out / "checkpoints" / "pretrain.safetensors")
        _kill_when(_start(out, log), out / "checkpoints" / "finetune.safetensors")  # resumes pretraining first
        assert _start(out, log).wait(timeout=900) == 0
    printed = console.read_text()
    assert "Resuming the unfinished run" in printed and "pretraining from step" in printed, printed
    assert "finetuning from step" in printed, printed
    logged = (out / "log.txt").read_text()
    assert "pretrain instance_aware: resuming from step" in logged
    assert "pretraining already finished" in logged and "finetune instance_aware: resuming from step" in logged
    assert not (out / "checkpoints").exists()

    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["step"] for h in metrics["history"]["pretrain"]] == [1, 2, 3, 4]
    assert [h["step"] for h in metrics["history"]["finetune"]] == [1, 2, 3, 4]
    assert len(metrics["test"]["per_image"]) == 2
    assert all(math.isfinite(v) for v in metrics["test"]["per_image_mean"].values())

    reference = tmp_path / "reference"
    result = CliRunner().invoke(app, ["run", "--out", str(reference), *FAST])
    assert result.exit_code == 0, result.output
    uninterrupted = json.loads((reference / "metrics.json").read_text())
    assert metrics["history"] == uninterrupted["history"]
    assert metrics["test"] == uninterrupted["test"]

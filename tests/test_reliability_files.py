"""Failures are loud, early and specific, and never destroy finished work: atomic writes, tampered
files, unwritable folders, non-finite losses, images smaller than the crop."""

import errno
import fcntl
import os
import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from typer.testing import CliRunner

from sslbench.bench.runner import only_bench_over
from sslbench.bench.tasks import write_npz
from sslbench.cli import app
from sslbench.engine.checkpoint import FORMAT, Checkpoint, load_checkpoint
from sslbench.engine.loop import LoopSettings, NumericError, train
from sslbench.engine.weights import StorageError, atomic_write, load_encoder, save_encoder
from sslbench.errors import ConfigError, DataError
from tiny_training import FAST, tiny_training


def _partial_then(error):
    def write(tmp):
        tmp.write_text("the first half of the new vers")
        raise error
    return write


@pytest.mark.parametrize(("error", "expected", "match"), [
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), StorageError, "disk full while saving"),
    (PermissionError(errno.EACCES, os.strerror(errno.EACCES)), StorageError, "cannot write .*Permission denied"),
    (KeyboardInterrupt(), KeyboardInterrupt, None),
])
def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, error, expected, match):
    target = tmp_path / "metrics.json"
    target.write_text('{"aji": 0.61}')
    with pytest.raises(expected, match=match):
        atomic_write(target, _partial_then(error))
    assert target.read_text() == '{"aji": 0.61}'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_write_syncs_the_file_then_the_folder_it_was_renamed_into(tmp_path, monkeypatch):
    synced = []  # inode of each fsync'ed descriptor
    os_fsync = os.fsync

    def fsync(fd):
        synced.append(os.fstat(fd).st_ino)
        os_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    target = tmp_path / "runs" / "metrics.json"
    atomic_write(target, lambda tmp: tmp.write_text('{"aji": 0.61}'))
    # the folder last: without it a power cut can undo the rename
    assert synced == [target.stat().st_ino, target.parent.stat().st_ino]
    assert target.read_text() == '{"aji": 0.61}' and [p.name for p in target.parent.iterdir()] == ["metrics.json"]


def test_prediction_npz_is_written_whole_closed_and_alone(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)  # an unclosed file warns when it is collected
        write_npz(tmp_path / "predictions" / "job.npz", instances=np.arange(6, dtype=np.int32).reshape(2, 3),
                  name="TCGA-A7")
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    with np.load(tmp_path / "predictions" / "job.npz") as saved:
        assert saved["instances"].tolist() == [[0, 1, 2], [3, 4, 5]] and str(saved["name"]) == "TCGA-A7"
    assert [p.name for p in (tmp_path / "predictions").iterdir()] == ["job.npz"]  # numpy appended no .npz to a temp


def test_a_second_bench_over_a_locked_folder_is_refused(tmp_path):
    said = []
    with only_bench_over(tmp_path, said.append):
        with pytest.raises(ConfigError, match="another `sslbench bench` is running over this folder"):
            only_bench_over(tmp_path, said.append)
    assert said == []


@pytest.mark.parametrize("refusal", [errno.ENOLCK, errno.EOPNOTSUPP])  # NFS without lockd; FUSE mounts
def test_bench_on_a_file_system_without_locks_says_it_runs_unlocked(tmp_path, monkeypatch, refusal):
    def flock(fd, operation):
        raise OSError(refusal, os.strerror(refusal))

    monkeypatch.setattr(fcntl, "flock", flock)
    said = []
    with only_bench_over(tmp_path / "out", said.append):
        pass
    assert said == [f"{tmp_path / 'out'}: this file system has no file locks, so bench runs UNLOCKED: start no "
                    "second bench over this folder until this one ends (or give --out a local disk)."]


def test_writing_below_a_regular_file_is_a_storage_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError, match="cannot write"):
        atomic_write(tmp_path / "file" / "metrics.json", lambda tmp: tmp.write_text("{}"))


class RunsCode:
    """Unpickling this would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _damage(path, how, marker):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(os.urandom(4096))
    elif how == "pickle":
        path.write_bytes(pickle.dumps({"state": RunsCode(marker)}))
    else:  # torch.save: a zip of pickles
        torch.save({"state": RunsCode(marker)}, path)


DAMAGE = ["truncated", "garbage", "pickle", "torch.save"]


def _encoder_file(tmp_path):
    path = save_encoder(nn.Linear(64, 64).state_dict(), tmp_path / "encoder", {"pretext": "rotnet"})
    return path, load_encoder, "truncated or tampered, re-create it"


def _checkpoint_file(tmp_path):
    path = tmp_path / "pretrain.safetensors"
    tiny_training(path)
    return path, tiny_training, "truncated or tampered, delete it to restart this phase"


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("make", [_encoder_file, _checkpoint_file], ids=["encoder", "checkpoint"])
def test_damaged_weights_are_a_one_line_error_and_run_no_code(tmp_path, make, how):
    path, load, fix = make(tmp_path)
    _damage(path, how, tmp_path / "pwned")
    with pytest.raises(DataError) as info:
        load(path)
    assert str(path) in str(info.value) and fix in str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "pwned").exists()


def test_a_safetensors_file_that_is_no_checkpoint_is_refused(tmp_path):
    weights = save_encoder(nn.Linear(4, 4).state_dict(), tmp_path / "encoder", {})
    with pytest.raises(DataError, match=f"no '{FORMAT}' marker"):
        load_checkpoint(weights)
    inconsistent = tmp_path / "inconsistent.safetensors"
    save_file({"x": torch.zeros(1)}, inconsistent,
              metadata={"format": FORMAT, "state": '{"step": 3, "model": {"__tensor__": "missing"}}'})
    with pytest.raises(DataError, match="inconsistent"):
        load_checkpoint(inconsistent)


def test_run_with_a_damaged_checkpoint_stops_before_loading_data(tmp_path):
    checkpoint = tmp_path / "run" / "checkpoints" / "pretrain.safetensors"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"\x00" * 100)
    result = CliRunner().invoke(app, ["run", "--out", str(tmp_path / "run"), *FAST])
    assert isinstance(result.exception, DataError) and str(checkpoint) in str(result.exception)
    assert not (tmp_path / "run" / "log.txt").exists()


def test_run_folder_below_a_regular_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    result = CliRunner().invoke(app, ["run", "--out", str(tmp_path / "file" / "run"), *FAST])
    assert isinstance(result.exception, ConfigError)
    assert "cannot write to the run folder" in str(result.exception)


def test_read_only_run_folder_is_refused(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: permission bits do not stop writes (the test above covers root)")
        result = CliRunner().invoke(app, ["run", "--out", str(folder), *FAST])
        assert isinstance(result.exception, ConfigError)
        assert "Permission denied" in str(result.exception)
    finally:
        folder.chmod(0o755)


def _linear_training(tmp_path, max_skips, bad_steps=(3,)):
    """A linear model on fixed batches; the inputs of ``bad_steps`` hold an Inf, as a corrupt image would."""
    torch.manual_seed(0)
    module = nn.Linear(4, 1)
    batches = torch.randn(10, 8, 4, generator=torch.Generator().manual_seed(0))
    for step in bad_steps:
        batches[step - 1, 0, 0] = float("inf")
    calls = 0

    def compute_losses():
        nonlocal calls
        calls += 1
        return {"loss": module(batches[calls - 1]).pow(2).mean()}

    checkpoint = Checkpoint(tmp_path / "linear.safetensors", every=2, fingerprint={}, generator=torch.Generator())
    settings = LoopSettings(steps=10, lr=0.01, log_every=5, max_nonfinite_skips=max_skips)
    return module, train(module, compute_losses, settings, torch.device("cpu"), "linear", checkpoint=checkpoint)


def test_non_finite_loss_names_its_step_and_the_last_good_checkpoint(tmp_path):
    with pytest.raises(NumericError) as info:
        _linear_training(tmp_path, max_skips=0)
    assert f"at step 3; last good checkpoint: {tmp_path / 'linear.safetensors'} (step 2)" in str(info.value)
    saved = load_checkpoint(tmp_path / "linear.safetensors")
    assert saved["step"] == 2 and all(torch.isfinite(v).all() for v in saved["model"].values())


def test_a_bounded_number_of_non_finite_steps_can_be_skipped(tmp_path):
    module, history = _linear_training(tmp_path, max_skips=1)
    assert [h["step"] for h in history] == [5, 10]
    assert all(torch.isfinite(p).all() for p in module.parameters())
    with pytest.raises(NumericError, match=r"at step 7 \(1 earlier bad steps skipped"):
        _linear_training(tmp_path / "again", max_skips=1, bad_steps=(3, 7))


@pytest.mark.slow
def test_exploding_run_stops_at_a_named_step_and_a_changed_config_is_refused(tmp_path):
    out = tmp_path / "run"
    exploding = ["--set", "pretrain.lr=1e30", "--set", "pretrain.warmup_steps=0", "--set", "pretrain.checkpoint_every=1"]
    result = CliRunner().invoke(app, ["run", "--out", str(out), *FAST, *exploding])
    assert isinstance(result.exception, NumericError), result.output
    found = re.search(r"loss became \S+ at step (\d+); last good checkpoint: (\S+) \(step (\d+)\)", str(result.exception))
    assert found, str(result.exception)
    checkpoint = out / "checkpoints" / "pretrain.safetensors"
    assert found[2] == str(checkpoint) and int(found[3]) == int(found[1]) - 1
    saved = load_checkpoint(checkpoint)
    assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())
    assert "run stopped: NumericError" in (out / "log.txt").read_text()

    calmer = [*exploding[2:], "--set", "pretrain.lr=1e-3"]
    result = CliRunner().invoke(app, ["run", "--out", str(out), *FAST, *calmer])
    assert isinstance(result.exception, ConfigError)
    assert "different config (pretrain.lr: 1e+30 -> 0.001)" in str(result.exception)


def test_image_smaller_than_the_crop_fails_before_any_training(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--out", str(out), *FAST, "--set", "finetune.crop=128"])
    assert isinstance(result.exception, DataError)
    assert "96×96" in str(result.exception) and "128×128" in str(result.exception)
    assert not (out / "encoder.safetensors").exists() and not (out / "checkpoints").exists()

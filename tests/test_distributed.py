"""torchrun with 2 CPU processes (gloo): DDP averages gradients and logged losses, the sharded
evaluation equals a single process's, and `torchrun -m sslbench run` writes one normal run folder."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sslbench.bench.store import Store
from sslbench.data.synthetic import Synthetic
from sslbench.engine.accel import resolve
from sslbench.engine.loop import LoopSettings, train
from sslbench.eval.evaluate import evaluate
from sslbench.models import build_segmenter

sys.path.insert(0, str(Path(__file__).parent))
from ddp_reference import BACKBONE, FP32, HEAD, linear_problem, torchrun_env  # noqa: E402
from tiny import assert_bench_row, assert_scored, still_initial, tiny_args  # noqa: E402

CPU = torch.device("cpu")


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             *args], capture_output=True, text=True, timeout=600, env=torchrun_env(), cwd=cwd)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_ddp_training_and_sharded_evaluation_match_one_process(tmp_path):
    torchrun(str(Path(__file__).parent / "ddp_worker.py"), str(tmp_path / "seen.json"), cwd=tmp_path)
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["world"] == 2
    # one process on the whole batch: the mean of the two half-batch losses
    model, inputs, targets = linear_problem()
    history = train(model, lambda: {"loss": torch.nn.functional.mse_loss(model(inputs), targets)},
                    LoopSettings(steps=3, lr=0.1, log_every=1), CPU, "single", accel=resolve(FP32, CPU))
    rank0, rank1 = (np.array(w) for w in seen["weights"])
    np.testing.assert_array_equal(rank0, rank1)  # DDP kept both replicas identical
    np.testing.assert_allclose(rank0, model.weight.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([h["loss"] for h in seen["history"]], [h["loss"] for h in history], rtol=1e-5)

    torch.manual_seed(0)
    segmenter = build_segmenter(BACKBONE, HEAD)
    single = evaluate(segmenter, Synthetic(num_images=3, size=96).load(), CPU, min_area=5, tile=96, overlap=0)
    assert [p["name"] for p in seen["scores"]["per_image"]] == [p["name"] for p in single["per_image"]]
    for mode in ("per_image_mean", "summed"):
        for metric, value in single[mode].items():
            assert seen["scores"][mode][metric] == pytest.approx(value, abs=1e-9), (mode, metric)


TINY = tiny_args({"pretrain.log_every": 1})


@pytest.mark.slow
def test_torchrun_sslbench_run_writes_one_run_folder_like_a_single_process(tmp_path):
    tiny = ["--pretext", "instance_aware", *TINY]
    result = torchrun("-m", "sslbench", "run", *tiny, "--out", str(tmp_path / "ddp"), cwd=tmp_path)
    assert result.stdout.count("sslbench run — instance_aware") == 1  # rank 0 alone prints
    single = subprocess.run([sys.executable, "-m", "sslbench", "run", *tiny, "--out", str(tmp_path / "one")],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp, one = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("ddp", "one"))
    assert ddp.keys() == one.keys() and ddp["test"].keys() == one["test"].keys()
    assert ddp["arithmetic"]["processes"] == 2 and one["arithmetic"]["processes"] == 1
    assert ddp["images"] == one["images"]  # same seeded split on every rank
    assert len(ddp["history"]["pretrain"]) == len(one["history"]["pretrain"]) == 2
    assert_scored(ddp["test"], ddp["images"]["test"])
    backbone = json.loads((tmp_path / "ddp" / "encoder.json").read_text())["backbone"]
    assert not any(still_initial(tmp_path / "ddp" / "encoder.safetensors", backbone).values())
    log = (tmp_path / "ddp" / "log.txt").read_text()
    assert log.count("pretrain instance_aware step 1/2") == 1  # one log writer, not two
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())


@pytest.mark.slow
def test_torchrun_sslbench_bench_writes_one_row_per_job(tmp_path):
    out = tmp_path / "bench"
    args = ["-m", "sslbench", "bench", "--suite", "table3", "--skip", "instance_aware_st", "--skip",
            "instance_aware_cr", "--out", str(out), *TINY]
    first = torchrun(*args, cwd=tmp_path)
    assert first.stdout.count("2 jobs run, 0 already done") == 1  # rank 0 alone reports
    rows = Store(out).rows()
    assert sorted(row["strategy"] for row in rows) == ["instance_aware", "scratch"]
    for row in rows:
        assert_bench_row(out, row)
        assert (out / row["prediction"]).is_file()
    assert all(row["arithmetic"]["processes"] == 2 for row in rows)
    assert sorted(p.name for p in (out / "encoders").glob("*.safetensors")) == [
        "instance_aware-s0.safetensors", "scratch-s0.safetensors"]
    again = torchrun(*args, cwd=tmp_path)
    assert "0 jobs run, 2 already done" in again.stdout and len(Store(out).rows()) == 2

"""benchmarks/gpu_throughput.py end to end at CPU sizes: both paths train, FLOPs are counted."""

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from sslbench.models import build_encoder

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_throughput.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_throughput_benchmark_measures_both_paths_on_cpu(tmp_path):
    results = load_script().main([
        "--device", "cpu", "--preset", "smoke", "--backbone", "resnet18", "--images", "2", "--image-size", "256",
        "--steps", "2", "--warmup", "1", "--workers", "1", "--peak-tflops", "1.0", "--json", str(tmp_path / "r.json")])
    assert json.loads((tmp_path / "r.json").read_text())["device"] == "cpu"
    for phase in ("pretrain", "finetune"):
        rows = results["phases"][phase]
        assert rows["naive"]["flops_per_step"] == rows["fast"]["flops_per_step"] > 1e9  # the same model
        for name in ("naive", "fast"):
            assert 0 < rows[name]["step_seconds"] < 60 and 0 < rows[name]["mfu"] < 1
        assert math.isclose(rows["speedup"], rows["naive"]["step_seconds"] / rows["fast"]["step_seconds"])


def test_flops_are_counted_not_guessed():
    """resnet18's forward at 224² is 1.82 GMACs = 3.64 GFLOPs (without fc); backward about twice that."""
    script = load_script()
    encoder = build_encoder(dict(type="SmpEncoder", name="resnet18"))
    x = torch.randn(1, 3, 224, 224)
    forward = script.counted_flops(lambda: encoder(x))
    both = script.counted_flops(lambda: encoder(x)[-1].sum().backward())
    assert forward == pytest.approx(3.64e9, rel=0.01)
    assert 2.5 * forward < both < 3.1 * forward


def test_known_gpus_have_a_bf16_peak():
    script = load_script()
    assert script.peak_tflops(torch.device("cpu"), None) is None
    assert script.peak_tflops(torch.device("cpu"), 790.0) == 790.0

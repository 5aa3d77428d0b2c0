"""Quality regression: the smoke preset of table3 on the default synthetic data must learn.

Reduced for CI time (2 CPU cores, ~3 minutes): resnet18 instead of resnet101, and the two
single-loss ablation rows are skipped, leaving scratch (finetuning alone) and instance_aware
(pretraining + finetuning). Every other setting is the smoke preset's.

The bar is a floor relative to an untrained ResUNet scored on the same test images (which finds
no nuclei: AJI and PQ near 0, Dice ~0.25 from scattered foreground), not a number copied from a
run: each finetuned model must gain at least 0.03 AJI, 0.01 PQ (it must match some nuclei at
IoU > 0.5) and 0.15 Dice over it. Measured before the synthetic nuclei stopped occluding each other
and before the smoke preset's 2-px, 3x-weighted boundary: scratch AJI 0.108 / PQ 0.106 / Dice 0.666,
instance_aware 0.171 / 0.025 / 0.404, untrained 0.001 / 0 / 0.242. With both changes, `sslbench run
--pretext scratch --backbone resnet18` (same preset and split) scores AJI 0.776 / PQ 0.807 / Dice
0.972 (this test not yet re-run). A broken loss, target, transfer or post-processing step drops a
model back to the untrained level and fails this test.
"""

import pytest
import torch

from sslbench.bench.plan import BenchOptions
from sslbench.bench.runner import run_suite
from sslbench.bench.store import Store
from sslbench.bench.suites import load_suite
from sslbench.eval.evaluate import evaluate
from sslbench.models import build_segmenter
from sslbench.pipeline.data import load_samples, split_samples

MARGINS = {"aji": 0.03, "pq": 0.01, "dice": 0.15}


@pytest.mark.slow
def test_table3_smoke_finetuning_beats_an_untrained_model(tmp_path):
    suite = load_suite("table3", skip=["instance_aware_st", "instance_aware_cr"])
    run_suite(BenchOptions(suite, tmp_path, preset="smoke", backbone="resnet18", device="cpu"))
    rows = Store(tmp_path).rows()
    assert sorted(r["strategy"] for r in rows) == ["instance_aware", "scratch"]

    cfg = rows[0]["config"]
    test = split_samples(load_samples(cfg["data"], None), cfg["split"]).test
    assert [s.name for s in test] == rows[0]["test_names"]
    torch.manual_seed(0)
    untrained = build_segmenter(cfg["backbone"], cfg["head"])
    ev = cfg["evaluation"]
    baseline = evaluate(untrained, test, torch.device("cpu"), ev["min_area"], ev["tile"], ev["overlap"])["per_image_mean"]
    for row in rows:
        for metric, margin in MARGINS.items():
            assert row[metric] >= baseline[metric] + margin, (row["strategy"], metric, row[metric], baseline[metric])
